"""What the governance rules keep: domains, proposals, ballots, delegations, charter versions.

A proposal keeps the rules of its domain as they were when it was submitted,
so a later change of the domain never changes how an open vote is counted. A
ballot is keyed by (proposal, voter), so a later vote replaces an earlier one
by construction; a delegation by (domain, member). Charter versions are keyed
by section and a zero-padded version number: every version stays a record.
"""

from __future__ import annotations

from typing import ClassVar

from icn.domain.coop.records import CoopRecord, Record
from icn.domain.governance.actions import Action, DomainRules

ROOT = "root"
"""The domain every coop has from its founding."""


class GovernanceRecord(Record, frozen=True, kw_only=True):
    """The coop's governance as a whole: how many proposals it has seen.

    Until the first proposal the coop's DID sets domains up by itself; from
    then on a domain changes only as an accepted proposal orders.
    """

    kind: ClassVar[str] = "governance"
    proposals: int = 0

    def key(self) -> str:
        return ""


class DomainRecord(Record, frozen=True, kw_only=True):
    """One domain's rules as they stand."""

    kind: ClassVar[str] = "gov-domain"
    domain: str
    rules: DomainRules
    version: int = 1
    """1 when defined (or the founding defaults of ``root``), one more per change."""
    changed_ms: int = 0

    def key(self) -> str:
        return self.domain


def root_domain(coop: CoopRecord) -> DomainRecord:
    """``root`` before any change: the :class:`DomainRules` defaults, dated at the founding.

    Derived from the coop record alone, so every replica has the same root
    domain without any event defining it: a majority of yes over no, a quorum
    of half the members, periods of one to thirty days, open to every member.
    """
    return DomainRecord(domain=ROOT, rules=DomainRules(), version=0, changed_ms=coop.founded_ms)


class ProposalState:
    """Where a proposal stands; only ``open`` takes votes."""

    OPEN = "open"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    NO_QUORUM = "no-quorum"
    WITHDRAWN = "withdrawn"
    VETOED = "vetoed"
    CLOSED = (ACCEPTED, REJECTED, NO_QUORUM)
    """Ended by a tally (the only states an appeal or an execution follows)."""


class Execution:
    """What became of an accepted proposal's action."""

    EXECUTED = "executed"
    FAILED = "failed"


class ProposalRecord(Record, frozen=True, kw_only=True):
    """One proposal: its action, its rules, its state and what its close and execution said."""

    kind: ClassVar[str] = "proposal"
    id: str
    domain: str
    author: str
    title: str
    action: Action
    rules: DomainRules
    """The domain's rules when it was submitted: what its votes are judged and counted by."""
    opens_at: int
    closes_at: int
    submitted_ms: int
    state: str = ProposalState.OPEN
    appeal: str | None = None
    """The appeal this proposal resolves, if any."""
    invocation: str | None = None
    """The contract invocation that opened it (its author is then the coop's DID)."""
    ended_ms: int | None = None
    """When it was closed, withdrawn or vetoed (trusted time)."""
    counted: int | None = None
    eligible: int | None = None
    ballots_digest: str | None = None
    execution: str | None = None
    """``None`` until executed; then :class:`Execution`."""
    effects: tuple[str, ...] = ()
    failed: str | None = None
    appeals: tuple[str, ...] = ()
    """Ids of the appeals filed against its outcome."""
    carried: tuple[str, ...] = ()
    """The effect event that named this proposal, as its own rule accepted it (every action
    has one effect; a ledger entry cannot name it, so a budget's stays empty)."""
    reverse: Action | None = None
    """What undoes the executed action, computed from the state just before its effect
    (the previous policy, the previous charter text, ...): the action an overturning
    appeal's proposal carries. ``None``: not executed, or the action has no reverse."""

    def key(self) -> str:
        return self.id

    def tally_due(self) -> int:
        """When it may be closed: at ``closes_at``, or after the reveal window if sealed."""
        return self.closes_at + (self.rules.reveal_window_ms if self.rules.sealed else 0)

    def appeal_until(self) -> int:
        """The end of the appeal window, counted from when the tally was due (a duty's time)."""
        return self.tally_due() + self.rules.appeal_window_ms


class BallotRecord(Record, frozen=True, kw_only=True):
    """One voter's ballot on one proposal: a choice, or a sealed commitment until revealed."""

    kind: ClassVar[str] = "ballot"
    proposal: str
    voter: str
    vote: str
    """The id of the event the counted choice comes from (cast, committed or revealed)."""
    choice: str | None
    """``None``: a sealed commitment not revealed (yet); counted as ``abstain``."""
    credits: int | None = None
    commitment: str | None = None
    cast_ms: int = 0

    def key(self) -> str:
        return ballot_key(self.proposal, self.voter)


def ballot_key(proposal: str, voter: str) -> str:
    """Proposal first, so one proposal's ballots are one key range."""
    return f"{proposal}/{voter}"


class DelegationRecord(Record, frozen=True, kw_only=True):
    """A member's delegation in one domain (``to`` ``None``: revoked)."""

    kind: ClassVar[str] = "delegation"
    domain: str
    member: str
    to: str | None
    event: str
    """The ``governance.VoteDelegated`` that set it."""

    def key(self) -> str:
        return delegation_key(self.domain, self.member)


def delegation_key(domain: str, member: str) -> str:
    """Domain first, so one domain's delegations are one key range."""
    return f"{domain}/{member}"


class AppealRecord(Record, frozen=True, kw_only=True):
    """An appeal against a closed proposal, and the proposal that resolves it."""

    kind: ClassVar[str] = "appeal"
    id: str
    proposal: str
    author: str
    grounds: str
    filed_ms: int
    resolution: str | None = None
    """The root-domain proposal submitted to resolve it (the latest, if one was withdrawn)."""
    outcome: str | None = None
    """Once that proposal is closed: ``overturned`` if it was accepted, else ``upheld``."""

    def key(self) -> str:
        return self.id


class CharterRecord(Record, frozen=True, kw_only=True):
    """One version of one charter section; earlier versions stay as their own records."""

    kind: ClassVar[str] = "charter"
    section: str
    version: int
    text: str
    rationale: str
    proposal: str
    event: str
    amended_ms: int

    def key(self) -> str:
        return charter_key(self.section, self.version)


def charter_key(section: str, version: int) -> str:
    """Zero-padded so key order is version order."""
    return f"{section}/{version:010d}"


RECORD_TYPES = (
    GovernanceRecord,
    DomainRecord,
    ProposalRecord,
    BallotRecord,
    DelegationRecord,
    AppealRecord,
    CharterRecord,
)
"""The governance capability's records, for :data:`icn.domain.registry.RECORD_TYPES`."""
