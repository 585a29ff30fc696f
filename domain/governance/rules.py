"""Rules for domains, proposals, closes, executions, appeals and the charter; the table of types.

Who may state what: the coop's DID defines and changes domains, closes
proposals with a tally every node recounts, executes accepted ones once and
records charter amendments; an eligible member proposes (ballots and
delegations are :mod:`.voting`'s); the author withdraws; a veto role vetoes;
an active member appeals. Every window is judged at trusted time ``now``,
never at the author's ``ts``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from icn.domain.capability import EventType
from icn.domain.contract import proposing
from icn.domain.coop.records import CoopRecord
from icn.domain.coop.state import CoopView, Effects, founded_coop
from icn.domain.events.bodies import ENTRY_RECORDED
from icn.domain.governance import actions as a
from icn.domain.governance import bodies as b
from icn.domain.governance import state, voting
from icn.domain.governance.checks import action_problem, rules_problem
from icn.domain.governance.closing import recount
from icn.domain.governance.eligibility import qualifies
from icn.domain.governance.guards import active, by_coop_did, duty_on, find_proposal, member_in
from icn.domain.governance.links import (
    appeal_resolution,
    budget_transaction,
    follow_link,
    is_action,
    kind_of,
    reverse_of,
)
from icn.domain.governance.records import (
    ROOT,
    AppealRecord,
    CharterRecord,
    DomainRecord,
    Execution,
    ProposalRecord,
    ProposalState,
)
from icn.domain.refusals import Code, Refusal, lookup

if TYPE_CHECKING:
    from icn.domain.events.envelope import Event


def _setting_up(view: CoopView, coop: str) -> str | None:
    """Why an unlinked domain change is refused: ``None`` until the coop's first proposal."""
    if state.governance(view, coop).proposals == 0:
        return None
    return "since the first proposal, only a proposal orders it"


def _set_domain(
    body: b.DomainDefined | b.DomainChanged, event: Event, view: CoopView, now: int
) -> Refusal | Effects:
    """A domain defined (it must not exist) or changed (it must): by the coop's DID."""
    coop = by_coop_did(view, event)
    if isinstance(coop, Refusal):
        return coop
    current = state.domain(view, coop, body.domain)
    if isinstance(body, b.DomainDefined) and current is not None:
        return Refusal(Code.DOMAIN_EXISTS, f"domain {body.domain!r} exists already")
    if isinstance(body, b.DomainChanged) and current is None:
        return Refusal(Code.UNKNOWN_DOMAIN, f"no domain {body.domain!r}")
    problem = rules_problem(body.rules)
    if problem:
        return problem
    wanted = a.ChangeDomain(domain=body.domain, rules=body.rules)
    required = _setting_up(view, coop.coop)
    linked = follow_link(view, event, coop, body.proposal, is_action(wanted), required=required)
    if isinstance(linked, Refusal):
        return linked
    version = current.version + 1 if current else 1
    record = DomainRecord(domain=body.domain, rules=body.rules, version=version, changed_ms=now)
    return [record, *linked]


def domain_defined(
    body: b.DomainDefined, event: Event, view: CoopView, now: int
) -> Refusal | Effects:
    """The coop's DID adds a domain (``root`` exists from the founding)."""
    return _set_domain(body, event, view, now)


def domain_changed(
    body: b.DomainChanged, event: Event, view: CoopView, now: int
) -> Refusal | Effects:
    """The coop's DID replaces a domain's rules; open proposals keep the rules they began with."""
    return _set_domain(body, event, view, now)


def _period_problem(body: b.ProposalSubmitted, rules: a.DomainRules, now: int) -> Refusal | None:
    opens = max(now, body.opens_at or now)
    if opens - now > rules.max_period_ms:
        return Refusal(Code.INVALID_VOTING_PERIOD, "opens_at lies beyond the longest period")
    length = body.closes_at - opens
    if not rules.min_period_ms <= length <= rules.max_period_ms:
        return Refusal(
            Code.INVALID_VOTING_PERIOD,
            f"the vote would last {length} ms; the domain allows"
            f" {rules.min_period_ms} to {rules.max_period_ms} ms",
        )
    return None


def _appeal_problem(body: b.ProposalSubmitted, view: CoopView, coop: str) -> Refusal | None:
    if body.appeal is None:
        return None
    if body.domain != ROOT:
        return Refusal(Code.INVALID_ACTION, "an appeal is resolved in the root domain")
    appeal = state.appeal(view, coop, body.appeal)
    if appeal is None:
        return Refusal(Code.UNKNOWN_APPEAL, f"no appeal {body.appeal}")
    if appeal.resolution is not None:
        before = state.proposal(view, coop, appeal.resolution)
        if before is None or before.state not in (ProposalState.WITHDRAWN, ProposalState.VETOED):
            return Refusal(Code.APPEAL_RESOLVED, f"{appeal.resolution} resolves it already")
    appealed = state.proposal(view, coop, appeal.proposal)
    assert appealed is not None
    overturn = appeal_resolution(appealed)
    if isinstance(body.action, a.TextOnly):
        return None
    if body.action == overturn:
        return _overturned_already(view, coop, appealed, appeal.id)
    reason = (
        f"an appeal's proposal carries text or {kind_of(overturn)}, the decision's exact reverse"
        if overturn
        else "the decision has no reverse: an appeal's proposal carries text only"
    )
    return Refusal(Code.APPEAL_ACTION_MISMATCH, reason)


def _overturned_already(
    view: CoopView, coop: str, appealed: ProposalRecord, appeal_id: str
) -> Refusal | None:
    """A decision is overturned by one appeal's proposal at most: another appeal's, open or
    accepted with an action, would carry the same reverse out twice."""
    for other_id in appealed.appeals:
        other = state.appeal(view, coop, other_id)
        if other_id == appeal_id or other is None or other.resolution is None:
            continue
        resolution = state.proposal(view, coop, other.resolution)
        if (
            resolution is not None
            and resolution.state in (ProposalState.OPEN, ProposalState.ACCEPTED)
            and not isinstance(resolution.action, a.TextOnly)
        ):
            return Refusal(Code.ALREADY_OVERTURNED, f"{resolution.id} overturns it already")
    return None


def _proposer_in(
    body: b.ProposalSubmitted, event: Event, view: CoopView, now: int
) -> tuple[CoopRecord, DomainRecord] | Refusal:
    """A member's proposal: the coop and the domain, if the author may propose this there."""
    found = member_in(view, event, body.domain)
    if isinstance(found, Refusal):
        return found
    coop, domain = found
    rules = domain.rules
    member = view.member(coop.coop, event.author)
    if not qualifies(view, coop, member, rules.proposer_roles, rules.min_class_propose):
        return Refusal(Code.NOT_A_PROPOSER, f"{event.author} may not propose in {body.domain}")
    problem = (
        _period_problem(body, rules, now)
        or action_problem(body.action, view, coop, now)
        or _appeal_problem(body, view, coop.coop)
    )
    return problem or found


def proposal_submitted(
    body: b.ProposalSubmitted, event: Event, view: CoopView, now: int
) -> Refusal | Effects:
    """An eligible proposer puts an action to the vote within the domain's period bounds; or
    the coop's DID opens the proposal a contract invocation asked for (:mod:`.proposing`)."""
    coop = founded_coop(view, event)
    effects: Effects = []
    if event.author == coop.did:
        opened = proposing.opened_for(body, event.id, view, coop, now)
        if isinstance(opened, Refusal):
            return opened
        domain, invocation = opened
        effects.append(invocation)
    elif body.invocation is not None:
        return Refusal(Code.NOT_AUTHORIZED, "only the coop's DID opens a contract's proposal")
    else:
        found = _proposer_in(body, event, view, now)
        if isinstance(found, Refusal):
            return found
        coop, domain = found
    rules = domain.rules
    effects.append(
        ProposalRecord(
            id=event.id,
            domain=body.domain,
            author=event.author,
            title=body.title,
            action=body.action,
            rules=rules,
            opens_at=max(now, body.opens_at or now),
            closes_at=body.closes_at,
            submitted_ms=now,
            appeal=body.appeal,
            invocation=body.invocation,
        )
    )
    counters = state.governance(view, coop.coop)
    effects.append(msgspec.structs.replace(counters, proposals=counters.proposals + 1))
    if body.appeal is not None:
        appeal = state.appeal(view, coop.coop, body.appeal)
        assert appeal is not None
        effects.append(msgspec.structs.replace(appeal, resolution=event.id))
    return effects


def _still_open(view: CoopView, coop: str, proposal_id: str, now: int) -> ProposalRecord | Refusal:
    p = find_proposal(view, coop, proposal_id)
    if isinstance(p, Refusal):
        return p
    if p.state == ProposalState.WITHDRAWN:
        return Refusal(Code.PROPOSAL_WITHDRAWN, "the proposal was withdrawn")
    if p.state != ProposalState.OPEN or now >= p.closes_at:
        return Refusal(Code.PROPOSAL_CLOSED, "the proposal's voting has ended")
    return p


def proposal_withdrawn(
    body: b.ProposalWithdrawn, event: Event, view: CoopView, now: int
) -> Refusal | Effects:
    """The author takes back a proposal still open."""
    p = _still_open(view, event.coop, body.proposal, now)
    if isinstance(p, Refusal):
        return p
    if event.author != p.author:
        return Refusal(Code.NOT_PROPOSAL_AUTHOR, "only the proposal's author withdraws it")
    return [msgspec.structs.replace(p, state=ProposalState.WITHDRAWN, ended_ms=now)]


def proposal_vetoed(
    body: b.ProposalVetoed, event: Event, view: CoopView, now: int
) -> Refusal | Effects:
    """A holder of one of the domain's veto roles stops a proposal still open."""
    problem = active(view, event.coop, event.author)
    if problem:
        return problem
    p = _still_open(view, event.coop, body.proposal, now)
    if isinstance(p, Refusal):
        return p
    member = view.member(event.coop, event.author)
    if member is None or not set(p.rules.veto_roles) & set(member.roles):
        return Refusal(Code.NO_VETO_RIGHT, f"{event.author} holds no veto role of {p.domain}")
    return [msgspec.structs.replace(p, state=ProposalState.VETOED, ended_ms=now)]


def proposal_closed(
    body: b.ProposalClosed, event: Event, view: CoopView, now: int
) -> Refusal | Effects:
    """The coop's DID closes a proposal once, with the tally every node recounts here."""
    found = duty_on(view, event, body.proposal)
    if isinstance(found, Refusal):
        return found
    coop, p = found
    if p.state != ProposalState.OPEN:
        return Refusal(Code.ALREADY_CLOSED, f"the proposal is {p.state}")
    if now < p.tally_due():
        return Refusal(Code.TALLY_NOT_DUE, f"the tally is due at {p.tally_due()}")
    t = recount(view, coop, p)
    stated = (body.outcome, body.counts, body.eligible, body.counted, body.ballots_digest)
    if stated != (t.outcome, t.counts, t.eligible, t.counted, t.ballots_digest):
        return Refusal(Code.TALLY_MISMATCH, f"the recount gives {t.outcome}, {t.counts}")
    effects: Effects = [
        msgspec.structs.replace(
            p, state=t.outcome, ended_ms=now, counted=t.counted, eligible=t.eligible,
            ballots_digest=t.ballots_digest,
        )
    ]  # fmt: skip
    appeal = state.appeal(view, coop.coop, p.appeal) if p.appeal else None
    if appeal is not None:
        verdict = "overturned" if t.outcome == ProposalState.ACCEPTED else "upheld"
        effects.append(msgspec.structs.replace(appeal, outcome=verdict))
    return effects


def proposal_executed(
    body: b.ProposalExecuted, event: Event, view: CoopView, now: int
) -> Refusal | Effects:
    """The coop's DID records, once, what carried an accepted proposal out (or why not)."""
    found = duty_on(view, event, body.proposal)
    if isinstance(found, Refusal):
        return found
    coop, p = found
    if p.execution is not None:
        return Refusal(Code.ALREADY_EXECUTED, f"the proposal was {p.execution} already")
    if p.state != ProposalState.ACCEPTED:
        return Refusal(Code.NOT_ACCEPTED, f"the proposal is {p.state}")
    if body.failed is not None and (body.effects or lookup(body.failed) is None):
        return Refusal(Code.INVALID_EXECUTION, "failed names a refusal code, and then no effects")
    if body.failed is None and isinstance(p.action, a.TextOnly) != (not body.effects):
        return Refusal(Code.INVALID_EXECUTION, "effects are listed for every action but text")
    missing = [e for e in body.effects if view.event(coop.coop, e) is None]
    if missing or len(set(body.effects)) != len(body.effects):
        return Refusal(Code.INVALID_EXECUTION, f"effects not in the log, or repeated: {missing}")
    problem = _effects_problem(body, view, coop, p)
    if problem:
        return problem
    done = Execution.FAILED if body.failed is not None else Execution.EXECUTED
    reverse = p.reverse
    if done == Execution.EXECUTED and isinstance(p.action, BUDGETS):
        reverse = reverse_of(p.action, view, coop)  # an entry cannot link: its reverse here
    return [
        msgspec.structs.replace(
            p, execution=done, effects=tuple(body.effects), failed=body.failed, reverse=reverse
        )
    ]


BUDGETS = (a.AllocateBudget, a.ReclaimBudget)
"""Actions carried out by a ledger entry, which names its proposal in its memo only."""


def _effects_problem(
    body: b.ProposalExecuted, view: CoopView, coop: CoopRecord, p: ProposalRecord
) -> Refusal | None:
    """The effects listed are the very events that carried ``p`` out: the one its link
    recorded, or for a budget the entry by the coop's DID that moves what it ordered."""
    if body.failed is not None:
        if p.carried:
            return Refusal(Code.INVALID_EXECUTION, f"{p.carried[0]} carried it out already")
        return None
    if isinstance(p.action, BUDGETS):
        want = budget_transaction(p.action, coop.did, p.id)
        entry = view.event(coop.coop, body.effects[0]) if len(body.effects) == 1 else None
        if (
            entry is None
            or entry.type != ENTRY_RECORDED
            or entry.author != coop.did
            or (entry.body.get("transactions") != [want])
        ):
            return Refusal(Code.INVALID_EXECUTION, f"one entry by the coop's DID moves {want}")
        return None
    if list(body.effects) != list(p.carried):
        return Refusal(
            Code.INVALID_EXECUTION, f"the effect that carried it out is {list(p.carried)}"
        )
    return None


def appeal_filed(body: b.AppealFiled, event: Event, view: CoopView, now: int) -> Refusal | Effects:
    """An active member appeals a tallied outcome within its appeal window."""
    problem = active(view, event.coop, event.author)
    if problem:
        return problem
    p = find_proposal(view, event.coop, body.proposal)
    if isinstance(p, Refusal):
        return p
    if p.state not in ProposalState.CLOSED:
        return Refusal(Code.NOT_APPEALABLE, f"the proposal is {p.state}")
    if now >= p.appeal_until():
        return Refusal(Code.APPEAL_WINDOW_CLOSED, f"appeals ended at {p.appeal_until()}")
    record = AppealRecord(
        id=event.id, proposal=p.id, author=event.author, grounds=body.grounds, filed_ms=now
    )
    return [record, msgspec.structs.replace(p, appeals=(*p.appeals, event.id))]


def charter_amended(
    body: b.CharterAmended, event: Event, view: CoopView, now: int
) -> Refusal | Effects:
    """The coop's DID records the next version of a section, as an accepted proposal ordered."""
    coop = by_coop_did(view, event)
    if isinstance(coop, Refusal):
        return coop
    wanted = a.AmendCharter(section=body.section, text=body.text, rationale=body.rationale)
    linked = follow_link(view, event, coop, body.proposal, is_action(wanted))
    if isinstance(linked, Refusal):
        return linked
    versions = state.charter(view, coop.coop, body.section)
    if any(v.proposal == body.proposal for v in versions):
        return Refusal(Code.ALREADY_EXECUTED, "this proposal amended the section already")
    return [
        *linked,
        CharterRecord(
            section=body.section, version=len(versions) + 1, text=body.text,
            rationale=body.rationale, proposal=body.proposal, event=event.id, amended_ms=now,
        )
    ]  # fmt: skip


EVENT_TYPES = (
    EventType(b.DOMAIN_DEFINED, b.DomainDefined, domain_defined),
    EventType(b.DOMAIN_CHANGED, b.DomainChanged, domain_changed),
    EventType(b.PROPOSAL_SUBMITTED, b.ProposalSubmitted, proposal_submitted),
    EventType(b.VOTE_CAST, b.VoteCast, voting.vote_cast),
    EventType(b.VOTE_COMMITTED, b.VoteCommitted, voting.vote_committed),
    EventType(b.VOTE_REVEALED, b.VoteRevealed, voting.vote_revealed),
    EventType(b.VOTE_DELEGATED, b.VoteDelegated, voting.vote_delegated),
    EventType(b.PROPOSAL_WITHDRAWN, b.ProposalWithdrawn, proposal_withdrawn),
    EventType(b.PROPOSAL_VETOED, b.ProposalVetoed, proposal_vetoed),
    EventType(b.PROPOSAL_CLOSED, b.ProposalClosed, proposal_closed),
    EventType(b.PROPOSAL_EXECUTED, b.ProposalExecuted, proposal_executed),
    EventType(b.APPEAL_FILED, b.AppealFiled, appeal_filed),
    EventType(b.CHARTER_AMENDED, b.CharterAmended, charter_amended),
)
"""The governance event types: domains, proposals, ballots, delegation, closes, executions."""
