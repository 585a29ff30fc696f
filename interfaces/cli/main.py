"""Entry point of ``icn``: the command tree and the one place errors become exit codes.

Exit codes: 0 success, 1 a failed check or a refused request (with a
one-line reason), 2 wrong usage, or the data dir is in use by another
process (a running node). A user error never prints a traceback.
"""

from __future__ import annotations

import os
import sys

import typer

from icn.application.errors import ApplicationError
from icn.application.ports import StoreError
from icn.infrastructure.data_dir import DataDirBusy
from icn.infrastructure.keystore import KeystoreError
from icn.infrastructure.store.database import DatabaseUrlError
from icn.interfaces.cli import audit, coop, demo, identity, ledger, log, nats, node, remote
from icn.interfaces.cli.common import err
from icn.interfaces.cli.ledger_reads import balance, history
from icn.interfaces.cli.replay import replay
from icn.interfaces.client.errors import ClientError

app = typer.Typer(
    name="icn",
    help="ICN node: signed, hash-linked logs for cooperatives.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(node.app, name="node")
app.add_typer(nats.app, name="nats")
app.add_typer(identity.app, name="id")
app.add_typer(log.app, name="log")
app.add_typer(audit.app, name="audit")
app.add_typer(remote.events_app, name="events")
app.command("login")(remote.login)
app.command("balance")(balance)
app.command("history")(history)
app.command("replay")(replay)
app.add_typer(coop.app, name="coop")
app.add_typer(coop.member_app, name="member")
app.command("pay")(ledger.pay)
app.add_typer(ledger.dispute_app, name="dispute")
app.add_typer(ledger.app, name="ledger")
app.add_typer(demo.app, name="demo")

USER_ERRORS = (
    ApplicationError,
    ClientError,
    KeystoreError,
    DatabaseUrlError,
    StoreError,
    OSError,
    ValueError,
)


def run() -> None:
    """Console-script entry point."""
    # Whatever the node creates (SQLite file and its -wal/-shm, keys, nats store) is
    # for its own user only, from the first byte: 0600 files, 0700 folders.
    os.umask(0o077)
    try:
        app()
    except DataDirBusy as exc:
        hint = " (write through it instead: --url, or stop it first)"
        err.print(f"[red]error[/red] ({exc.code}): {exc}{hint}", markup=True, highlight=False)
        sys.exit(2)
    except USER_ERRORS as exc:
        code = getattr(exc, "code", type(exc).__name__)
        err.print(f"[red]error[/red] ({code}): {exc}", markup=True, highlight=False)
        sys.exit(1)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    run()
