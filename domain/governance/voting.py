"""Rules for ballots: open votes, sealed commitments and their reveals, and delegation.

A ballot is judged against the proposal's own rules (those of its domain when
it was submitted) at trusted time: votes while it is open and before
``closes_at``, reveals after it and within the reveal window.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from icn.domain.coop.records import CoopRecord
from icn.domain.coop.state import CoopView, Effects, founded_coop
from icn.domain.governance import actions as a
from icn.domain.governance import bodies as b
from icn.domain.governance import state
from icn.domain.governance.eligibility import may_vote
from icn.domain.governance.guards import active, find_proposal, member_in
from icn.domain.governance.records import (
    BallotRecord,
    DelegationRecord,
    ProposalRecord,
    ProposalState,
)
from icn.domain.governance.tally import commitment_of
from icn.domain.refusals import Code, Refusal

if TYPE_CHECKING:
    from icn.domain.events.envelope import Event


def _votable(
    view: CoopView, coop: CoopRecord, event: Event, proposal_id: str, now: int
) -> ProposalRecord | Refusal:
    """The proposal, if the author may vote on it now: member, open, in its window, eligible."""
    problem = active(view, coop.coop, event.author)
    if problem:
        return problem
    p = find_proposal(view, coop.coop, proposal_id)
    if isinstance(p, Refusal):
        return p
    if p.state == ProposalState.WITHDRAWN:
        return Refusal(Code.PROPOSAL_WITHDRAWN, "the proposal was withdrawn")
    if p.state != ProposalState.OPEN or now >= p.closes_at:
        return Refusal(Code.PROPOSAL_CLOSED, "the proposal's voting has ended")
    if now < p.opens_at:
        return Refusal(Code.PROPOSAL_NOT_OPEN, f"voting opens at {p.opens_at}")
    if not may_vote(view, coop, event.author, p.rules):
        return Refusal(Code.NOT_A_VOTER, f"{event.author} may not vote in {p.domain}")
    return p


def _choice_problem(rules: a.DomainRules, choice: str, credits: int | None) -> Refusal | None:
    if choice == "block" and rules.method != "consent":
        return Refusal(Code.INVALID_VOTE, "a block means something under consent only")
    if credits is not None and rules.method != "quadratic":
        return Refusal(Code.INVALID_VOTE, "credits are spent under the quadratic method only")
    if credits is not None and credits > rules.credits:
        return Refusal(Code.INVALID_VOTE, f"at most {rules.credits} credits per proposal")
    return None


def _ballot(
    view: CoopView, event: Event, proposal_id: str, now: int, *, sealed: bool
) -> ProposalRecord | Refusal:
    """The proposal a cast (``sealed`` False) or a commitment (True) may go to now."""
    coop = founded_coop(view, event)
    p = _votable(view, coop, event, proposal_id, now)
    if isinstance(p, Refusal) or p.rules.sealed == sealed:
        return p
    if p.rules.sealed:
        return Refusal(Code.SEALED_BALLOT, "this domain takes sealed ballots: commit, then reveal")
    return Refusal(Code.SEALED_BALLOT, "this domain takes open votes: cast one")


def vote_cast(body: b.VoteCast, event: Event, view: CoopView, now: int) -> Refusal | Effects:
    """An eligible voter's choice; a later one replaces it while the proposal is open."""
    p = _ballot(view, event, body.proposal, now, sealed=False)
    if isinstance(p, Refusal):
        return p
    problem = _choice_problem(p.rules, body.choice, body.credits)
    if problem:
        return problem
    cast = BallotRecord(proposal=p.id, voter=event.author, vote=event.id, choice=body.choice)
    return [msgspec.structs.replace(cast, credits=body.credits, cast_ms=now)]


def vote_committed(
    body: b.VoteCommitted, event: Event, view: CoopView, now: int
) -> Refusal | Effects:
    """A sealed ballot, once per voter; nobody can tally it before the reveals."""
    p = _ballot(view, event, body.proposal, now, sealed=True)
    if isinstance(p, Refusal):
        return p
    if state.ballot(view, event.coop, p.id, event.author) is not None:
        return Refusal(Code.ALREADY_VOTED, "a sealed ballot is committed once")
    sealed = BallotRecord(proposal=p.id, voter=event.author, vote=event.id, choice=None)
    return [msgspec.structs.replace(sealed, commitment=body.commitment, cast_ms=now)]


def vote_revealed(
    body: b.VoteRevealed, event: Event, view: CoopView, now: int
) -> Refusal | Effects:
    """The voter opens their commitment after ``closes_at``, within the reveal window."""
    coop = founded_coop(view, event)
    p = find_proposal(view, coop.coop, body.proposal)
    if isinstance(p, Refusal):
        return p
    if p.state != ProposalState.OPEN or not p.closes_at <= now < p.tally_due():
        return Refusal(Code.REVEAL_WINDOW, f"reveals run from {p.closes_at} to {p.tally_due()}")
    ballot = state.ballot(view, coop.coop, p.id, event.author)
    if ballot is None or ballot.commitment is None or ballot.choice is not None:
        return Refusal(Code.NO_COMMITMENT, "no unrevealed commitment of the author")
    if commitment_of(body.choice, body.credits, body.salt) != ballot.commitment:
        return Refusal(Code.REVEAL_MISMATCH, "choice, credits and salt do not hash to it")
    problem = _choice_problem(p.rules, body.choice, body.credits)
    if problem:
        return problem
    revealed = msgspec.structs.replace(
        ballot, vote=event.id, choice=body.choice, credits=body.credits
    )
    return [revealed]


def vote_delegated(
    body: b.VoteDelegated, event: Event, view: CoopView, now: int
) -> Refusal | Effects:
    """A member follows another's vote in a domain; a chain leading back is refused."""
    found = member_in(view, event, body.domain)
    if isinstance(found, Refusal):
        return found
    coop = found[0]
    if body.to is not None:
        problem = active(view, coop.coop, body.to)
        if problem:
            return problem
        step: str | None = body.to
        seen: set[str] = set()
        while step is not None and step not in seen:
            if step == event.author:
                return Refusal(Code.DELEGATION_CYCLE, "the chain of delegates leads back")
            seen.add(step)
            step = state.delegation(view, coop.coop, body.domain, step)
    return [DelegationRecord(domain=body.domain, member=event.author, to=body.to, event=event.id)]
