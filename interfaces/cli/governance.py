"""Governance commands: propose, vote, delegate; read proposals, tallies and the charter.

Writes are signed with ``--key`` like every write (to ``--data-dir``'s store,
or posted to the node at ``--url``/``ICN_URL``); the node's rules judge them,
so a vote after the close or by a non-member is refused with its code. Reads
come from the local store's governance read models (brought up to its log
first) and rule records, composed by the same views the HTTP API answers
with (icn.projections.governance_views); a live tally is counted by the same
functions as the close. ``icn governance recount`` ignores those records: it
replays the coop's log in memory and recounts there, so it answers what any
auditor holding the log would. Members may be named by DID or by key name.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import msgspec
import typer

from icn.application.trust_epochs import CommittedState
from icn.domain.governance import bodies as gb
from icn.domain.governance.records import ProposalState
from icn.infrastructure.store.event_store import SqlEventStore
from icn.infrastructure.store.governance_reads import SqlGovernanceReads
from icn.infrastructure.store.read_models import ReadSide
from icn.interfaces.bootstrap import catch_up_reads, clock_ms, open_node
from icn.interfaces.cli import governance_acts as acts
from icn.interfaces.cli.common import DataDir, Json, out, print_json, settings_for
from icn.interfaces.cli.members import did_in
from icn.interfaces.cli.writes import (
    Coop,
    Key,
    Url,
    Writer,
    check_coop_id,
    check_event_id,
    currency_of,
    report,
    units_of,
    writer,
)
from icn.projections import governance_views as views
from icn.projections.governance_book import GovernanceBook

app = typer.Typer(
    help="Governance audits: recount a proposal from the log; domains and their history.",
    no_args_is_help=True,
)

ACTIONS = (
    "add-member", "remove-member", "allocate-budget", "freeze", "unfreeze", "amend-charter",
    "change-policy", "change-domain", "text",
)  # fmt: skip
"""The actions ``icn propose`` builds from its options (others: ``--action-json``)."""
UNITS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
MARGIN_MS = 60_000
"""Added to ``--closes-in`` so the period still lasts that long when the node accepts it."""
CHOICES = ("yes", "no", "abstain", "block")

Domain = Annotated[str, typer.Option("--domain", help="Governance domain (root by default).")]


def span_ms(text: str) -> int:
    """A duration such as ``7d``, ``36h``, ``90m`` or ``3600s``, in milliseconds."""
    found = re.fullmatch(r"\s*(\d{1,6})\s*([smhd])\s*", text)
    if found is None:
        raise typer.BadParameter(
            f"{text!r}: a number and s, m, h or d (7d)", param_hint="'--closes-in'"
        )
    return int(found[1]) * UNITS[found[2]]


def _needs(value: str | None, option: str, action: str) -> str:
    if value is None:
        raise typer.BadParameter(f"{action} needs {option}", param_hint=f"'{option}'")
    return value


def build_action(
    w: Writer, data_dir: Path | None, action: str, target: str | None, opts: dict[str, Any]
) -> dict[str, Any]:
    """The proposal's ``action`` object from the command line (checked again by the rules)."""
    extra: dict[str, Any] = opts["action_json"] or {}
    body: dict[str, Any] = {"kind": action}
    if action in ("add-member", "remove-member", "freeze", "unfreeze"):
        body["member"] = did_in(data_dir, _needs(target, "TARGET", action), "'TARGET'")
        if action == "add-member":
            body["roles"] = opts["roles"]
        if action in ("remove-member", "freeze"):
            body["reason"] = _needs(opts["reason"], "--reason", action)
    elif action == "allocate-budget":
        spec = currency_of(w.coop_record(), _needs(opts["currency"], "--currency", action))
        body |= {
            "to": did_in(data_dir, _needs(target, "TARGET", action), "'TARGET'"),
            "amount": units_of(_needs(opts["amount"], "--amount", action), spec),
            "currency": spec.code,
            "purpose": _needs(opts["purpose"], "--purpose", action),
        }
    elif action == "amend-charter":
        body |= {
            "section": _needs(target, "TARGET", action),
            "text": _needs(opts["charter_text"], "--charter-text", action),
            "rationale": _needs(opts["reason"], "--reason", action),
        }
    elif action == "change-domain":
        body["domain"] = _needs(target, "TARGET", action)
    elif action not in ACTIONS:
        body = {}
    return {**body, **extra}


def _json_object(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = msgspec.json.decode(text)
    except msgspec.DecodeError:
        value = None
    if not isinstance(value, dict):
        raise typer.BadParameter("a JSON object", param_hint="'--action-json'")
    return value


def propose(
    action: Annotated[
        str, typer.Argument(help=f"One of {', '.join(ACTIONS)} (or any, with --action-json).")
    ],
    coop: Coop,
    key: Key,
    title: Annotated[str, typer.Option("--title", help="One line (200 characters).")],
    target: Annotated[
        str | None,
        typer.Argument(
            help="The member (DID or key name), the budget's recipient, the charter section "
            "or the domain the action is about."
        ),
    ] = None,
    text: Annotated[str, typer.Option("--text", help="Why: the proposal's text.")] = "",
    domain: Domain = "root",
    closes_in: Annotated[
        str, typer.Option("--closes-in", help="Voting period from now: 7d, 36h, 90m.")
    ] = "7d",
    roles: Annotated[
        list[str] | None, typer.Option("--role", help="add-member: a role (repeatable).")
    ] = None,
    reason: Annotated[
        str | None,
        typer.Option("--reason", help="remove-member, freeze; amend-charter's rationale."),
    ] = None,
    amount: Annotated[str | None, typer.Option("--amount", help="allocate-budget: 12.50")] = None,
    currency: Annotated[str | None, typer.Option("--currency", help="allocate-budget")] = None,
    purpose: Annotated[str | None, typer.Option("--purpose", help="allocate-budget")] = None,
    charter_text: Annotated[
        str | None, typer.Option("--charter-text", help="amend-charter: the section's new text.")
    ] = None,
    action_json: Annotated[
        str | None,
        typer.Option(
            "--action-json",
            help="Fields merged into the action as JSON: change-policy's policy, "
            "change-domain's rules, freeze's until…",
        ),
    ] = None,
    url: Url = None,
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """Put an action to the vote: sign governance.ProposalSubmitted (its id is the proposal's)."""
    period = span_ms(closes_in)
    opts = {
        "roles": roles or [], "reason": reason, "amount": amount, "currency": currency,
        "purpose": purpose, "charter_text": charter_text, "action_json": _json_object(action_json),
    }  # fmt: skip
    with writer(data_dir, url, coop, key) as w:
        body = {
            "domain": domain,
            "title": title,
            "text": text,
            "action": build_action(w, data_dir, action, target, opts),
            "closes_at": clock_ms() + period + MARGIN_MS,
        }
        written = w.submit([(gb.PROPOSAL_SUBMITTED, body)])[0]
    report(
        json,
        {**written.doc(), **body},
        [f"proposal {written.event.id}: {title} (closes at {body['closes_at']})"],
    )


def vote(
    proposal: Annotated[str, typer.Argument(help="The proposal's id.")],
    choice: Annotated[str, typer.Argument(help="yes, no, abstain or block (consent only).")],
    coop: Coop,
    key: Key,
    reason: Annotated[str | None, typer.Option("--reason", help="Why (1024 characters).")] = None,
    credits: Annotated[
        int | None, typer.Option("--credits", help="quadratic: voice credits spent.")
    ] = None,
    url: Url = None,
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """Vote on an open proposal: sign governance.VoteCast (it replaces your earlier vote); in a
    sealed domain, keep the choice and a salt in this data dir and sign only their commitment
    (governance.VoteCommitted, once), to open with `icn reveal` after the close."""
    if choice not in CHOICES:
        raise typer.BadParameter(f"{choice!r}: one of {', '.join(CHOICES)}", param_hint="'CHOICE'")
    proposal = check_event_id(proposal, "'ID'")
    body = {"proposal": proposal, "choice": choice, "reason": reason, "credits": credits}
    with writer(data_dir, url, coop, key) as w:
        if acts.is_sealed(w, proposal):
            written, sealed, path = acts.commit(w, data_dir, proposal, choice, credits, reason)
            line = f"committed a sealed ballot on {proposal} ({written.event.id}); kept in {path}"
            report(json, {**written.doc(), **sealed, "kept": str(path)}, [line])
            return
        written = w.submit([(gb.VOTE_CAST, body)])[0]
    report(json, {**written.doc(), **body}, [f"voted {choice} on {proposal} ({written.event.id})"])


def delegate(
    to: Annotated[str, typer.Argument(help="A member (DID or key name), or 'none' to revoke.")],
    coop: Coop,
    key: Key,
    domain: Domain = "root",
    url: Url = None,
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """Let a member vote for you in a domain: sign governance.VoteDelegated."""
    whom = None if to == "none" else did_in(data_dir, to, "'DID'")
    body = {"domain": domain, "to": whom}
    with writer(data_dir, url, coop, key) as w:
        written = w.submit([(gb.VOTE_DELEGATED, body)])[0]
    line = f"delegated {domain} to {whom}" if whom else f"revoked your delegation in {domain}"
    report(json, {**written.doc(), **body}, [line])


# -- reads -------------------------------------------------------------------


@contextmanager
def _reads(data_dir: Path | None, coop: str) -> Iterator[tuple[SqlEventStore, SqlGovernanceReads]]:
    """The local store and its governance read models, brought up to its log first: the
    queries the node's HTTP routes answer from (icn.projections.governance_views)."""
    check_coop_id(coop)
    node = open_node(settings_for(data_dir))
    side = ReadSide(node.store)
    try:
        catch_up_reads(node, side, coop)
        yield node.store, SqlGovernanceReads(node.store.engine)
    finally:
        side.close()
        node.close()


def proposals(
    coop: Coop,
    state_: Annotated[
        str | None,
        typer.Option("--state", help="open, accepted, rejected, no-quorum, withdrawn, vetoed."),
    ] = None,
    domain: Annotated[str | None, typer.Option("--domain", help="Only this domain.")] = None,
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """The coop's proposals, oldest first."""
    found: list[views.ProposalSummary] = []
    with _reads(data_dir, coop) as (_, reads):
        after = None
        while True:
            page = views.proposals(
                reads, coop, state=state_, domain=domain, after=after, limit=views.MAX_PAGE
            )
            found += page.items
            if page.next is None:
                break
            after = page.next
    if json:
        print_json({"coop": coop, "proposals": msgspec.to_builtins(found)})
        return
    for p in found:
        done = f", {p.execution}" if p.execution else ""
        out.print(f"{p.id}  {p.state}{done}  {p.domain}  {p.action}  {p.title}", markup=False)
    if not found:
        out.print("no proposals")


def tally(
    proposal: Annotated[str, typer.Argument(help="The proposal's id.")],
    coop: Coop,
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """A proposal's tally: the close's for a closed one, the live count (and the outcome it
    projects) for an open one; hidden while a sealed vote runs."""
    with _reads(data_dir, coop) as (store, reads):
        views.founded(reads, coop)
        book = GovernanceBook(CommittedState(store), store.tree_size)
        found = book.read(coop, check_event_id(proposal, "'ID'"), clock_ms())
        if found is None:
            raise views.UnknownProposalError(f"no proposal {proposal} in {coop}")
        p, live = found
        row = reads.proposal(coop, p.id) if p.state != ProposalState.OPEN else None
        t = views.tally_view(coop, p, row, live)
    if json:
        print_json(msgspec.to_builtins(t))
        return
    if t.counts is None:
        out.print(
            f"{p.id}: sealed vote, hidden until the reveals ({t.ballots} committed,"
            f" {t.revealed} revealed)",
            markup=False,
        )
        return
    c = t.counts
    out.print(
        f"{p.id}: {p.state}; yes {c.yes}, no {c.no}, abstain {c.abstain}, block {c.block};"
        f" {t.counted} of {t.eligible} eligible counted; outcome {t.outcome or t.projected}",
        markup=False,
    )


@app.command("recount")
def recount_cmd(
    proposal: Annotated[str, typer.Argument(help="The proposal's id.")],
    coop: Coop,
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """Recount a proposal from the coop's log alone and compare with its close (exit 1 when a
    stored close differs)."""
    from icn.application.governance_recount import recount_proposal

    check_coop_id(coop)
    node = open_node(settings_for(data_dir))
    try:
        result = recount_proposal(node.store, coop, check_event_id(proposal, "'ID'"))
    finally:
        node.close()
    doc = msgspec.to_builtins(result)
    verdict = "matches its close" if result.matches else "no close yet"
    if result.closed and not result.matches:
        verdict = "DOES NOT MATCH its close"
    report(json, doc, [f"{result.outcome}, {result.counted} of {result.eligible}: {verdict}"])
    if result.closed and not result.matches:
        raise typer.Exit(1)


def charter(
    coop: Coop,
    history: Annotated[
        bool, typer.Option("--history", help="Every version of every section, oldest first.")
    ] = False,
    section: Annotated[
        str | None,
        typer.Option("--section", help="Only this section (with --history: all its versions)."),
    ] = None,
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """The charter: every section's current text, or with --history every version of each,
    each with the proposal that made it."""
    with _reads(data_dir, coop) as (_, reads):
        if section is not None:
            one = views.charter_section(reads, coop, section)
            doc: Any = one
            shown = one.versions if history else [one.current]
        else:
            whole = views.charter(reads, coop)
            doc = whole
            shown = whole.history if history else whole.sections
    if json:
        print_json(msgspec.to_builtins(doc))
        return
    for v in shown:
        out.print(
            f"## {v.section} (version {v.version}, proposal {v.proposal})\n{v.text}", markup=False
        )
    if not shown:
        out.print("no charter section yet")


@app.command("domains")
def domains_cmd(
    coop: Coop,
    history: Annotated[
        bool, typer.Option("--history", help="Every version of each domain's rules.")
    ] = False,
    domain: Annotated[str | None, typer.Option("--domain", help="Only this domain.")] = None,
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """The coop's governance domains with their rules as they stand, or with --history every
    version of them (root's version 0 is the founding defaults)."""
    with _reads(data_dir, coop) as (_, reads):
        if domain is not None:
            found = [views.domain_history(reads, coop, domain)]
        else:
            found = views.domain_histories(reads, coop)
    if json:
        docs = [msgspec.to_builtins(h) for h in found]
        if not history:
            for d in docs:
                del d["versions"]
        print_json({"coop": coop, "domains": docs})
        return
    for h in found:
        for v in h.versions if history else [h.versions[-1]]:
            r = v.rules
            why = f", proposal {v.proposal}" if v.proposal else ""
            out.print(
                f"{h.domain} v{v.version} ({v.kind}{why}): {r['method']}, threshold"
                f" {r['threshold_ppm']} ppm, quorum {r['quorum_ppm']} ppm"
                f"{', sealed' if r['sealed'] else ''}",
                markup=False,
            )
