"""``icn login`` and ``icn events``: talk to a running node over its HTTP API.

These commands are clients: they keep no store, only a session per coop in
the data directory (so one login serves the commands that follow). The HTTP
stack is imported inside the commands, keeping every other command's start-up
free of it.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import msgspec
import typer

from icn.application.audit import split_lines
from icn.infrastructure.passphrase import resolve_passphrase
from icn.interfaces.cli.common import DataDir, Json, data_dir_of, err, out, print_json
from icn.interfaces.cli.identity import NODE_KEY, keystore_at
from icn.interfaces.cli.members import did_in
from icn.interfaces.client.errors import ApiError, SessionError
from icn.interfaces.client.sessions import SessionStore, StoredSession, expiry_text

if TYPE_CHECKING:
    from icn.interfaces.client.api import IcnClient

DEFAULT_URL = "http://127.0.0.1:8080"

events_app = typer.Typer(
    help="Post and follow a coop's events on a running node.", no_args_is_help=True
)

Coop = Annotated[str, typer.Option("--coop", help="Coop id, e.g. 'food-coop'.")]
Url = Annotated[
    str | None,
    typer.Option(
        "--url",
        envvar="ICN_URL",
        help=f"Base URL of the node (default: the session's node, else {DEFAULT_URL}).",
        show_default=False,
    ),
]


class _Line(msgspec.Struct):
    """One line of ``events tail`` output; the event is passed on as received."""

    position: int
    event: msgspec.Raw


def _client(url: str, token: str | None = None) -> IcnClient:
    from icn.interfaces.client.api import IcnClient

    return IcnClient(url, token)


def _session(data_dir: Path | None, coop: str, url: str | None) -> StoredSession:
    """The stored session of ``coop``; a token only works on the node that issued it."""
    stored = SessionStore(data_dir_of(data_dir)).load(coop)
    if url is not None and url.rstrip("/") != stored.url:
        raise SessionError(
            "wrong-node",
            f"the session for {coop} is for {stored.url}, not {url}: "
            f"log in again: icn login --coop {coop} --url {url}",
        )
    return stored


def login(
    coop: Coop,
    key: Annotated[str, typer.Option("--key", help="Key in this data dir's keystore.")] = NODE_KEY,
    url: Url = None,
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """Log in to a coop on a node with a key of the keystore; later commands reuse the session."""
    base = (url or DEFAULT_URL).rstrip("/")
    signing_key = keystore_at(data_dir).unlock(key, resolve_passphrase())
    with _client(base) as client:
        session = client.login(signing_key, coop)
    SessionStore(data_dir_of(data_dir)).save(base, session)
    if json:
        print_json(
            {"url": base, "did": session.did, "coop": coop, "expires_at": session.expires_at}
        )
    else:
        out.print(f"logged in to {coop} at {base} as {session.did}")
        out.print(f"session expires {expiry_text(session.expires_at)}")


@events_app.command("post")
def post(
    file: Annotated[
        Path,
        typer.Argument(
            help="A jsonl file: one signed wire event per line.", exists=True, dir_okay=False
        ),
    ],
    coop: Coop,
    url: Url = None,
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """Post the file's events in order (chunks of 100, each all or nothing)."""
    stored = _session(data_dir, coop, url)
    lines = split_lines(file.read_bytes())
    with _client(stored.url, stored.token) as client:
        try:
            placed = client.post_events(coop, lines)
        except ApiError as exc:
            if json:
                print_json(
                    {
                        "posted": len(exc.placed),
                        "events": exc.placed,
                        "error": {"status": exc.status, "code": exc.code, "line": exc.line,
                                  "detail": exc.detail},
                    }
                )  # fmt: skip
            if exc.placed:
                err.print(f"{len(exc.placed)} events before the refused chunk were stored")
            raise
    if json:
        print_json({"posted": len(placed), "events": placed})
        return
    out.print(f"posted {len(placed)} events to {coop}")
    for p in placed:
        out.print(f"{p.position}  {p.id}", markup=False)


@events_app.command("tail")
def tail(
    coop: Coop,
    after: Annotated[
        int | None,
        typer.Option(
            "--after", min=-1, help="Start after this position (-1, the default: the beginning)."
        ),
    ] = None,
    last: Annotated[
        int | None,
        typer.Option(
            "--last",
            "-n",
            min=1,
            help="Print the log's last N events and stop (with --follow: then keep following).",
        ),
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="With --last: keep following afterwards.")
    ] = False,
    type_: Annotated[
        str | None, typer.Option("--type", help="Only types with this prefix, e.g. 'ledger.'.")
    ] = None,
    author: Annotated[
        str | None, typer.Option("--author", help="Only this author (a DID or key name).")
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option("--limit", min=1, help="Stop after this many events (from where it starts)."),
    ] = None,
    url: Url = None,
    data_dir: DataDir = None,
) -> None:
    """Follow the coop's log live: one JSON line per event, {"position": n, "event": {...}}.

    From the beginning (or --after P) it follows until Ctrl-C or --limit; --last N prints
    the log's last N events and stops, like tail -n N (-f: and follows)."""
    if last is not None and (after is not None or type_ is not None or author is not None):
        raise typer.BadParameter(
            "--last counts the log's last positions: use it without --after, --type, --author",
            param_hint="'--last'",
        )
    if follow and last is None:
        raise typer.BadParameter("--follow goes with --last N", param_hint="'--follow'")
    author = did_in(data_dir, author, "'--author'")
    stored = _session(data_dir, coop, url)
    # Ctrl-C (SIGINT) ends the tail even when the parent started us with SIGINT ignored
    # (a shell's background job; then Python installs no handler of its own).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    seen = 0
    try:
        with _client(stored.url, stored.token) as client:
            start = -1 if after is None else after
            if last is not None:
                size = client.log_size(coop)
                start = max(-1, size - last - 1)
                if not follow:
                    limit = min(last, size) if limit is None else min(last, size, limit)
                    if limit == 0:
                        return
            stream = client.tail(coop, after=start, type=type_, author=author)
            try:
                for item in stream:
                    sys.stdout.buffer.write(
                        msgspec.json.encode(_Line(item.position, msgspec.Raw(item.wire))) + b"\n"
                    )
                    sys.stdout.buffer.flush()
                    seen += 1
                    if limit is not None and seen >= limit:
                        break
            finally:
                stream.close()
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
    except BrokenPipeError:
        # The reader went away (``| head``): not an error; keep exit-time flushes quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(0) from None
