"""``icn trust``: vouch, withdraw, read standing and paths, publish and verify epochs.

Attestations and revocations are signed with ``--key`` like every write (to
``--data-dir``'s store, or posted to the node at ``--url``/``ICN_URL``).
Reads come from the local store's read models, brought up to the log first;
``--json`` prints the same document as the HTTP API. ``publish`` asks the
node that keeps the coop's key (this data dir's, or the one at ``--url``);
``verify`` judges the coop's log again and recomputes every epoch (exit 1 on
any mismatch). Members may be named by DID or by key name everywhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated

import msgspec
import typer
from rich.table import Table

from icn.domain.coop.records import PPM
from icn.domain.trust import bodies as b
from icn.infrastructure.passphrase import resolve_passphrase
from icn.infrastructure.store.read_models import ReadSide
from icn.infrastructure.store.trust_reads import SqlTrustReads
from icn.interfaces.bootstrap import catch_up_reads, clock_ms, keystore_for, open_node
from icn.interfaces.cli.common import DataDir, Json, out, print_json, settings_for
from icn.interfaces.cli.members import did_in
from icn.interfaces.cli.writes import (
    Coop,
    Key,
    Refused,
    Url,
    check_coop_id,
    check_event_id,
    local_node,
    ms_of,
    report,
    writer,
)
from icn.projections import trust_views as views

app = typer.Typer(help="Web of trust: attestations, standing, paths, epochs.", no_args_is_help=True)

Context = Annotated[
    str,
    typer.Option("--context", help="general, ledger, governance or compute."),
]
MaybeContext = Annotated[
    str | None,
    typer.Option("--context", help="general, ledger, governance or compute (default: all)."),
]


def score_ppm(text: str) -> int:
    """A score typed as a fraction of 1 (``0.8``, ``1``, ``0``) or, as an integer above 1,
    in parts per million (``800000``); exactly, no floats."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        value = Decimal(-1)
    if not value.is_finite():
        value = Decimal(-1)
    ppm = value * PPM if value <= 1 else value
    if ppm != ppm.to_integral_value() or not 0 <= ppm <= PPM:
        raise Refused(
            "invalid-score",
            f"{text!r}: a score is 0..1 (0.8) or 0..1000000 parts per million (800000)",
        )
    return int(ppm)


def _context(value: str) -> str:
    if value not in b.CONTEXTS:
        raise typer.BadParameter(
            f"{value!r}: one of {', '.join(b.CONTEXTS)}", param_hint="'--context'"
        )
    return value


@contextmanager
def _reads(data_dir: Path | None, coop: str) -> Iterator[SqlTrustReads]:
    """The trust queries on the local store, the projections brought up to the log first."""
    node = open_node(settings_for(data_dir))
    side = ReadSide(node.store)
    try:
        catch_up_reads(node, side, coop)
        yield SqlTrustReads(node.store.engine)
    finally:
        side.close()
        node.close()


# -- writes ------------------------------------------------------------------


@app.command("add")
def add(
    subject: Annotated[str, typer.Argument(help="Who you vouch for: a DID, or a key name.")],
    score: Annotated[
        str,
        typer.Argument(
            help="How much: 0..1 as a decimal (0.8), or parts per million as an integer "
            "above 1 (800000)."
        ),
    ],
    coop: Coop,
    key: Key,
    context: Context = "general",
    expires: Annotated[
        str | None,
        typer.Option("--expires", help="When it stops counting: a date, a time, or ms."),
    ] = None,
    note: Annotated[str | None, typer.Option("--note", help="Why (280 characters).")] = None,
    url: Url = None,
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """Vouch for a member: sign trust.AttestationRecorded (it replaces your earlier one)."""
    whom = str(did_in(data_dir, subject, "'SUBJECT'"))
    body = {
        "subject": whom,
        "context": _context(context),
        "score_ppm": score_ppm(score),
        "expires_ts": ms_of(expires, "'--expires'") if expires is not None else None,
        "note": note,
    }
    with writer(data_dir, url, coop, key) as w:
        written = w.submit([(b.ATTESTATION_RECORDED, body)])[0]
    report(
        json,
        {**written.doc(), **body},
        [f"vouched for {whom} at {body['score_ppm']} ppm in {context} ({written.event.id})"],
    )


@app.command("revoke")
def revoke(
    attestation: Annotated[str, typer.Argument(help="Id of your trust.AttestationRecorded.")],
    coop: Coop,
    key: Key,
    url: Url = None,
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """Withdraw an attestation of yours: sign trust.AttestationRevoked."""
    target = check_event_id(attestation, "'ID'")
    with writer(data_dir, url, coop, key) as w:
        written = w.submit([(b.ATTESTATION_REVOKED, {"attestation": target})])[0]
    report(json, {**written.doc(), "attestation": target}, [f"revoked {target}"])


# -- reads -------------------------------------------------------------------


def _standing_table(rows: list[views.MemberStandingView]) -> Table:
    table = Table("member", "context", "epoch", "standing ppm", "normalised ppm", "class", box=None)
    for r in rows:
        table.add_row(
            r.did, r.context, str(r.epoch), str(r.standing_ppm), str(r.normalised_ppm),
            str(r.trust_class),
        )  # fmt: skip
    return table


@app.command("standing")
def standing(
    coop: Coop,
    did: Annotated[
        str | None, typer.Argument(help="One member (a DID or key name); all when left out.")
    ] = None,
    context: MaybeContext = None,
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """Standing at the last epoch: every member of a context (general by default), or one
    member in every context."""
    check_coop_id(coop)
    ctx = _context(context) if context is not None else None
    member = did_in(data_dir, did, "'DID'")
    with _reads(data_dir, coop) as reads:
        if member is not None:
            one = views.member_standing(reads, coop, member, ctx)
            rows, doc = one.standings, msgspec.to_builtins(one)
        else:
            page = views.standing(reads, coop, ctx or "general")
            rows, doc = page.members, msgspec.to_builtins(page)
    if json:
        print_json(doc)
        return
    if not rows:
        out.print("no standing yet: no epoch published")
        return
    out.print(_standing_table(rows))


@app.command("path")
def path(
    source: Annotated[str, typer.Argument(help="From: a DID or key name.")],
    target: Annotated[str, typer.Argument(help="To: a DID or key name.")],
    coop: Coop,
    context: Context = "general",
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """How SOURCE knows TARGET: the best product of scores over at most the coop's max_hops.
    For people only: it decides nothing (docs/trust.md)."""
    check_coop_id(coop)
    a, z = str(did_in(data_dir, source, "'SOURCE'")), str(did_in(data_dir, target, "'TARGET'"))
    with _reads(data_dir, coop) as reads:
        found = views.path(reads, coop, a, z, _context(context), clock_ms())
    if json:
        print_json(found)
        return
    if not found.found:
        out.print(f"no path within {found.max_hops} hops")
        return
    out.print(f"score {found.score_ppm} ppm over {len(found.path)} hop(s)")
    for e in found.path:
        out.print(f"  {e.truster} -> {e.subject}: {e.weight_ppm} ppm ({e.attestation})")


@app.command("graph")
def graph(
    coop: Coop,
    svg: Annotated[
        Path | None, typer.Option("--svg", help="Write the picture to this SVG file.")
    ] = None,
    context: Context = "general",
    min_score: Annotated[
        str, typer.Option("--min-score", help="Leave out weaker attestations (0..1 or ppm).")
    ] = "0",
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """The live graph of a context: members (standing, class) and attestations; --svg draws
    it (node size: standing, colour: class)."""
    from icn.interfaces.cli.trust_svg import render

    check_coop_id(coop)
    floor = score_ppm(min_score)
    with _reads(data_dir, coop) as reads:
        found = views.graph(reads, coop, _context(context), floor, clock_ms())
    if svg is not None:
        svg.write_text(render(found), encoding="utf-8")
    if json:
        print_json(found)
        return
    out.print(f"{len(found.nodes)} members, {len(found.edges)} attestations in {context}")
    if svg is not None:
        out.print(f"picture: {svg}")


# -- epochs ------------------------------------------------------------------


def _publish_remote(
    url: str, coop: str, key: str, context: str | None, data_dir: Path | None
) -> list[dict[str, object]]:
    from icn.interfaces.client.api import IcnClient

    signing_key = keystore_for(settings_for(data_dir)).unlock(key, resolve_passphrase())
    with IcnClient(url) as client:
        client.login(signing_key, coop)
        params = {"context": context} if context else {}
        raw = client._request("POST", f"/v1/coops/{coop}/trust/epochs", params=params)
    doc = msgspec.json.decode(raw)
    published: list[dict[str, object]] = doc["published"]
    return published


@app.command("publish")
def publish(
    coop: Coop,
    context: MaybeContext = None,
    key: Annotated[
        str | None,
        typer.Option("--key", help="With --url: a member key to log in with."),
    ] = None,
    url: Url = None,
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """Publish the next standing epoch now, signed by the coop's key (the node that keeps it):
    of --context, or of every context that has had an attestation."""
    check_coop_id(coop)
    ctx = _context(context) if context is not None else None
    if url is not None:
        if key is None:
            raise typer.BadParameter("--url needs --key to log in", param_hint="'--key'")
        published = _publish_remote(url, coop, key, ctx, data_dir)
    else:
        with local_node(data_dir) as node:
            coop_key = node.coop_key(coop)
            if coop_key is None:
                raise Refused("coop-key-not-held", f"this node does not keep {coop}'s key")
            events = node.epochs.publish_now(coop, coop_key, ctx)
        published = [{**e.body, "event_id": e.id} for e in events]
    lines = [
        f"{p['context']} epoch {p['epoch']}: {p['count']} members, digest {p['digest']}"
        for p in published
    ]
    report(json, {"coop": coop, "published": published}, lines or ["no attestation yet"])


@app.command("verify")
def verify(coop: Coop, data_dir: DataDir = None, json: Json = False) -> None:
    """Recompute every standing epoch of the coop from its log and compare (exit 1 on any
    difference)."""
    from icn.application.trust_verify import verify_epochs

    check_coop_id(coop)
    node = open_node(settings_for(data_dir))
    try:
        result = verify_epochs(node.store, coop)
    finally:
        node.close()
    if json:
        print_json(result)
    else:
        for c in result.epochs:
            verdict = "ok" if c.ok else f"MISMATCH ({c.reason})"
            out.print(f"{c.context} epoch {c.epoch} at {c.position}: {verdict}", markup=False)
        out.print(
            f"{len(result.epochs)} epoch(s), {result.mismatches} mismatch(es), "
            f"{result.other_refusals} other event(s) refused, {result.events} events read"
        )
    if not result.ok:
        raise typer.Exit(1)
