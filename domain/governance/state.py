"""The governance rules' questions, asked of the coop rules' view by kind and key.

A close is judged by recounting at the event's own position, so it reads
key ranges (one proposal's ballots, one domain's delegations, every member)
through :meth:`CoopView.scan`; everything else reads one record by key.
"""

from __future__ import annotations

from icn.domain.coop.records import CoopRecord, MemberRecord
from icn.domain.coop.state import CoopView
from icn.domain.governance.records import (
    ROOT,
    AppealRecord,
    BallotRecord,
    CharterRecord,
    DelegationRecord,
    DomainRecord,
    GovernanceRecord,
    ProposalRecord,
    ballot_key,
    delegation_key,
    root_domain,
)


def governance(view: CoopView, coop: str) -> GovernanceRecord:
    """The coop's governance counters (all zero before its first proposal)."""
    r = view.record(coop, GovernanceRecord.kind, "")
    return r if isinstance(r, GovernanceRecord) else GovernanceRecord()


def domain(view: CoopView, coop: CoopRecord, name: str) -> DomainRecord | None:
    """The domain's rules as they stand (``root`` has its founding defaults until changed)."""
    r = view.record(coop.coop, DomainRecord.kind, name)
    if isinstance(r, DomainRecord):
        return r
    return root_domain(coop) if name == ROOT else None


def proposal(view: CoopView, coop: str, proposal_id: str) -> ProposalRecord | None:
    """A proposal by the id of its submission."""
    r = view.record(coop, ProposalRecord.kind, proposal_id)
    return r if isinstance(r, ProposalRecord) else None


def ballot(view: CoopView, coop: str, proposal_id: str, voter: str) -> BallotRecord | None:
    """One voter's ballot on one proposal."""
    r = view.record(coop, BallotRecord.kind, ballot_key(proposal_id, voter))
    return r if isinstance(r, BallotRecord) else None


def ballots(view: CoopView, coop: str, proposal_id: str) -> list[BallotRecord]:
    """Every ballot on a proposal, in key (voter) order."""
    found = view.scan(coop, BallotRecord.kind, f"{proposal_id}/")
    return [r for r in found if isinstance(r, BallotRecord)]


def delegation(view: CoopView, coop: str, domain_name: str, member: str) -> str | None:
    """Whom ``member`` delegates to in the domain, if anyone."""
    r = view.record(coop, DelegationRecord.kind, delegation_key(domain_name, member))
    return r.to if isinstance(r, DelegationRecord) else None


def delegations(view: CoopView, coop: str, domain_name: str) -> dict[str, str]:
    """member -> delegate for every live delegation of the domain."""
    found = view.scan(coop, DelegationRecord.kind, f"{domain_name}/")
    return {r.member: r.to for r in found if isinstance(r, DelegationRecord) and r.to is not None}


def members(view: CoopView, coop: str) -> list[MemberRecord]:
    """Every membership record of the coop, in DID order."""
    return [r for r in view.scan(coop, MemberRecord.kind, "") if isinstance(r, MemberRecord)]


def appeal(view: CoopView, coop: str, appeal_id: str) -> AppealRecord | None:
    """An appeal by the id of its filing."""
    r = view.record(coop, AppealRecord.kind, appeal_id)
    return r if isinstance(r, AppealRecord) else None


def charter(view: CoopView, coop: str, section: str) -> list[CharterRecord]:
    """Every version of one charter section, oldest first."""
    found = view.scan(coop, CharterRecord.kind, f"{section}/")
    return [r for r in found if isinstance(r, CharterRecord)]
