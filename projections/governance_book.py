"""Live tallies from memory: each open proposal's count, kept up to date vote by vote.

A proposal's tally is what :func:`icn.domain.governance.closing.recount`
computes at its close: the eligible voters, their own ballots, the domain's
delegations, :func:`~icn.domain.governance.tally.effective_ballots` and
:func:`~icn.domain.governance.tally.weight_for`. Recounting 10,000 ballots for
every read would cost tens of milliseconds, so the first read of a proposal
loads those inputs from the rules' records once and counts them with the same
functions; after that each vote this node commits (the write path's commit
listener: HTTP posts, replicated events, the node's own duties) changes only
the voter's effective ballot and those of the members whose delegation leads
to them without a ballot of their own, each recomputed by
``effective_ballots`` for that one voter, and the counts per choice move by
the difference. A read is then a few dictionary lookups and
:func:`~icn.domain.governance.tally.outcome`.

Anything else that can change who counts or how much (a membership or policy
event, a standing epoch, a delegation) makes the coop's counts stale: the next
read loads them again. The counts know the log position they reflect; when
the log has grown past it for longer than :data:`BEHIND_S` without this
node's listener hearing why (another process appended, ``icn log import``),
they are loaded again too. The ballots digest (a BLAKE3 over every counted
ballot) is computed only when asked, once per change of the ballots.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import NamedTuple

import msgspec

from icn.application.append import CommittedEvent
from icn.domain.coop.state import CoopView
from icn.domain.governance import bodies as b
from icn.domain.governance import state
from icn.domain.governance.bodies import Counts
from icn.domain.governance.eligibility import eligible_voters
from icn.domain.governance.records import ProposalRecord, ProposalState
from icn.domain.governance.tally import (
    Ballot,
    Counted,
    ballots_digest,
    effective_ballots,
    outcome,
    weight_for,
)
from icn.domain.trust import bodies as tb
from icn.projections.governance_views import digest_due

BEHIND_S = 1.0
"""How long the log may be ahead of what the listener told before the counts are reloaded."""
CHECK_S = 0.5
"""How long :meth:`GovernanceBook.cached` answers without asking the store (log size and the
proposal's record) again: the bound, beyond ``BEHIND_S``, on seeing another process's write."""
MAX_KEPT = 32
"""Proposals whose counts are kept (a few MB each at 10,000 voters); the least recently
read go first."""
CHOICES = ("yes", "no", "abstain", "block")
VOTES = (b.VOTE_CAST, b.VOTE_COMMITTED, b.VOTE_REVEALED)
HARMLESS_PREFIXES = ("ledger.", "log.")
"""Event types that never change who may vote or with what weight."""
HARMLESS_TYPES = frozenset(
    {
        tb.ATTESTATION_RECORDED,
        tb.ATTESTATION_REVOKED,
        b.DOMAIN_DEFINED,
        b.DOMAIN_CHANGED,
        b.PROPOSAL_SUBMITTED,
        b.PROPOSAL_WITHDRAWN,
        b.PROPOSAL_VETOED,
        b.PROPOSAL_CLOSED,
        b.PROPOSAL_EXECUTED,
        b.APPEAL_FILED,
        b.CHARTER_AMENDED,
    }
)
"""A proposal keeps its rules when its domain changes; its end is read from the ends table."""
RECORD_EVENTS = frozenset(
    {b.PROPOSAL_CLOSED, b.PROPOSAL_WITHDRAWN, b.PROPOSAL_VETOED, b.PROPOSAL_EXECUTED,
     b.APPEAL_FILED}
)  # fmt: skip
"""Events that change a proposal's record (its state): the kept record is read again."""


class _VoteBody(msgspec.Struct):
    proposal: str
    choice: str | None = None
    credits: int | None = None


class _Vote(msgspec.Struct):
    body: _VoteBody


_decode_vote = msgspec.json.Decoder(_Vote).decode


class LiveTally(NamedTuple):
    """An open proposal's count as the log stands at ``position``."""

    counts: Counts
    eligible: int
    counted: int
    outcome: str
    """What the close would state now."""
    ballots: int
    """Ballots of any voter (committed or cast), eligible or not."""
    revealed: int
    """Of those, with a choice (every cast one; sealed: revealed)."""
    position: int
    ballots_digest: str | None


class _Count:
    """One proposal's tally inputs and running counts."""

    def __init__(self, view: CoopView, coop: str, p: ProposalRecord, position: int) -> None:
        record = view.coop(coop)
        assert record is not None
        self.proposal = p
        self.position = position
        self.stale = False
        self.record_position = -1
        """The log size read before :attr:`proposal` was (-1: not read for :meth:`cached`)."""
        self.last_record_event = -1
        """The position of the last event heard that changes a proposal record of the coop."""
        self.checked_at = 0.0
        self.behind_since: float | None = None
        self.changes = 0
        """Votes applied since the load: the digest is computed again only when it moved."""
        self.digest: tuple[int, str] | None = None
        self.eligible = eligible_voters(view, record, p.rules)
        found = state.ballots(view, coop, p.id)
        self.choices = {x.voter: x.choice is not None for x in found}
        self.direct = {
            x.voter: Ballot(x.vote, x.choice or "abstain", x.credits)
            for x in found
            if x.voter in self.eligible
        }
        self.delegations = state.delegations(view, coop, p.domain)
        self.reverse: dict[str, list[str]] = {}
        for member, to in self.delegations.items():
            self.reverse.setdefault(to, []).append(member)
        self.heads = dict.fromkeys(CHOICES, 0)
        self.weights = dict.fromkeys(CHOICES, 0)
        counted = effective_ballots(sorted(self.eligible), self.direct, self.delegations, self._w)
        self.effective: dict[str, Counted] = {}
        for c in counted:
            self._add(c)

    def _w(self, voter: str, ballot: Ballot) -> int:
        return weight_for(self.proposal.rules, self.eligible[voter], ballot)

    def _add(self, c: Counted) -> None:
        self.effective[c.voter] = c
        self.heads[c.choice] += 1
        self.weights[c.choice] += c.weight

    def _remove(self, voter: str) -> None:
        c = self.effective.pop(voter, None)
        if c is not None:
            self.heads[c.choice] -= 1
            self.weights[c.choice] -= c.weight

    def vote(self, voter: str, ballot: Ballot, has_choice: bool) -> None:
        """``voter``'s ballot is now ``ballot``: recount them and whoever follows them."""
        self.choices[voter] = has_choice
        self.changes += 1
        if voter not in self.eligible:
            return  # the recount ignores it, and delegates through them find no ballot
        self.direct[voter] = ballot
        affected, queue = [voter], [voter]
        seen = {voter}
        while queue:
            for d in self.reverse.get(queue.pop(), ()):
                if d not in seen and d not in self.direct:
                    seen.add(d)
                    affected.append(d)
                    queue.append(d)
        for a in affected:
            self._remove(a)
            if a in self.eligible:
                for c in effective_ballots([a], self.direct, self.delegations, self._w):
                    self._add(c)

    def tally(self, with_digest: bool) -> LiveTally:
        h, w = self.heads, self.weights
        counts = Counts(
            yes=h["yes"], no=h["no"], abstain=h["abstain"], block=h["block"],
            yes_weight=w["yes"], no_weight=w["no"], abstain_weight=w["abstain"],
            block_weight=w["block"],
        )  # fmt: skip
        eligible, counted = len(self.eligible), len(self.effective)
        digest = None
        if with_digest:
            if self.digest is None or self.digest[0] != self.changes:
                self.digest = (self.changes, ballots_digest(list(self.effective.values())))
            digest = self.digest[1]
        return LiveTally(
            counts,
            eligible,
            counted,
            outcome(self.proposal.rules, counts, eligible, counted),
            len(self.choices),
            sum(self.choices.values()),
            self.position,
            digest,
        )


class GovernanceBook:
    """Live tallies of open proposals, loaded once each and moved by every vote committed."""

    def __init__(
        self,
        view: CoopView,
        log_size: Callable[[str], int],
        *,
        clock: Callable[[], float] = time.monotonic,
        max_kept: int = MAX_KEPT,
    ) -> None:
        self._view = view
        self._size = log_size
        self._clock = clock
        self._max_kept = max_kept
        self._counts: dict[tuple[str, str], _Count] = {}
        self._lock = threading.Lock()
        self._loading: dict[str, int] = {}
        self._heard_meanwhile: dict[str, list[CommittedEvent]] = {}
        self.loads = 0
        """How many times counts were loaded from the records (for tests and benchmarks)."""

    def read(
        self, coop: str, proposal_id: str, now_ms: int
    ) -> tuple[ProposalRecord, LiveTally | None] | None:
        """The proposal's record (``None``: no such proposal) and its live count, asked of the
        store (the log size, then the record); the digest once voting has ended. A proposal
        closed by a tally has no live count (its close states the numbers)."""
        size = self._size(coop)
        p = state.proposal(self._view, coop, proposal_id)
        if p is None:
            return None
        if p.state in ProposalState.CLOSED:
            return p, None
        return p, self.tally(coop, p, with_digest=digest_due(p, now_ms), record_position=size)

    def cached(
        self, coop: str, proposal_id: str, now_ms: int
    ) -> tuple[ProposalRecord, LiveTally] | None:
        """What :meth:`read` last gave for an open proposal, moved by every vote heard since,
        from memory alone (no I/O: fit for the event loop); ``None`` when the store must be
        asked: never read, stale, its record changed since, or read over ``CHECK_S`` ago."""
        now = self._clock()
        with self._lock:
            found = self._counts.get((coop, proposal_id))
            if (
                found is None
                or found.stale
                or found.last_record_event >= found.record_position
                or now - found.checked_at >= CHECK_S
                or found.proposal.state != ProposalState.OPEN
            ):
                return None
            p = found.proposal
            return p, found.tally(digest_due(p, now_ms))

    def tally(
        self,
        coop: str,
        p: ProposalRecord,
        *,
        with_digest: bool = False,
        record_position: int | None = None,
    ) -> LiveTally:
        """The live count of ``p`` (the same numbers ``recount`` gives at this position);
        ``record_position``: the log size read before ``p`` was (kept for :meth:`cached`)."""
        size = self._size(coop)
        now = self._clock()
        key = (coop, p.id)
        with self._lock:
            found = self._counts.pop(key, None)
            if found is not None and not found.stale and found.position < size:
                if found.behind_since is None:
                    found.behind_since = now
                if now - found.behind_since > BEHIND_S:
                    found.stale = True
            if found is not None and not found.stale:
                self._counts[key] = found  # most recently read last
                self._keep(found, p, record_position, now)
                return found.tally(with_digest)
            self._loading[coop] = self._loading.get(coop, 0) + 1
            self._heard_meanwhile.setdefault(coop, [])
        try:
            # Heard from here on is kept, so commits during the load are not lost.
            loaded = _Count(self._view, coop, p, self._size(coop))
        finally:
            with self._lock:
                meanwhile = self._heard_meanwhile[coop]
                self._loading[coop] -= 1
                if not self._loading[coop]:
                    del self._loading[coop], self._heard_meanwhile[coop]
        with self._lock:
            for e in meanwhile:
                if not loaded.stale:
                    self._hear(loaded, p.id, e)
            self.loads += 1
            self._counts[key] = loaded
            self._keep(loaded, p, record_position, now)
            while len(self._counts) > self._max_kept:
                del self._counts[next(iter(self._counts))]
            return loaded.tally(with_digest)

    @staticmethod
    def _keep(count: _Count, p: ProposalRecord, record_position: int | None, now: float) -> None:
        if record_position is not None:
            count.proposal, count.record_position, count.checked_at = p, record_position, now

    def heard(self, events: Sequence[CommittedEvent]) -> None:
        """The commit listener: move the counts by each vote, in log order; anything that may
        change eligibility, weights or delegations makes the coop's counts stale."""
        with self._lock:
            for e in events:
                kept = self._heard_meanwhile.get(e.coop)
                if kept is not None:
                    kept.append(e)
                for (coop, pid), count in self._counts.items():
                    if coop == e.coop and not count.stale:
                        self._hear(count, pid, e)

    def _hear(self, count: _Count, pid: str, e: CommittedEvent) -> None:
        if e.event_type in RECORD_EVENTS:
            count.last_record_event = max(count.last_record_event, e.position)
        if e.position < count.position:
            return  # already in what was loaded
        if e.position > count.position:
            count.stale = True  # a commit this listener did not hear
            return
        count.position = e.position + 1
        count.behind_since = None
        if e.event_type in VOTES:
            try:
                body = _decode_vote(e.wire).body
            except (msgspec.DecodeError, msgspec.ValidationError):
                count.stale = True
                return
            if body.proposal == pid:
                choice = body.choice if e.event_type != b.VOTE_COMMITTED else None
                ballot = Ballot(e.event_id, choice or "abstain", body.credits)
                count.vote(e.author, ballot, choice is not None)
        elif not (e.event_type.startswith(HARMLESS_PREFIXES) or e.event_type in HARMLESS_TYPES):
            count.stale = True
