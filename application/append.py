"""The write path: verify every event, decide, append what is accepted.

Every write takes this path (CLI import, HTTP, replication): spec checks
that need no state (decode, id, signature: the expensive part, done before
any lock is taken), then, inside the store's write transaction, the chain
checks and the node's own rules against the state as it is at that moment,
then the rows. Nothing can change between a decision and its write.

On a replicating node, writes that do not come from the stream are also put
in their coop's stream inside that transaction, before the rows are written
(:mod:`icn.application.sequencing`): every node then judges them in the same
order, so conflicting decisions made on two nodes cannot both stand.

Events received that cannot pass yet (parked by :mod:`icn.application.intake`)
are *waiting lines*: every write, received or local, judges them again right
after each event it appends (those whose last judging read something that event
wrote: the same verdicts as judging all of them), in the same transaction, and
appends those that now pass right behind that event. A parked event thus lands
immediately after the first event, in log order, after which it passes: on every
replica the same position, whatever batches the stream came in and whichever node
wrote that event.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Generic, NamedTuple, Protocol, TypeVar

import msgspec

from icn.application.coop_view import RecordSource, StateLayer, StoredState
from icn.application.errors import BatchRefused, StoreBusy
from icn.application.ports import (
    NO_TELEMETRY,
    Accepted,
    ConcurrentAppend,
    Decision,
    EventStore,
    ForkEvidence,
    StoreView,
    Telemetry,
)
from icn.application.sequencing import Sequencer, StreamMoved, StreamUnavailable
from icn.domain.coop.evolve import evolve, likely_reads
from icn.domain.coop.state import Effects
from icn.domain.events.chain import ChainHead, author_flagged, judge
from icn.domain.events.envelope import Event, Inspection, inspect
from icn.domain.events.timing import DEFAULT_MAX_CLOCK_SKEW_S, clock_skew_reason
from icn.domain.events.verdicts import Verdict
from icn.domain.refusals import Refusal, may_clear

MAX_RETRIES = 8
REFUSED = "refused"
MAX_RELEASE_PASSES = 16
"""Passes over the waiting lines after one appended event (each pass may release lines
that wait for a line released in the pass before); what is left waits for the next."""
STREAM_WAIT_S = 10.0
"""How long a sequenced write waits, in all, for this node to apply what other nodes put
in the stream first, before it answers "try again" (:class:`StreamUnavailable`)."""


class CommittedEvent(msgspec.Struct, frozen=True):
    """An event just committed to the log: where it sits and its canonical wire bytes."""

    coop: str
    position: int
    """Its leaf index in the coop's log."""
    event_id: str
    event_type: str
    author: str
    wire: bytes
    trusted_ms: int | None = None
    """The trusted time it was judged at (published with it, see icn.domain.events.timing)."""


CommitListener = Callable[[list[CommittedEvent]], None]
"""Told, in the committing thread, what each transaction added to the log (in order)."""


class Outcome(msgspec.Struct, frozen=True, omit_defaults=True):
    """What happened to one submitted line.

    ``verdict`` is a spec verdict, or ``refused`` when the spec accepts the
    event but a node rule does not (``code`` names the rule).
    """

    verdict: str
    reason: str = ""
    code: str = ""
    id: str | None = None
    position: int | None = None

    @property
    def stored(self) -> bool:
        """True when this line added an event to the log."""
        return self.verdict == Verdict.OK


def parkable(outcome: Outcome) -> bool:
    """True when a later event may make this outcome ``ok``."""
    return outcome.verdict in (Verdict.GAP, REFUSED) and may_clear(outcome.code or outcome.verdict)


class WaitingLine(NamedTuple):
    """A received event that could not pass yet (a parked one), judged again after each
    event appended in front of it, at the trusted time of its own stream position."""

    inspection: Inspection
    trusted_ms: int


class WaitingLines(Protocol):
    """Where a coop's waiting lines are kept (the intake's parking lot)."""

    def waiting(self, coop: str) -> Sequence[WaitingLine]:
        """The coop's waiting lines, oldest first; read inside the write transaction."""
        ...

    def settled(
        self, coop: str, lines: Sequence[WaitingLine], outcomes: Sequence[Outcome | None]
    ) -> None:
        """After a write committed: each line's last outcome in it (None: not judged again)."""
        ...


class StreamAppend(NamedTuple):
    """A received batch appended: each line's final outcome (a line that waited and was
    released later in the batch is ``ok``), and each waiting line's (None: not judged)."""

    outcomes: list[Outcome]
    waited: list[Outcome | None]
    dropped: tuple[str, ...] = ()
    """Ids of lines (waiting ones, or the batch's own) the bound dropped, oldest first."""


ReadKey = tuple[str, ...]
"""What a judgement read or a write changed: ("chain", coop, author) (head and ids),
("did", coop), ("flag", coop, author), ("record", coop, kind, key), ("scan", coop,
kind, prefix), ("event", id), ("size", coop)."""


class _Wait:
    """One waiting line during a write: its last outcome, and what its last judging read."""

    __slots__ = ("dropped", "gen", "index", "line", "outcome", "own", "reads")

    def __init__(
        self, line: WaitingLine, index: int, outcome: Outcome | None = None, own: int = -1
    ) -> None:
        self.line = line
        self.index = index
        self.outcome = outcome
        self.reads: frozenset[ReadKey] = frozenset()
        self.gen = -1
        """Which judging ``reads`` is from (entries of older ones in the index are stale)."""
        self.own = own
        """Its index among the write's own lines (-1: it waited before this write)."""
        self.dropped = False
        """Dropped by the bound on waiting lines: never judged again."""

    @property
    def waiting(self) -> bool:
        """Still waiting (neither settled nor dropped)."""
        return not self.dropped and (self.outcome is None or parkable(self.outcome))


_Snapshot = tuple[list[tuple[Outcome | None, frozenset[ReadKey], int]], set[int], int, int]


class _Release:
    """The waiting lines of one write, and which of them are due to be judged again.

    Judging is a function of what it reads through the overlay and its state
    layer (chain heads, the coop's DID, fork flags, records, scans, events, the
    log's size) and of the line itself (its trusted time is its own stream
    position's). So each judging records the keys it read, each append the keys
    it wrote, and a line is judged again only once one of its keys was written:
    the same verdicts as judging every line after every event (a line not judged
    would have got its last outcome again, and a line that keeps waiting changes
    nothing). A gap reads its author's chain (and maybe the coop's DID), so it is
    judged again only once that chain grew. Lines the write found waiting are due
    after its first event: nothing is known yet of what they read.
    """

    def __init__(
        self, lines: Sequence[WaitingLine], bound: int | None = None, every: bool = False
    ) -> None:
        self.waits = [_Wait(line, i) for i, line in enumerate(lines)]
        self.bound = bound
        """At most this many lines wait: when a line joins beyond it, the oldest waiting
        one is dropped (in stream order, so every node drops the same, whatever its
        batches)."""
        self.every = every
        """Judge every waiting line after every event (tests compare against it)."""
        self.dirty: set[int] = set(range(len(self.waits)))
        """Indices of the lines whose reads were written since they were last judged."""
        self.readers: dict[ReadKey, list[tuple[_Wait, int]]] = {}
        self.scans: dict[tuple[str, str], list[tuple[str, _Wait, int]]] = {}
        self.gens = 0
        self.forks: list[ForkEvidence] = []
        self._pass: list[int] | None = None
        self._cursor = -1

    def wrote(self, key: ReadKey) -> None:
        """An append (or a fork's flag) changed ``key``: its readers are due."""
        for w, gen in self.readers.get(key, ()):
            if w.gen == gen:
                self._due(w.index)
        if key[0] == "record":
            for prefix, w, gen in self.scans.get((key[1], key[2]), ()):
                if w.gen == gen and key[3].startswith(prefix):
                    self._due(w.index)

    def _due(self, index: int) -> None:
        if index in self.dirty:
            return
        self.dirty.add(index)
        if self._pass is not None and index > self._cursor:
            heapq.heappush(self._pass, index)

    def judged(self, w: _Wait, outcome: Outcome, reads: set[ReadKey]) -> None:
        """``w`` was judged (``outcome``) reading ``reads``."""
        w.outcome = outcome
        self.dirty.discard(w.index)
        self.gens += 1
        w.gen = self.gens
        w.reads = frozenset(reads)
        if not parkable(outcome):
            return
        for key in w.reads:
            if key[0] == "scan":
                self.scans.setdefault((key[1], key[2]), []).append((key[3], w, w.gen))
            else:
                self.readers.setdefault(key, []).append((w, w.gen))

    def due(self, w: _Wait, coop: str) -> bool:
        event = w.line.inspection.event
        if event is None or event.coop != coop or w.dropped:
            return False
        if w.outcome is not None and not parkable(w.outcome):
            return False
        return self.every or w.index in self.dirty

    def in_order(self) -> Iterator[_Wait]:
        """One pass: the lines due, oldest first, including those that become due during
        the pass behind the line being judged (as a pass over every line would find them)."""
        if self.every:
            yield from self.waits
            return
        heap = sorted(self.dirty)
        self._pass, self._cursor = heap, -1
        try:
            while heap:
                i = heapq.heappop(heap)
                if i <= self._cursor:
                    continue
                self._cursor = i
                yield self.waits[i]
        finally:
            self._pass = None

    def join(self, line: WaitingLine, outcome: Outcome, own: int, reads: set[ReadKey]) -> None:
        """A line of the write itself that may pass later: it waits from here on."""
        w = _Wait(line, len(self.waits), None, own)
        self.waits.append(w)
        self.judged(w, outcome, reads)
        if self.bound is not None and len(self.waits) > self.bound:
            waiting = [w for w in self.waits if w.waiting]
            for oldest in waiting[: max(0, len(waiting) - self.bound)]:
                oldest.dropped = True

    def snapshot(self) -> _Snapshot:
        return (
            [(w.outcome, w.reads, w.gen) for w in self.waits],
            set(self.dirty),
            len(self.forks),
            len(self.waits),
        )

    def restore(self, snap: _Snapshot) -> None:
        """Undo what a refused request did (nothing of it is stored, nor in the stream)."""
        states, self.dirty, forks, count = snap
        del self.waits[count:]
        del self.forks[forks:]
        for w, (outcome, reads, gen) in zip(self.waits, states, strict=True):
            w.outcome, w.reads, w.gen = outcome, reads, gen


class _Overlay:
    """The store's view plus the events accepted earlier in the same batch.

    Holds both the chain state (heads, ids, the coop's DID) and the coop
    rules' records, so each event is judged on what its predecessors left.
    """

    def __init__(self, base: StoreView | _Overlay) -> None:
        self._base = base
        self._heads: dict[tuple[str, str], ChainHead] = {}
        self._ids: dict[tuple[str, str, int], str] = {}
        self._dids: dict[str, str] = {}
        self._flagged: set[tuple[str, str]] = set()
        source: RecordSource = base.state if isinstance(base, _Overlay) else StoredState(base)
        self.state: StateLayer = StateLayer(source)
        self.reads: set[ReadKey] | None = None
        """While set, every read of this overlay (and its state layer) adds its key here."""
        self.wrote: Callable[[ReadKey], None] | None = None
        """While set, told every key a write to this overlay (or its state layer) changes."""

    def recording(self, reads: set[ReadKey] | None) -> None:
        self.reads = self.state.reads = reads

    def listening(self, wrote: Callable[[ReadKey], None] | None) -> None:
        self.wrote = self.state.wrote = wrote

    def head(self, coop: str, author: str) -> ChainHead | None:
        if self.reads is not None:
            self.reads.add(("chain", coop, author))
        return self._heads.get((coop, author)) or self._base.head(coop, author)

    def id_at(self, coop: str, author: str, seq: int) -> str | None:
        if self.reads is not None:
            self.reads.add(("chain", coop, author))
        return self._ids.get((coop, author, seq)) or self._base.id_at(coop, author, seq)

    def coop_did(self, coop: str) -> str | None:
        if self.reads is not None:
            self.reads.add(("did", coop))
        return self._base.coop_did(coop) or self._dids.get(coop)

    def is_flagged(self, coop: str, author: str) -> bool:
        if self.reads is not None:
            self.reads.add(("flag", coop, author))
        return (coop, author) in self._flagged or self._base.is_flagged(coop, author)

    def flag(self, coop: str, author: str) -> None:
        """A fork earlier in this write flags its author for the rest of it, like a stored fork."""
        self._flagged.add((coop, author))
        if self.wrote is not None:
            self.wrote(("flag", coop, author))

    def absorb(self, child: _Overlay) -> None:
        """Take over what a child overlay (one request of a group) accepted."""
        self._heads.update(child._heads)
        self._ids.update(child._ids)
        for coop, did in child._dids.items():
            self._dids.setdefault(coop, did)
        self._flagged |= child._flagged
        self.state.absorb(child.state)

    def accept(self, event: Event, effects: Effects) -> None:
        self._heads[(event.coop, event.author)] = ChainHead(event.seq, event.id, event.ts)
        self._ids[(event.coop, event.author, event.seq)] = event.id
        if event.type == "coop.Founded":
            self._dids.setdefault(event.coop, event.author)
        if self.wrote is not None:
            self.wrote(("chain", event.coop, event.author))
            if event.type == "coop.Founded":
                self.wrote(("did", event.coop))
        self.state.write(event, effects)


_A = TypeVar("_A")


@dataclass(frozen=True)
class _Judged(Generic[_A]):
    """One judging of a write: what the store commits, the answers for the caller (before
    positions are known), and the last stream position it sequenced per coop."""

    decision: Decision
    answers: _A
    sequenced: dict[str, int]


@dataclass(frozen=True)
class _Written(Generic[_A]):
    """A committed write: its judgement, the leaf positions of its accepted events, and
    the ids an earlier, cut-short attempt had already put in the stream."""

    judged: _Judged[_A]
    positions: list[int]
    got_in_earlier: set[str]


def _placed(outcomes: Sequence[Outcome], positions: Iterator[int]) -> list[Outcome]:
    """``outcomes`` with the next leaf position filled in for each ``ok`` one."""
    return [
        msgspec.structs.replace(o, position=next(positions)) if o.verdict == Verdict.OK else o
        for o in outcomes
    ]


class AppendEvents:
    """Use case: append signed wire events to the node's log."""

    def __init__(
        self,
        store: EventStore,
        clock_ms: Callable[[], int],
        *,
        max_skew_s: int = DEFAULT_MAX_CLOCK_SKEW_S,
        sequencer: Sequencer | None = None,
    ) -> None:
        self._store = store
        self._clock_ms = clock_ms
        """Trusted time for writes that do not come from a stream: the node's clock."""
        self._max_skew_ms = max_skew_s * 1000
        self._listeners: list[CommitListener] = []
        self._sequencer = sequencer
        """Puts every write that does not come from the stream in its coop's stream first
        (None: judge locally only, as a node without replication does)."""
        self.telemetry: Telemetry = NO_TELEMETRY
        """Spans of each write (judge, sequence, commit, project); set by the node."""
        self.lot: WaitingLines | None = None
        """Received events waiting to pass (the intake's parked events, set by the intake):
        a local write releases them right behind the event that lets them pass."""
        self.judge_every_waiting_line = False
        """Judge every waiting line after every event, not only those whose reads an append
        wrote: the same log, slower (tests compare the two)."""

    def add_commit_listener(self, listener: CommitListener) -> None:
        """Have ``listener`` told what every later commit of this writer added.

        A hint for the outbox relay (it then need not read back what it was
        just handed): listeners must not fail, and must not rely on hearing
        of every append, since other processes append to the same store.
        """
        self._listeners.append(listener)

    def remove_commit_listener(self, listener: CommitListener) -> None:
        """Stop telling ``listener`` (no error if it was not listening)."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _committed(self, accepted: Sequence[Accepted], positions: Sequence[int]) -> None:
        if not self._listeners or not accepted:
            return
        with self.telemetry.span("icn.project", {"icn.events": len(accepted)}):
            self._tell(accepted, positions)

    def _tell(self, accepted: Sequence[Accepted], positions: Sequence[int]) -> None:
        events = [
            CommittedEvent(
                a.event.coop, p, a.event.id, a.event.type, a.event.author, a.wire, a.trusted_ms
            )
            for a, p in zip(accepted, positions, strict=True)
        ]
        for listener in self._listeners:
            listener(events)

    def append(self, lines: Sequence[bytes], *, atomic: bool = False) -> list[Outcome]:
        """Judge and append ``lines`` in one transaction.

        With ``atomic`` any line that is neither ``ok`` nor ``duplicate``
        refuses the whole batch (:class:`BatchRefused`, nothing stored);
        otherwise each line gets its own outcome and only ``ok`` lines are
        stored (fork evidence goes to quarantine).
        """
        return self.append_inspected([inspect(line) for line in lines], atomic=atomic)

    def append_inspected(
        self,
        inspections: Sequence[Inspection],
        *,
        atomic: bool = False,
        from_stream: bool = False,
        trusted_ms: Sequence[int] | None = None,
    ) -> list[Outcome]:
        """:meth:`append` for lines whose stateless checks already ran (e.g. in workers).

        ``from_stream``: the lines come from the coop's stream (intake), so they
        are judged in stream order as they are and never published again.
        ``trusted_ms``: each line's trusted time, as its stream position carries
        it; without it, every line is judged at the node's clock when the
        transaction runs. A local write releases the waiting lines of
        :attr:`lot` right behind the events it appends.
        """
        if from_stream:
            return self._append_lines(inspections, atomic, True, trusted_ms, None).outcomes
        return self._append_lines(inspections, atomic, False, trusted_ms, self.lot).outcomes

    def append_stream(
        self,
        inspections: Sequence[Inspection],
        trusted_ms: Sequence[int],
        waiting: Sequence[WaitingLine],
        bound: int | None = None,
    ) -> StreamAppend:
        """A received batch, in stream order, with its coop's ``waiting`` lines.

        After each line appended, the waiting lines are judged again (oldest
        first, in passes) and those that pass are appended right behind it. A
        line of the batch that may pass later (:func:`parkable`) joins the
        waiting lines at once, so it too lands right behind the event that
        lets it pass, whichever batch that event comes in. ``bound``: at most this
        many lines wait; beyond it the oldest waiting one is dropped as a line joins.
        """
        return self._append_lines(inspections, False, True, trusted_ms, list(waiting), bound)

    def _append_lines(
        self,
        inspections: Sequence[Inspection],
        atomic: bool,
        from_stream: bool,
        trusted_ms: Sequence[int] | None,
        waiting: WaitingLines | list[WaitingLine] | None,
        bound: int | None = None,
    ) -> StreamAppend:
        if trusted_ms is not None and len(trusted_ms) != len(inspections):
            raise ValueError("one trusted time per line")
        chains = {(i.event.coop, i.event.author) for i in inspections if i.event is not None}
        hints = _read_hints(inspections)
        coops = sorted({coop for coop, _ in chains})
        released: list[_Release] = []

        def judge_lines(view: StoreView) -> _Judged[list[Outcome]]:
            overlay = _Overlay(view)
            overlay.state.prefetch(hints)
            now = self._clock_ms()
            times = trusted_ms if trusted_ms is not None else [now] * len(inspections)
            lines = _lines_of(waiting, coops)
            if lines:  # each is judged once at least: their records in one read too
                overlay.state.prefetch(_read_hints([line.inspection for line in lines]))
            released.clear()
            if not lines:  # the common case: all lines at once
                outcomes, accepted, forks = self._judge(inspections, overlay, times)
                local = accepted
            joins = isinstance(waiting, list)  # a received batch (append_stream)
            if lines or (joins and _waits_for_a_later_one(outcomes)):
                # Line by line, releasing the waiting ones right behind each one appended.
                release = _Release(lines, bound, self.judge_every_waiting_line)
                if not lines:  # judged once already: start again from the stored state
                    overlay = _Overlay(view)
                    overlay.state.prefetch(hints)
                outcomes, accepted, local, forks = self._judge_releasing(
                    inspections, overlay, times, release, joins
                )
                released.append(release)
            if atomic:
                refusal = _first_refusal(outcomes)
                if refusal is not None:
                    raise refusal
                forks = []
            sequenced = {} if from_stream else self._sequence(local)
            decision = Decision(accepted, forks, now, overlay.state.rows())
            return _Judged(decision, outcomes, sequenced)

        written = self._write(chains, judge_lines, sequences=not from_stream)
        self._committed(written.judged.decision.accepted, written.positions)
        if not released:
            return StreamAppend(_placed(written.judged.answers, iter(written.positions)), [])
        where = _positions(written.judged.decision.accepted, written.positions)
        release = released[0]
        if waiting is not None and not isinstance(waiting, list):
            self._settle(waiting, release, coops, where)
        waited = [_place(w.outcome, where) for w in release.waits if w.own < 0]
        dropped = [e.id for w in release.waits if w.dropped and (e := w.line.inspection.event)]
        return StreamAppend(_placed_at(written.judged.answers, where), waited, tuple(dropped))

    def append_requests(
        self, requests: Sequence[Sequence[Inspection]]
    ) -> list[list[Outcome] | BatchRefused]:
        """Several all-or-nothing requests in one transaction (one commit for all of them).

        Each request is judged on top of the ones before it in the group; a
        refused request is left out (its answer is the refusal) and does not
        affect the others. A replayed event refuses its request (``duplicate``):
        a client that resends a payment is told it is already recorded. The
        waiting lines of :attr:`lot` that an event lets pass are appended right
        behind it, before the next event is judged.
        """
        chains = {
            (i.event.coop, i.event.author) for r in requests for i in r if i.event is not None
        }
        hints = _read_hints([i for r in requests for i in r])
        coops = sorted({coop for coop, _ in chains})
        released: list[_Release] = []

        def judge_group(view: StoreView) -> _Judged[list[list[Outcome] | BatchRefused]]:
            group = _Overlay(view)
            group.state.prefetch(hints)
            now = self._clock_ms()
            accepted: list[Accepted] = []
            local: list[Accepted] = []
            answers: list[list[Outcome] | BatchRefused] = []
            lines = _lines_of(self.lot, coops)
            if lines:
                group.state.prefetch(_read_hints([line.inspection for line in lines]))
            release = _Release(lines, every=self.judge_every_waiting_line) if lines else None
            released[:] = [release] if release is not None else []
            for inspections in requests:
                request_view = _Overlay(group)
                times = [now] * len(inspections)
                if release is None:
                    outcomes, mine, _ = self._judge(inspections, request_view, times)
                    ours = mine
                else:
                    before = release.snapshot()
                    outcomes, mine, ours, _ = self._judge_releasing(
                        inspections, request_view, times, release, False
                    )
                refusal = _first_refusal(outcomes, duplicates_ok=False)
                if refusal is not None:
                    if release is not None:
                        release.restore(before)
                    answers.append(refusal)
                    continue
                group.absorb(request_view)
                accepted += mine
                local += ours
                answers.append(outcomes)
            # Requests of one event each may go in as a chain of plain publishes (~10x
            # quicker than an atomic batch): a cut can only fall between requests.
            sequenced = self._sequence(local, atomic=any(len(r) > 1 for r in requests))
            forks = release.forks if release is not None else []
            return _Judged(Decision(accepted, forks, now, group.state.rows()), answers, sequenced)

        written = self._write(chains, judge_group)
        self._committed(written.judged.decision.accepted, written.positions)
        if released and self.lot is not None:
            where = _positions(written.judged.decision.accepted, written.positions)
            self._settle(self.lot, released[0], coops, where)

            def place(answer: list[Outcome]) -> list[Outcome]:
                return _placed_at(answer, where)
        else:
            positions = iter(written.positions)

            def place(answer: list[Outcome]) -> list[Outcome]:
                return _placed(answer, positions)

        return [
            self._got_in_earlier(request, answer, written.got_in_earlier)
            if isinstance(answer, BatchRefused)
            else place(answer)
            for request, answer in zip(requests, written.judged.answers, strict=True)
        ]

    def _settle(
        self, lot: WaitingLines, release: _Release, coops: Sequence[str], where: dict[str, int]
    ) -> None:
        """Tell the lot what became of its lines in a committed write."""
        for coop in coops:
            mine = [w for w in release.waits if w.own < 0 and _coop_of(w.line) == coop]
            if mine:
                lot.settled(coop, [w.line for w in mine], [_place(w.outcome, where) for w in mine])

    def _judge_releasing(
        self,
        inspections: Sequence[Inspection],
        view: _Overlay,
        times: Sequence[int],
        release: _Release,
        joins: bool,
    ) -> tuple[list[Outcome], list[Accepted], list[Accepted], list[ForkEvidence]]:
        """:meth:`_judge`, releasing waiting lines right behind each event appended.

        Returns the lines' outcomes, everything accepted in log order, the lines'
        own accepted events (what a local write puts in the stream) and forks.
        With ``joins`` (a received batch), a line that may pass later joins the
        waiting lines.
        """
        outcomes: list[Outcome] = []
        accepted: list[Accepted] = []
        own: list[Accepted] = []
        forks: list[ForkEvidence] = []
        view.listening(release.wrote)
        try:
            for i, (ins, now) in enumerate(zip(inspections, times, strict=True)):
                reads: set[ReadKey] = set()
                view.recording(reads)
                try:
                    [outcome], mine, found = self._judge([ins], view, [now])
                finally:
                    view.recording(None)
                forks += found
                outcomes.append(outcome)
                if mine:
                    accepted += mine
                    own += mine
                    self._release(release, view, mine[0].event.coop, accepted)
                elif joins and ins.event is not None and parkable(outcome):
                    release.join(WaitingLine(ins, now), outcome, i, reads)
        finally:
            view.listening(None)
        for w in release.waits:
            if 0 <= w.own < len(outcomes) and w.outcome is not None and joins:
                outcomes[w.own] = w.outcome
        return outcomes, accepted, own, forks + release.forks

    def _release(
        self, release: _Release, view: _Overlay, coop: str, accepted: list[Accepted]
    ) -> None:
        """Judge ``coop``'s waiting lines again, oldest first, in passes until one appends
        nothing; append those that pass (to ``accepted``, in that order)."""
        for _ in range(MAX_RELEASE_PASSES):
            passed = False
            for w in release.in_order():
                if not release.due(w, coop):
                    continue
                line = w.line
                reads: set[ReadKey] = set()
                view.recording(reads)
                try:
                    [outcome], mine, found = self._judge([line.inspection], view, [line.trusted_ms])
                finally:
                    view.recording(None)
                release.forks += found
                release.judged(w, outcome, reads)
                if mine:
                    accepted += mine
                    passed = True
            if not passed:
                return

    def _write(
        self,
        chains: set[tuple[str, str]],
        judge_write: Callable[[StoreView], _Judged[_A]],
        *,
        sequences: bool = True,
    ) -> _Written[_A]:
        """Judge and store in one transaction, again if the judgement lost a race.

        Two races: another writer of the store committed first (judge again at
        once), or another node's events reached the coop's stream first (wait
        until this node applied them, then judge again). Each attempt judges
        afresh; what is returned is the judgement that was committed.
        """
        attempts = 0
        deadline = time.monotonic() + STREAM_WAIT_S
        got_in_earlier: set[str] = set()
        if self._sequencer is not None and sequences:
            self._sequencer.prepare(sorted({coop for coop, _ in chains}))
        # The store's port answers positions only; the judgement it committed is the last
        # one made.
        made: list[_Judged[_A]] = []

        def decide(view: StoreView) -> Decision:
            with self.telemetry.span("icn.judge"):
                made.append(judge_write(view))
            return made[-1].decision

        while attempts < MAX_RETRIES:
            try:
                with self.telemetry.span("icn.commit", {"icn.attempt": attempts}):
                    positions = self._store.append_decided(chains, decide)
            except ConcurrentAppend:
                attempts += 1
                continue
            except StreamMoved as moved:
                got_in_earlier.update(moved.stored)
                self._await_stream(moved, deadline)
                continue
            judged = made[-1]
            if self._sequencer is not None:
                for coop, last in judged.sequenced.items():
                    self._sequencer.positions.advance(coop, last)
            return _Written(judged, positions, got_in_earlier)
        raise StoreBusy("the log kept changing under this batch; try again")

    def _got_in_earlier(
        self, request: Sequence[Inspection], refusal: BatchRefused, earlier: set[str]
    ) -> list[Outcome] | BatchRefused:
        """A request refused as ``duplicate`` because an earlier attempt of this very write
        put it in the stream (then lost the race for the rest): it was accepted."""
        if refusal.verdict != Verdict.DUPLICATE or not earlier:
            return refusal
        ids = [i.event.id for i in request if i.event is not None]
        if len(ids) != len(request) or not set(ids) <= earlier:
            return refusal
        found = [self._store.find(event_id) for event_id in ids]
        if any(entry is None for entry in found):
            return refusal
        return [
            Outcome(Verdict.OK, id=event_id, position=entry.leaf_index)
            for event_id, entry in zip(ids, found, strict=True)
            if entry is not None
        ]

    def _sequence(self, accepted: Sequence[Accepted], *, atomic: bool = True) -> dict[str, int]:
        """Inside the write transaction: put ``accepted`` in their coops' streams, each
        right after the stream position this node's state reflects; the last position
        each coop's stream now holds of them."""
        sequencer = self._sequencer
        if sequencer is None or not accepted:
            return {}
        by_coop: dict[str, list[Accepted]] = {}
        for a in accepted:
            by_coop.setdefault(a.event.coop, []).append(a)
        with self.telemetry.span("icn.sequence", {"icn.events": len(accepted)}):
            return {
                coop: sequencer.sequence(coop, sequencer.positions.at(coop), events, atomic=atomic)
                for coop, events in by_coop.items()
            }

    def _await_stream(self, moved: StreamMoved, deadline: float) -> None:
        """Wait until this node applied ``moved.coop``'s stream up to ``moved.last``."""
        assert self._sequencer is not None
        left = deadline - time.monotonic()
        if left <= 0 or not self._sequencer.positions.wait_for(moved.coop, moved.last, left):
            raise StreamUnavailable(
                f"this node is still applying {moved.coop}'s stream (up to {moved.last});"
                " try again shortly"
            )

    def _judge(
        self, inspections: Sequence[Inspection], view: _Overlay, times: Sequence[int]
    ) -> tuple[list[Outcome], list[Accepted], list[ForkEvidence]]:
        """Each line at its trusted time: spec verdicts, then the clock, then the coop rules."""
        outcomes: list[Outcome] = []
        accepted: list[Accepted] = []
        forks: list[ForkEvidence] = []
        for ins, now in zip(inspections, times, strict=True):
            j = judge(ins, view)
            event = ins.event
            event_id = event.id if event is not None else None
            if j.verdict is Verdict.OK and event is not None:
                skew = clock_skew_reason(event.ts, now, self._max_skew_ms)
                if skew is not None:
                    outcomes.append(Outcome(REFUSED, skew, code="clock-skew", id=event_id))
                    continue
                result = author_flagged(event, view) or evolve(event, view.state, now, ins.body)
                if isinstance(result, Refusal):
                    outcomes.append(Outcome(REFUSED, result.reason, code=result.code, id=event_id))
                    continue
                view.accept(event, result)
                accepted.append(Accepted(event, ins.wire, now))
                outcomes.append(Outcome(Verdict.OK, id=event_id))
                continue
            if j.verdict is Verdict.FORK and event is not None:
                first = view.id_at(event.coop, event.author, event.seq)
                if first is not None:
                    forks.append(ForkEvidence(event, ins.wire, first))
                    view.flag(event.coop, event.author)
            outcomes.append(
                Outcome(j.verdict, j.reason, code=j.code or j.verdict.value, id=event_id)
            )
        return outcomes, accepted, forks


def _read_hints(inspections: Sequence[Inspection]) -> list[tuple[str, str, str]]:
    """The coop records the rules will likely read for these events (one read for all)."""
    return [
        (i.event.coop, kind, key)
        for i in inspections
        if i.event is not None and i.verdict is None
        for kind, key in likely_reads(i.event)
    ]


def _first_refusal(
    outcomes: Sequence[Outcome], *, duplicates_ok: bool = True
) -> BatchRefused | None:
    """For an all-or-nothing request: the first line that is not ``ok`` (nor an allowed replay)."""
    allowed = (Verdict.OK, Verdict.DUPLICATE) if duplicates_ok else (Verdict.OK,)
    for i, o in enumerate(outcomes):
        if o.verdict not in allowed:
            return BatchRefused(i + 1, o.verdict, o.reason, o.code)
    return None


def _lines_of(
    waiting: WaitingLines | list[WaitingLine] | None, coops: Sequence[str]
) -> list[WaitingLine]:
    """The waiting lines a write must release: given, or the lot's for its coops."""
    if waiting is None:
        return []
    if isinstance(waiting, list):
        return waiting
    return [line for coop in coops for line in waiting.waiting(coop)]


def _coop_of(line: WaitingLine) -> str:
    event = line.inspection.event
    return event.coop if event is not None else ""


def _waits_for_a_later_one(outcomes: Sequence[Outcome]) -> bool:
    """True when a line that may pass later comes before a line appended: judged line by
    line, it might pass right behind that one."""
    waits = False
    for o in outcomes:
        if o.verdict == Verdict.OK:
            if waits:
                return True
        elif not waits and parkable(o):
            waits = True
    return False


def _positions(accepted: Sequence[Accepted], positions: Sequence[int]) -> dict[str, int]:
    return {a.event.id: p for a, p in zip(accepted, positions, strict=True)}


def _place(outcome: Outcome | None, where: dict[str, int]) -> Outcome | None:
    if outcome is None or outcome.verdict != Verdict.OK or outcome.id is None:
        return outcome
    return msgspec.structs.replace(outcome, position=where[outcome.id])


def _placed_at(outcomes: Sequence[Outcome], where: dict[str, int]) -> list[Outcome]:
    """``outcomes`` with each ``ok`` one's leaf position, found by its id."""
    return [
        msgspec.structs.replace(o, position=where[o.id])
        if o.verdict == Verdict.OK and o.id is not None
        else o
        for o in outcomes
    ]
