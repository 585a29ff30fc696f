"""Checks every governance rule starts with: who the author is, and what they name.

Each answers the thing found or the refusal, so a rule reads as its own
conditions only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from icn.domain.coop.records import CoopRecord
from icn.domain.coop.state import CoopView, active_problem, founded_coop
from icn.domain.governance import state
from icn.domain.governance.records import DomainRecord, ProposalRecord
from icn.domain.refusals import Code, Refusal

if TYPE_CHECKING:
    from icn.domain.events.envelope import Event


def active(view: CoopView, coop: str, did: str) -> Refusal | None:
    return active_problem(view, coop, did)


def by_coop_did(view: CoopView, event: Event) -> CoopRecord | Refusal:
    coop = founded_coop(view, event)
    if event.author != coop.did:
        return Refusal(Code.NOT_AUTHORIZED, f"only the coop's DID states {event.type}")
    return coop


def find_proposal(view: CoopView, coop: str, proposal_id: str) -> ProposalRecord | Refusal:
    p = state.proposal(view, coop, proposal_id)
    return p if p is not None else Refusal(Code.UNKNOWN_PROPOSAL, f"no proposal {proposal_id}")


def duty_on(
    view: CoopView, event: Event, proposal_id: str
) -> tuple[CoopRecord, ProposalRecord] | Refusal:
    """The coop and the proposal a duty of the coop's DID names."""
    coop = by_coop_did(view, event)
    if isinstance(coop, Refusal):
        return coop
    p = find_proposal(view, coop.coop, proposal_id)
    return p if isinstance(p, Refusal) else (coop, p)


def member_in(
    view: CoopView, event: Event, domain_name: str
) -> tuple[CoopRecord, DomainRecord] | Refusal:
    """The coop and the domain an active author acts in."""
    coop = founded_coop(view, event)
    problem = active(view, coop.coop, event.author)
    if problem:
        return problem
    domain = state.domain(view, coop, domain_name)
    if domain is None:
        return Refusal(Code.UNKNOWN_DOMAIN, f"no domain {domain_name!r}")
    return coop, domain
