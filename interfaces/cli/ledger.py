"""``icn pay``, ``icn dispute …`` and ``icn ledger duties``: money, signed by who moves it.

Amounts are typed in the currency's unit and converted exactly with its
decimals (``2.5`` hours → 250 units; ``2.555`` is refused, never rounded).
A resolution that orders money back is carried out by the coop's DID: a
local ``dispute resolve`` settles it at once when this node keeps the coop's
key, and a running node settles within seconds by itself.
"""

from __future__ import annotations

from collections import Counter
from enum import StrEnum
from typing import Annotated, Any

import typer

from icn.application.errors import BatchRefused
from icn.domain.events.bodies import ENTRY_RECORDED
from icn.domain.events.envelope import Event
from icn.domain.ledger import bodies as lb
from icn.infrastructure.keystore import KeystoreError
from icn.interfaces.bootstrap import keystore_for
from icn.interfaces.cli.common import DataDir, Json, err, settings_for
from icn.interfaces.cli.members import did_of
from icn.interfaces.cli.writes import (
    Coop,
    Key,
    LocalWriter,
    Url,
    check_event_id,
    currency_of,
    local_node,
    report,
    shown,
    units_of,
    writer,
)

app = typer.Typer(help="The coop's own duties: settlements and demurrage.", no_args_is_help=True)
dispute_app = typer.Typer(
    help="Disputes: file, answer, assign a mediator, resolve.", no_args_is_help=True
)

Evidence = Annotated[
    list[str] | None, typer.Option("--evidence", help="A note or link (repeat for several).")
]
DisputeId = Annotated[str, typer.Argument(help="The dispute: the id of its filing event.")]


class OutcomeChoice(StrEnum):
    """How a dispute ends (``--outcome``)."""

    reversed = "reversed"
    partial_refund = "partial-refund"
    written_off = "written-off"
    dismissed = "dismissed"
    escalated = "escalated"


# -- pay ---------------------------------------------------------------------


def pay(
    payee: Annotated[str, typer.Argument(help="Who is paid: a DID, or a key name.")],
    amount: Annotated[str, typer.Argument(help="In the currency's unit, e.g. 2.5.")],
    currency: Annotated[str, typer.Argument(help="Currency code, e.g. hours.")],
    coop: Coop,
    key: Key,
    memo: Annotated[str | None, typer.Option("--memo", help="What it was for.")] = None,
    url: Url = None,
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """Pay a member: sign ledger.EntryRecorded with your key; prints your new balance."""
    to = did_of(keystore_for(settings_for(data_dir)), payee, "'PAYEE'")
    with writer(data_dir, url, coop, key) as w:
        spec = currency_of(w.coop_record(), currency)
        units = units_of(amount, spec)
        tx = {"from": w.did, "to": to, "amount": units, "currency": spec.code, "memo": memo}
        written = w.submit([(ENTRY_RECORDED, {"transactions": [tx]})])[0]
        balance = w.balance(w.did, spec.code)
    report(
        json,
        {
            **written.doc(),
            "from": w.did,
            "to": to,
            "amount": units,
            "amount_display": shown(units, spec).split(" ")[0],
            "currency": spec.code,
            "memo": memo,
            "balance": balance,
            "balance_display": None if balance is None else shown(balance, spec).split(" ")[0],
        },
        [
            f"paid {shown(units, spec)} to {to} (entry {written.event.id})",
            f"balance: {shown(balance, spec)}"
            if balance is not None
            else "balance: (not available from that node)",
        ],
    )


# -- disputes ----------------------------------------------------------------


@dispute_app.command("file")
def file(
    entry: Annotated[str, typer.Argument(help="Id of the ledger.EntryRecorded in dispute.")],
    coop: Coop,
    key: Key,
    reason: Annotated[str, typer.Option("--reason", help="What went wrong.", show_default=False)],
    tx: Annotated[
        int, typer.Option("--tx", min=0, max=63, help="Which transaction of the entry.")
    ] = 0,
    evidence: Evidence = None,
    url: Url = None,
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """Dispute a transaction you paid or received; the event's id names the dispute."""
    entry = check_event_id(entry, "'ENTRY'")
    body = {"entry": entry, "transaction": tx, "reason": reason, "evidence": evidence or []}
    with writer(data_dir, url, coop, key) as w:
        written = w.submit([(lb.DISPUTE_FILED, body)])[0]
    report(
        json,
        {**written.doc(), "dispute": written.event.id, "entry": entry, "transaction": tx},
        [f"filed dispute {written.event.id} about entry {entry} (transaction {tx})"],
    )


@dispute_app.command("answer")
def answer(
    dispute: DisputeId,
    coop: Coop,
    key: Key,
    response: Annotated[
        str, typer.Option("--response", help="The counterparty's side.", show_default=False)
    ],
    evidence: Evidence = None,
    url: Url = None,
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """Answer a dispute filed against you (the counterparty answers once)."""
    dispute = check_event_id(dispute, "'DISPUTE'")
    body = {"dispute": dispute, "response": response, "evidence": evidence or []}
    with writer(data_dir, url, coop, key) as w:
        written = w.submit([(lb.DISPUTE_ANSWERED, body)])[0]
    report(
        json,
        {**written.doc(), "dispute": dispute},
        [f"answered dispute {dispute} (event {written.event.id})"],
    )


@dispute_app.command("assign")
def assign(
    dispute: DisputeId,
    coop: Coop,
    key: Key,
    mediator: Annotated[
        str, typer.Option("--mediator", help="A DID or key name; not a party.", show_default=False)
    ],
    url: Url = None,
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """Name a mediator for a dispute; signed by an admin."""
    dispute = check_event_id(dispute, "'DISPUTE'")
    did = did_of(keystore_for(settings_for(data_dir)), mediator, "'--mediator'")
    with writer(data_dir, url, coop, key) as w:
        written = w.submit([(lb.MEDIATOR_ASSIGNED, {"dispute": dispute, "mediator": did})])[0]
    report(
        json,
        {**written.doc(), "dispute": dispute, "mediator": did},
        [f"{did} mediates dispute {dispute} (event {written.event.id})"],
    )


def _settle_now(w: LocalWriter, dispute: str) -> str | None:
    """The coop's DID carries out the resolution now, if this node keeps the coop's key."""
    try:
        key = w.node.coop_key(w.coop, w.passphrase)
    except KeystoreError:  # sealed with another passphrase: the running node will do it
        return None
    if key is None:
        return None
    duties = w.node.duties()
    for record in duties.unsettled(w.coop):
        if record.id == dispute:
            try:
                return duties.settle(w.coop, record, key)[0].id
            except BatchRefused as exc:  # a running node settled it first, or the node refuses
                settled = w.dispute(dispute).settlement
                if settled is None:
                    err.print(
                        f"warning: the coop's settlement was refused ({exc.code}): {exc.reason}",
                        markup=False,
                    )
                return settled
    return w.dispute(dispute).settlement


@dispute_app.command("resolve")
def resolve(
    dispute: DisputeId,
    coop: Coop,
    key: Key,
    outcome: Annotated[
        OutcomeChoice, typer.Option("--outcome", help="The decision.", show_default=False)
    ],
    refund: Annotated[
        str | None,
        typer.Option("--refund", help="With partial-refund: the amount back to the payer."),
    ] = None,
    note: Annotated[str | None, typer.Option("--note", help="Reasons for the record.")] = None,
    url: Url = None,
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """Decide a dispute (its mediator, or an admin when it has none).

    reversed, partial-refund and written-off move money: the coop's DID
    records that entry. Locally it is done at once when this node keeps the
    coop's key; a running node does it within seconds.
    """
    dispute = check_event_id(dispute, "'DISPUTE'")
    partial = outcome is OutcomeChoice.partial_refund
    if partial and refund is None:
        raise typer.BadParameter("partial-refund needs --refund AMOUNT", param_hint="'--refund'")
    if refund is not None and not partial:
        raise typer.BadParameter(
            f"--refund goes with partial-refund, not {outcome.value}", param_hint="'--refund'"
        )
    settlement: str | None = None
    with writer(data_dir, url, coop, key) as w:
        body: dict[str, Any] = {"dispute": dispute, "outcome": outcome.value}
        if refund is not None:
            spec = currency_of(w.coop_record(), w.dispute_currency(dispute))
            body["refund"] = units_of(refund, spec)
        if note:
            body["note"] = note
        written = w.submit([(lb.DISPUTE_RESOLVED, body)])[0]
        moves = outcome.value in lb.Outcome.MOVES_MONEY
        if moves and isinstance(w, LocalWriter):
            settlement = _settle_now(w, dispute)
    lines = [f"resolved dispute {dispute}: {outcome.value} (event {written.event.id})"]
    if settlement:
        lines.append(f"settled by the coop's DID: entry {settlement}")
    elif moves:
        lines.append("the coop's node records the settlement entry within seconds")
    report(
        json,
        {
            **written.doc(),
            "dispute": dispute,
            "outcome": outcome.value,
            "refund": body.get("refund"),
            "settlement": settlement,
        },
        lines,
    )


# -- duties ------------------------------------------------------------------


def _describe(event: Event) -> str:
    if event.type == lb.DISPUTE_SETTLED:
        return f"settled dispute {event.body['dispute']} with entry {event.body['entry']}"
    if event.type == lb.DEMURRAGE_CHARGED:
        return (
            f"charged {event.body['currency']} demurrage up to period end "
            f"{event.body['period_end']} in {len(event.body['entries'])} entr(y/ies)"
        )
    if event.type == "trust.StandingPublished":
        body = event.body
        return (
            f"published {body['context']} standing epoch {body['epoch']} ({body['count']} members)"
        )
    n = len(event.body.get("transactions", []))
    return f"{event.type} {event.id} ({n} transaction(s))"


@app.command("duties")
def duties(data_dir: DataDir = None, json: Json = False) -> None:
    """Settle resolved disputes, charge demurrage and publish standing epochs that are due,
    for coops whose key is here."""
    with local_node(data_dir) as node:
        runner = node.duties()
        signed = runner.run(node.clock_ms())
    kinds = Counter(e.type for e in signed)
    doc = {
        "signed": [
            {"coop": e.coop, "type": e.type, "id": e.id, "author": e.author, "body": e.body}
            for e in signed
        ],
        "settlements": kinds[lb.DISPUTE_SETTLED],
        "demurrage": kinds[lb.DEMURRAGE_CHARGED],
        "refused": [
            {"coop": coop, "duty": what, "code": exc.code, "reason": str(exc)}
            for coop, what, exc in runner.failures
        ],
    }
    lines = [f"{e.coop}: {_describe(e)}" for e in signed] or ["nothing due"]
    lines += [f"{coop}: {what} refused ({exc.code}): {exc}" for coop, what, exc in runner.failures]
    report(json, doc, lines)
    if runner.failures:
        raise typer.Exit(1)
