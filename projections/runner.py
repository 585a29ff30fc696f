"""Bringing the read models up to the log: ``catch_up``.

Reads the entries no projection has applied yet, in log order, in batches;
each batch's changes (summed per key) and every projection's new position go
to the store in one transaction that only commits if no position moved
meanwhile. So an entry's effect appears exactly once, even when a process
dies mid-batch (nothing of the batch stays) or two runners race (the loser
re-reads the positions and goes on from there). When nothing is new it costs
two point reads per coop: the log's size and the positions.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence

import msgspec

from icn.domain.events.envelope import Event, decode_stored
from icn.projections.ledger import LEDGER_PROJECTIONS
from icn.projections.ports import (
    AcceptedEvent,
    Changes,
    Fact,
    LogSource,
    Move,
    Projection,
    ReadModelStore,
)

BATCH = 5000
"""Events per transaction. Each member's history rows are clustered together, so a
batch writes a page or more per member it touches; bigger batches share those pages
(measured with 2,000 members: 2,000 → ~4,500 events/s, 5,000 → ~7,000, 10,000 →
~8,500), but on SQLite a batch holds the write lock while it commits (appends wait),
about 0.5 s at 5,000 events after a bulk import. Small catch-ups are unaffected."""

MAX_CONFLICTS = 100
"""A runner that keeps losing races gives up (another runner is doing the work)."""

_decoder = msgspec.json.Decoder(AcceptedEvent)

Positioned = tuple[int, Fact]
"""An accepted event and its leaf index."""


class CatchUp(msgspec.Struct):
    """What one ``catch_up`` did."""

    events: int = 0
    """Log entries read and applied (by at least one projection)."""
    batches: int = 0
    conflicts: int = 0
    """Batches another runner committed first (nothing applied twice; re-read and went on)."""
    seconds: float = 0.0

    @property
    def events_per_s(self) -> float:
        """Throughput of this run."""
        return self.events / self.seconds if self.seconds > 0 else 0.0


def decode(wire: bytes) -> AcceptedEvent:
    """An accepted event's canonical wire bytes, decoded for projections."""
    return _decoder.decode(wire)


def plan_batch(
    coop: str,
    events: Sequence[Positioned],
    projections: Sequence[Projection],
    positions: Mapping[str, int],
    targets: Mapping[str, int],
) -> tuple[list[Move], Changes]:
    """The changes and moves of one batch: each projection applies the events past its
    position up to its target, once."""
    changes = Changes()
    moves: list[Move] = []
    if not events:
        return moves, changes
    last_leaf = events[-1][0]
    for p in projections:
        before = positions.get(p.name, -1)
        last = min(last_leaf, targets.get(p.name, last_leaf))
        if last <= before:
            continue
        for leaf, event in events:
            if before < leaf <= last:
                p.apply(leaf, event, changes)
        moves.append(Move(p.name, coop, before, last))
    return moves, changes


class Runner:
    """Runs projections over the log into a read-model store.

    One runner per process is enough; its lock makes concurrent callers (HTTP
    worker threads) wait for the one catching up instead of racing it. Other
    processes are kept out by the store's conditional position update.
    """

    def __init__(
        self,
        log: LogSource,
        models: ReadModelStore,
        projections: Sequence[Projection] = LEDGER_PROJECTIONS,
        *,
        batch: int = BATCH,
    ) -> None:
        self.log = log
        self.models = models
        self.projections = tuple(projections)
        self.batch = batch
        self._lock = threading.Lock()

    def catch_up(
        self,
        coop: str | None = None,
        *,
        on_progress: Callable[[int], None] | None = None,
    ) -> CatchUp:
        """Apply everything new in ``coop`` (or in every coop) to every projection."""
        report = CatchUp()
        started = time.perf_counter()
        with self._lock:
            for c in [coop] if coop is not None else self.log.coops():
                size = self.log.tree_size(c)
                self._run(c, size, {}, report, on_progress)
        report.seconds = time.perf_counter() - started
        return report

    def rebuild(
        self,
        coop: str,
        targets: Mapping[str, int],
        *,
        report: CatchUp,
        on_event: Callable[[int, Event, int], None] | None = None,
        on_progress: Callable[[int], None] | None = None,
        size: int,
    ) -> None:
        """Apply the log of ``coop`` up to leaf ``size`` - 1, each projection only up to its
        target leaf; ``on_event`` sees every event read (replay judges them again)."""
        with self._lock:
            self._run(coop, size, targets, report, on_progress, on_event, read_all=True)

    def _run(
        self,
        coop: str,
        size: int,
        targets: Mapping[str, int],
        report: CatchUp,
        on_progress: Callable[[int], None] | None,
        on_event: Callable[[int, Event, int], None] | None = None,
        *,
        read_all: bool = False,
    ) -> None:
        goal = {p.name: min(targets.get(p.name, size - 1), size - 1) for p in self.projections}
        positions = self._positions(coop)
        start = 0 if read_all else None
        conflicts = 0
        while True:
            behind = [p for p in self.projections if positions[p.name] < goal[p.name]]
            if start is None:
                if not behind:
                    return
                start = min(positions[p.name] for p in behind) + 1
            if start >= size:
                return
            stop = min(start + self.batch, size)
            entries = list(self.log.entries(coop, start, stop))
            if len(entries) != stop - start:
                raise RuntimeError(f"the log of {coop} has a hole in leaves {start}..{stop - 1}")
            events: list[Positioned]
            if on_event is None:
                events = [(e.leaf_index, _decoder.decode(e.wire)) for e in entries]
            else:  # replay judges the events again: they must be whole domain events
                full = [(e.leaf_index, decode_stored(e.wire)) for e in entries]
                for entry, (leaf, event) in zip(entries, full, strict=True):
                    # A store older than the column judged by the author's ts.
                    trusted = event.ts if entry.trusted_ms is None else entry.trusted_ms
                    on_event(leaf, event, trusted)
                events = list(full)
            moves, changes = plan_batch(coop, events, behind, positions, goal)
            if moves and not self.models.commit(moves, changes):
                conflicts += 1
                report.conflicts += 1
                if conflicts > MAX_CONFLICTS or on_event is not None:
                    raise RuntimeError(f"read models of {coop} kept moving under this runner")
                positions = self._positions(coop)
                start = None
                continue
            for m in moves:
                positions[m.projection] = m.after
            report.events += len(events)
            report.batches += 1
            if on_progress is not None:
                on_progress(len(events))
            start = stop if read_all else None

    def _positions(self, coop: str) -> dict[str, int]:
        stored = self.models.positions(coop)
        return {p.name: stored.get(p.name, -1) for p in self.projections}
