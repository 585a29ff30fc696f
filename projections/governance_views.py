"""What members read about governance: domains and every version of their rules, proposals,
tallies, ballots, votes, the charter and every version of its sections.

One place composes the governance read models' rows with the rules' records
(domains, proposals' rules and effective dates, ballots) into the documents
the HTTP API answers and ``icn proposals / tally / charter --json`` print, so
the two never disagree. The live tally comes from
:mod:`icn.projections.governance_book` (the same tally functions as the
close); this module only shapes it. "Now" is passed in, never read here.

A sealed proposal's choices stay hidden while it is open: its tally shows
only how many ballots were committed and revealed, and its ballots only their
commitments until each is revealed (a reveal is public in the log anyway).
"""

from __future__ import annotations

import re
from typing import Any, Protocol

import msgspec

from icn.application.coop_view import decode_record
from icn.application.errors import InvalidRequest, NotFound
from icn.domain.coop.records import PPM, CoopRecord
from icn.domain.governance.actions import DomainRules
from icn.domain.governance.bodies import Counts
from icn.domain.governance.records import (
    ROOT,
    BallotRecord,
    DomainRecord,
    ProposalRecord,
    ProposalState,
    root_domain,
)

MAX_PAGE = 1000
STATES = (
    ProposalState.OPEN,
    ProposalState.ACCEPTED,
    ProposalState.REJECTED,
    ProposalState.NO_QUORUM,
    ProposalState.WITHDRAWN,
    ProposalState.VETOED,
)
"""The states a proposal list may be filtered by."""
_DOMAIN = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_ID = re.compile(r"^[0-9a-f]{64}$")


class InvalidStateError(InvalidRequest):
    """A ``state`` that is none of :data:`STATES`."""

    code = "invalid-state"


class InvalidDomainError(InvalidRequest):
    """A ``domain`` that is not a domain name."""

    code = "invalid-domain"


class UnknownDomainError(InvalidRequest):
    """A well-formed ``domain`` the coop has not defined."""

    code = "unknown-domain"


class NoSuchDomainError(NotFound):
    """A domain asked for by name (a path) that the coop has not defined."""

    code = "unknown-domain"


class UnknownSectionError(NotFound):
    """A charter section no amendment has written."""

    code = "unknown-section"


class UnknownProposalError(NotFound):
    """No proposal with that id in the coop."""

    code = "unknown-proposal"


# -- rows, as the read models hold them ------------------------------------------------


class ProposalRow(msgspec.Struct, frozen=True, kw_only=True):
    """One proposal as the read models hold it: submission, end, execution, vote events."""

    id: str
    leaf: int
    domain: str
    author: str
    title: str
    text: str
    action_kind: str
    opens_at: int | None
    """As submitted (``None``: when accepted); the proposal document gives the effective one."""
    closes_at: int
    appeal: str | None
    submitted_ts: int
    state: str
    """``open`` when no end row exists, else the end's state (the close's outcome)."""
    ended_leaf: int | None = None
    ended_event: str | None = None
    ended_ts: int | None = None
    reason: str | None = None
    counts: Counts | None = None
    """The close's counts (closed proposals only)."""
    eligible: int | None = None
    counted: int | None = None
    ballots_digest: str | None = None
    executed_event: str | None = None
    effects: list[str] = msgspec.field(default_factory=list)
    failed: str | None = None
    casts: int = 0
    commitments: int = 0
    reveals: int = 0


class VoteRow(msgspec.Struct, frozen=True, kw_only=True):
    """One vote event: ``cast``, ``committed`` (no choice) or ``revealed``."""

    leaf: int
    proposal: str
    event_id: str
    voter: str
    kind: str
    choice: str | None
    credits: int | None
    commitment: str | None
    reason: str | None
    ts: int


class DelegationRow(msgspec.Struct, frozen=True, kw_only=True):
    """One ``governance.VoteDelegated`` (``to`` null: a revocation)."""

    leaf: int
    event_id: str
    domain: str
    member: str
    to: str | None
    ts: int


class CharterRow(msgspec.Struct, frozen=True, kw_only=True):
    """One ``governance.CharterAmended``."""

    section: str
    leaf: int
    event_id: str
    proposal: str
    text: str
    rationale: str
    ts: int


class DomainRow(msgspec.Struct, frozen=True, kw_only=True):
    """One ``governance.DomainDefined`` (``kind`` ``defined``) or ``DomainChanged``."""

    domain: str
    leaf: int
    event_id: str
    kind: str
    proposal: str | None
    rules: str
    """The rules as signed, canonical JSON (fields left out take their defaults)."""
    ts: int


class GovernanceReads(Protocol):
    """What the governance documents are made of."""

    def proposals(
        self, coop: str, *, state: str | None, domain: str | None, after: int | None, limit: int
    ) -> list[ProposalRow]:
        """Proposals in log order (submission), from leaf ``after`` (exclusive)."""
        ...

    def proposal(self, coop: str, proposal_id: str) -> ProposalRow | None:
        """One proposal's row."""
        ...

    def votes_of(self, coop: str, voter: str) -> list[VoteRow]:
        """Every vote event of ``voter``, in log order."""
        ...

    def delegations_of(self, coop: str, did: str) -> list[DelegationRow]:
        """Every delegation (and revocation) ``did`` made, in log order."""
        ...

    def delegators(self, coop: str, did: str) -> list[DelegationRow]:
        """The live delegations naming ``did``: each member's latest per domain, in log order."""
        ...

    def charter(self, coop: str) -> list[CharterRow]:
        """Every charter amendment, by section then log order."""
        ...

    def domain_versions(self, coop: str, domain: str | None) -> list[DomainRow]:
        """Every definition and change of one domain (``None``: of every domain), by domain
        then log order."""
        ...

    def ballots(self, coop: str, proposal_id: str, after: str | None, limit: int) -> list[bytes]:
        """Ballot records of one proposal in voter order, from voter ``after`` (exclusive)."""
        ...

    def record(self, coop: str, kind: str, key: str) -> bytes | None:
        """One record of the coop rules' state."""
        ...

    def records(self, coop: str, kind: str, prefix: str) -> list[bytes]:
        """Every record of ``kind`` whose key starts with ``prefix``, in key order."""
        ...


# -- documents ----------------------------------------------------------------------------


class DomainView(msgspec.Struct):
    """A domain and its rules as they stand (``version`` 0: ``root``'s founding defaults)."""

    domain: str
    version: int
    changed_ms: int
    rules: dict[str, Any]


class DomainVersion(msgspec.Struct):
    """One version of a domain's rules: ``founded`` (``root``'s version 0, the defaults no
    event states), ``defined`` or ``changed`` by the event named, for the proposal named."""

    domain: str
    version: int
    kind: str
    rules: dict[str, Any]
    """In full (the signed fields and the defaults of those left out)."""
    proposal: str | None
    event_id: str | None
    leaf: int | None
    ts: int


class DomainHistory(msgspec.Struct):
    """A domain's rules as they stand and every version they had, oldest first."""

    coop: str
    domain: str
    current: DomainView
    versions: list[DomainVersion]


class DomainList(msgspec.Struct):
    """Every governance domain of the coop, by name (``root`` always)."""

    coop: str
    domains: list[DomainView]


class ProposalSummary(msgspec.Struct):
    """A proposal in a list: what, by whom, where it stands, how it ended."""

    id: str
    leaf: int
    domain: str
    title: str
    author: str
    action: str
    """The action's kind."""
    state: str
    opens_at: int | None
    closes_at: int
    submitted_ts: int
    outcome: str | None
    """The close's outcome (``accepted``, ``rejected``, ``no-quorum``); null otherwise."""
    counts: Counts | None
    """The close's counts; null until closed (the tally route has the live count)."""
    eligible: int | None
    counted: int | None
    execution: str | None
    """``executed`` or ``failed`` once the node carried it out; null before."""
    effects: list[str]
    failed: str | None
    votes: dict[str, int]
    """Vote events so far: ``cast``, ``committed``, ``revealed`` (a recast counts again)."""


class ProposalPage(msgspec.Struct):
    """Proposals in submission order; pass ``next`` as ``after`` for the following page."""

    coop: str
    items: list[ProposalSummary]
    next: int | None


class ProposalDetail(ProposalSummary):
    """One proposal in full: its text, action, the rules it is counted by, when it ended."""

    text: str = ""
    action_body: dict[str, Any] = msgspec.field(default_factory=dict)
    rules: dict[str, Any] = msgspec.field(default_factory=dict)
    tally_due: int = 0
    """When it may be closed: ``closes_at``, plus the reveal window if sealed."""
    appeal: str | None = None
    appeals: list[str] = msgspec.field(default_factory=list)
    invocation: str | None = None
    """The contract invocation whose ``propose`` opened it (its author is the coop's DID)."""
    ended_ts: int | None = None
    ended_event: str | None = None
    reason: str | None = None
    ballots_digest: str | None = None
    executed_event: str | None = None


class TallyView(msgspec.Struct):
    """A proposal's tally: the close's once closed, the live count while open.

    ``counts`` and ``projected`` are null while a sealed proposal is open
    (``ballots`` and ``revealed`` say how many were committed and opened).
    """

    coop: str
    proposal: str
    state: str
    method: str
    sealed: bool
    final: bool
    """True once closed: the numbers are the ``governance.ProposalClosed``'s."""
    eligible: int
    counted: int
    """Eligible voters with a ballot of their own or of a delegate."""
    quorum_needed: int
    """Counted voters the quorum needs (``quorum_ppm`` of ``eligible``, rounded up)."""
    quorum_met: bool
    counts: Counts | None
    projected: str | None
    """The outcome if it closed now (null once closed or while sealed)."""
    outcome: str | None
    """The close's outcome (null while open)."""
    closes_at: int
    tally_due: int
    ballots: int | None = None
    """Voters with a ballot of their own, eligible or not (sealed: commitments); null once
    closed (the close states ``counted``)."""
    revealed: int | None = None
    """Of those, ballots with a choice (sealed: revealed; else every one); null once closed."""
    ballots_digest: str | None = None
    """The close's; for an open proposal once voting has ended (what the close will state)."""
    position: int | None = None
    """The coop's log size the live count is at (null once closed)."""


class BallotView(msgspec.Struct):
    """One voter's current ballot (``choice`` null: a sealed commitment not revealed)."""

    voter: str
    vote: str
    choice: str | None
    credits: int | None
    commitment: str | None
    cast_ms: int


class BallotPage(msgspec.Struct):
    """A proposal's ballots in voter order; pass ``next`` as ``after`` for the next page."""

    coop: str
    proposal: str
    sealed: bool
    items: list[BallotView]
    next: str | None


class MemberVotes(msgspec.Struct):
    """A member's vote events, their live delegations, their delegation history, and who
    delegates to them now."""

    coop: str
    did: str
    votes: list[VoteRow]
    delegations: list[DelegationRow]
    """Live: their latest delegation per domain that names someone."""
    history: list[DelegationRow]
    """Every delegation and revocation they made, in log order."""
    delegators: list[DelegationRow]
    """Members whose live delegation names them."""


class CharterVersion(msgspec.Struct):
    """One version of one section."""

    section: str
    version: int
    text: str
    rationale: str
    proposal: str
    event_id: str
    leaf: int
    ts: int


class CharterSection(msgspec.Struct):
    """One section: its current version and every version, oldest first."""

    coop: str
    section: str
    current: CharterVersion
    versions: list[CharterVersion]


class CharterView(msgspec.Struct):
    """The charter: each section's current version, and every version of each."""

    coop: str
    sections: list[CharterVersion]
    history: list[CharterVersion]


# -- checks -------------------------------------------------------------------------------


def state_of(value: str | None) -> str | None:
    """A state as asked for, or ``invalid-state``."""
    if value is not None and value not in STATES:
        raise InvalidStateError(f"{value!r} is not a proposal state (one of {', '.join(STATES)})")
    return value


def limit_of(value: int) -> int:
    """A page size in 1..:data:`MAX_PAGE`."""
    if not 1 <= value <= MAX_PAGE:
        raise InvalidRequest(f"limit must be 1..{MAX_PAGE}")
    return value


def founded(reads: GovernanceReads, coop: str) -> CoopRecord:
    """The coop's record, or not found."""
    raw = reads.record(coop, CoopRecord.kind, "")
    record = decode_record(CoopRecord.kind, raw) if raw is not None else None
    if not isinstance(record, CoopRecord):
        raise NotFound(f"coop {coop} has not been founded on this node")
    return record


def domain_of(reads: GovernanceReads, coop: CoopRecord, value: str | None) -> str | None:
    """A domain as asked for: ``invalid-domain`` when malformed, ``unknown-domain`` when the
    coop has none of that name."""
    if value is None:
        return None
    if not _DOMAIN.match(value):
        raise InvalidDomainError(f"{value!r} is not a domain name")
    if value != ROOT and reads.record(coop.coop, DomainRecord.kind, value) is None:
        raise UnknownDomainError(f"{coop.coop} has no domain {value!r}")
    return value


def proposal_record(reads: GovernanceReads, coop: str, proposal_id: str) -> ProposalRecord:
    """The rules' record of a proposal, or ``unknown-proposal`` (404)."""
    raw = reads.record(coop, ProposalRecord.kind, proposal_id) if _ID.match(proposal_id) else None
    record = decode_record(ProposalRecord.kind, raw) if raw is not None else None
    if not isinstance(record, ProposalRecord):
        raise UnknownProposalError(f"no proposal {proposal_id} in {coop}")
    return record


# -- views --------------------------------------------------------------------------------


def _domain_records(reads: GovernanceReads, coop: CoopRecord) -> dict[str, DomainRecord]:
    found = [
        decode_record(DomainRecord.kind, v) for v in reads.records(coop.coop, DomainRecord.kind, "")
    ]
    named = {d.domain: d for d in found if isinstance(d, DomainRecord)}
    named.setdefault(ROOT, root_domain(coop))
    return named


def _domain_view(d: DomainRecord) -> DomainView:
    return DomainView(d.domain, d.version, d.changed_ms, msgspec.to_builtins(d.rules))


def domains(reads: GovernanceReads, coop: str) -> DomainList:
    """Every domain with its rules as they stand (``root`` with its defaults until changed)."""
    named = _domain_records(reads, founded(reads, coop))
    return DomainList(coop, [_domain_view(d) for _, d in sorted(named.items())])


def _versions(coop: CoopRecord, name: str, rows: list[DomainRow]) -> list[DomainVersion]:
    """A domain's versions numbered as the rules number them: ``root`` from 0 (the founding
    defaults), every other domain from 1 (its definition)."""
    found = []
    if name == ROOT:
        defaults = msgspec.to_builtins(DomainRules())
        found.append(DomainVersion(ROOT, 0, "founded", defaults, None, None, None, coop.founded_ms))
    for n, r in enumerate(rows, start=1):
        rules = msgspec.json.decode(r.rules, type=DomainRules)
        found.append(
            DomainVersion(
                name, n, r.kind, msgspec.to_builtins(rules), r.proposal, r.event_id, r.leaf, r.ts
            )
        )
    return found


def domain_history(reads: GovernanceReads, coop: str, name: str) -> DomainHistory:
    """One domain's rules as they stand and every version of them; ``invalid-domain`` (400)
    for a malformed name, ``unknown-domain`` (404) for one the coop has not defined."""
    record = founded(reads, coop)
    if not _DOMAIN.match(name):
        raise InvalidDomainError(f"{name!r} is not a domain name")
    current = _domain_records(reads, record).get(name)
    if current is None:
        raise NoSuchDomainError(f"{coop} has no domain {name!r}")
    versions = _versions(record, name, reads.domain_versions(coop, name))
    return DomainHistory(coop, name, _domain_view(current), versions)


def domain_histories(reads: GovernanceReads, coop: str) -> list[DomainHistory]:
    """Every domain's history, by name (one query for every row)."""
    record = founded(reads, coop)
    rows: dict[str, list[DomainRow]] = {}
    for r in reads.domain_versions(coop, None):
        rows.setdefault(r.domain, []).append(r)
    return [
        DomainHistory(coop, name, _domain_view(d), _versions(record, name, rows.get(name, [])))
        for name, d in sorted(_domain_records(reads, record).items())
    ]


def _execution(row: ProposalRow) -> str | None:
    if row.executed_event is None:
        return None
    return "failed" if row.failed is not None else "executed"


def _summary(row: ProposalRow) -> ProposalSummary:
    closed = row.state in ProposalState.CLOSED
    return ProposalSummary(
        id=row.id, leaf=row.leaf, domain=row.domain, title=row.title, author=row.author,
        action=row.action_kind, state=row.state, opens_at=row.opens_at, closes_at=row.closes_at,
        submitted_ts=row.submitted_ts, outcome=row.state if closed else None, counts=row.counts,
        eligible=row.eligible, counted=row.counted, execution=_execution(row),
        effects=row.effects, failed=row.failed,
        votes={"cast": row.casts, "committed": row.commitments, "revealed": row.reveals},
    )  # fmt: skip


def proposals(
    reads: GovernanceReads,
    coop: str,
    *,
    state: str | None = None,
    domain: str | None = None,
    after: int | None = None,
    limit: int = 100,
) -> ProposalPage:
    """A page of proposals in submission order, optionally of one state and one domain."""
    record = founded(reads, coop)
    wanted, where = state_of(state), domain_of(reads, record, domain)
    rows = reads.proposals(coop, state=wanted, domain=where, after=after, limit=limit_of(limit) + 1)
    items = [_summary(r) for r in rows[:limit]]
    return ProposalPage(coop, items, items[-1].leaf if len(rows) > limit and items else None)


def proposal(reads: GovernanceReads, coop: str, proposal_id: str) -> ProposalDetail:
    """One proposal in full, or ``unknown-proposal``."""
    founded(reads, coop)
    p = proposal_record(reads, coop, proposal_id)
    row = reads.proposal(coop, p.id)
    if row is None:  # the read models lag the rules' record: not caught up yet
        raise UnknownProposalError(f"no proposal {proposal_id} in {coop}")
    s = _summary(row)
    return ProposalDetail(
        id=s.id, leaf=s.leaf, domain=s.domain, title=s.title, author=s.author, action=s.action,
        state=s.state, opens_at=p.opens_at, closes_at=p.closes_at, submitted_ts=s.submitted_ts,
        outcome=s.outcome, counts=s.counts, eligible=s.eligible, counted=s.counted,
        execution=s.execution, effects=s.effects, failed=s.failed, votes=s.votes,
        text=row.text, action_body=msgspec.to_builtins(p.action),
        rules=msgspec.to_builtins(p.rules),
        tally_due=p.tally_due(), appeal=p.appeal, appeals=list(p.appeals),
        invocation=p.invocation, ended_ts=row.ended_ts,
        ended_event=row.ended_event, reason=row.reason, ballots_digest=row.ballots_digest,
        executed_event=row.executed_event,
    )  # fmt: skip


def quorum_needed(quorum_ppm: int, eligible: int) -> int:
    """The least ``counted`` with ``counted × PPM ≥ quorum_ppm × eligible`` (the close's test)."""
    return -(-quorum_ppm * eligible // PPM)


def ballots(
    reads: GovernanceReads, coop: str, proposal_id: str, *, after: str | None, limit: int
) -> BallotPage:
    """A page of a proposal's current ballots, in voter order (sealed: choices once revealed)."""
    founded(reads, coop)
    p = proposal_record(reads, coop, proposal_id)
    raws = reads.ballots(coop, p.id, after, limit_of(limit) + 1)
    found = [decode_record(BallotRecord.kind, r) for r in raws[:limit]]
    items = [
        BallotView(b.voter, b.vote, b.choice, b.credits, b.commitment, b.cast_ms)
        for b in found
        if isinstance(b, BallotRecord)
    ]
    nxt = items[-1].voter if len(raws) > limit and items else None
    return BallotPage(coop, p.id, p.rules.sealed, items, nxt)


def member_votes(reads: GovernanceReads, coop: str, did: str) -> MemberVotes:
    """Every vote event of ``did``; their delegations now and over time; their delegators."""
    founded(reads, coop)
    rows = reads.delegations_of(coop, did)
    latest = {r.domain: r for r in rows}
    live = sorted((r for r in latest.values() if r.to is not None), key=lambda r: r.leaf)
    return MemberVotes(
        coop, did, reads.votes_of(coop, did), live, rows, reads.delegators(coop, did)
    )


def charter(reads: GovernanceReads, coop: str) -> CharterView:
    """Every section's current version and every version of each, oldest first."""
    founded(reads, coop)
    history: list[CharterVersion] = []
    version: dict[str, int] = {}
    for r in reads.charter(coop):
        version[r.section] = version.get(r.section, 0) + 1
        history.append(
            CharterVersion(
                r.section, version[r.section], r.text, r.rationale, r.proposal, r.event_id,
                r.leaf, r.ts,
            )
        )  # fmt: skip
    current = {v.section: v for v in history}
    return CharterView(coop, [current[s] for s in sorted(current)], history)


def charter_section(reads: GovernanceReads, coop: str, section: str) -> CharterSection:
    """One section's current text and every version of it; ``unknown-section`` (404) when no
    amendment has written it."""
    versions = [v for v in charter(reads, coop).history if v.section == section]
    if not versions:
        raise UnknownSectionError(f"{coop}'s charter has no section {section!r}")
    return CharterSection(coop, section, versions[-1], versions)


class LiveCount(Protocol):
    """What the live count of an open proposal gives (a ``governance_book.LiveTally``)."""

    @property
    def counts(self) -> Counts: ...
    @property
    def eligible(self) -> int: ...
    @property
    def counted(self) -> int: ...
    @property
    def outcome(self) -> str: ...
    @property
    def ballots(self) -> int: ...
    @property
    def revealed(self) -> int: ...
    @property
    def position(self) -> int: ...
    @property
    def ballots_digest(self) -> str | None: ...


def digest_due(p: ProposalRecord, now_ms: int) -> bool:
    """Whether a live tally should carry the ballots digest: voting has ended (no more
    ballots will come) and the choices are not hidden."""
    return p.state == ProposalState.OPEN and now_ms >= p.closes_at and not p.rules.sealed


def tally_view(
    coop: str, p: ProposalRecord, row: ProposalRow | None, live: LiveCount | None
) -> TallyView:
    """The close's tally for a closed proposal (``row`` has it); else the live count, its
    counts and projected outcome hidden while a sealed proposal is open."""
    rules = p.rules
    closed = p.state in ProposalState.CLOSED and row is not None and row.counts is not None
    if closed:
        assert row is not None and row.eligible is not None and row.counted is not None
        eligible, counted = row.eligible, row.counted
    elif live is not None:
        eligible, counted = live.eligible, live.counted
    else:
        eligible = counted = 0
    needed = quorum_needed(rules.quorum_ppm, eligible)
    view = TallyView(
        coop=coop,
        proposal=p.id,
        state=p.state,
        method=rules.method,
        sealed=rules.sealed,
        final=closed,
        eligible=eligible,
        counted=counted,
        quorum_needed=needed,
        quorum_met=counted >= needed and (eligible > 0 or rules.quorum_ppm == 0),
        counts=None,
        projected=None,
        outcome=p.state if p.state in ProposalState.CLOSED else None,
        closes_at=p.closes_at,
        tally_due=p.tally_due(),
    )
    if closed:
        assert row is not None
        view.counts, view.ballots_digest = row.counts, row.ballots_digest
    if live is not None:
        view.ballots, view.revealed = live.ballots, live.revealed
    if closed or live is None:
        return view
    view.position = live.position
    if rules.sealed and p.state == ProposalState.OPEN:
        return view  # choices hidden until the reveals have been counted by the close
    view.counts = live.counts
    view.projected = live.outcome if p.state == ProposalState.OPEN else None
    view.ballots_digest = live.ballots_digest
    return view
