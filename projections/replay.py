"""``icn replay``: rebuild the coop rules' state and every projection from the log, and compare.

The log is the only truth; everything else (the ``coop_state`` records the
write path keeps, the read models) must follow from it. Replay reads each
coop's log once, in order, and from every event:

- judges it again with the same rules the write path used
  (:func:`~icn.domain.coop.evolve.evolve` over an in-memory
  :class:`~icn.application.coop_view.StateLayer`); an event the rules now
  refuse is a difference, and is left out as the write path would have;
- applies it to every projection, into a scratch store.

Then it compares, row by row, the rebuilt state and tables with the live
ones as of one consistent snapshot (each projection up to the position the
live one had reached, so a node that keeps writing meanwhile causes no
false alarm).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol

import msgspec

from icn.application.coop_view import StateLayer
from icn.application.ports import LogEntry
from icn.domain.coop.evolve import evolve
from icn.domain.coop.records import Record
from icn.domain.events.envelope import Event, decode_stored
from icn.domain.refusals import Refusal
from icn.domain.trust.records import StandingAtEpochRecord
from icn.projections.catalogue import PROJECTIONS
from icn.projections.ports import Key, LogSource, ReadModelDump, ReadModelStore, Row, Table
from icn.projections.runner import CatchUp, Runner

HISTORY_KIND = StandingAtEpochRecord.kind
HISTORY_TABLE = "trust_standing_history"
"""Where the store keeps the rules' per-epoch standings (apart from ``coop_state``)."""

MAX_LISTED = 1000
"""Differences listed in full; beyond that they are only counted."""

KEEP_EVENTS = 10_000
"""Events the replay keeps in memory for the rules to look up; older ones are read back."""


class Difference(msgspec.Struct):
    """One row that differs: ``live`` or ``rebuilt`` is null when the row is missing there."""

    table: str
    key: list[Any]
    live: Any
    rebuilt: Any


class ReplayReport(msgspec.Struct):
    """``{"identical": bool, "differences": [...]}`` and what it took."""

    identical: bool
    differences: list[Difference]
    difference_count: int
    events: int
    seconds: float
    events_per_s: float
    coops: dict[str, int]
    """Each coop's log size as replayed."""
    positions: dict[str, dict[str, int]]
    """Per coop, the live projections' positions compared (last leaf applied)."""


class LiveSnapshot(Protocol):
    """The live tables as of one moment."""

    def sizes(self) -> dict[str, int]:
        """Every coop's log size."""
        ...

    def positions(self) -> dict[str, dict[str, int]]:
        """coop -> projection -> last leaf applied."""
        ...

    def state_rows(self) -> Iterator[tuple[Key, bytes]]:
        """The coop rules' records keyed (coop, kind, key), in key order."""
        ...

    def rows(self, table: Table) -> Iterator[tuple[Key, Row]]:
        """A read-model table, in key order."""
        ...

    def standing_history_rows(self) -> Iterator[tuple[Key, Row]]:
        """Every member's standing at every epoch: ((coop, context, did, epoch), (standing_ppm,
        normalised_ppm, class)), in key order."""
        ...


class EventFinder(Protocol):
    """Looks up an accepted event by id (the live store)."""

    def find(self, event_id: str) -> LogEntry | None: ...


class _Scratch(ReadModelStore, ReadModelDump, Protocol):
    """An empty read-model store to rebuild into."""


class _LogEvents:
    """Events the rules ask for by id, read back from the log, but only those already
    replayed (an entry can only be disputed after it was accepted)."""

    def __init__(self, finder: EventFinder) -> None:
        self._finder = finder
        self.coop = ""
        self.leaf = -1

    def record(self, coop: str, kind: str, key: str) -> Record | None:
        return None

    def scan(self, coop: str, kind: str, prefix: str) -> list[Record]:
        return []  # every record replay made is in the layer above

    def log_size(self, coop: str) -> int:
        return 0  # the layer above counts every event it replayed

    def event(self, coop: str, event_id: str) -> Event | None:
        found = self._finder.find(event_id)
        if (
            found is None
            or found.coop != coop
            or coop != self.coop
            or found.leaf_index >= self.leaf
        ):
            return None
        return decode_stored(found.wire)


class _Differences:
    def __init__(self) -> None:
        self.listed: list[Difference] = []
        self.count = 0

    def add(self, table: str, key: Sequence[Any], live: Any, rebuilt: Any) -> None:
        self.count += 1
        if len(self.listed) < MAX_LISTED:
            self.listed.append(Difference(table, list(key), live, rebuilt))


def _merge(
    live: Iterable[tuple[Key, Any]], rebuilt: Iterable[tuple[Key, Any]]
) -> Iterator[tuple[Key, Any, Any]]:
    """Both sides in key order, paired up; yields (key, live, rebuilt) where they differ
    (None on the side that lacks the row)."""
    a, b = iter(live), iter(rebuilt)
    x, y = next(a, None), next(b, None)
    while x is not None or y is not None:
        if y is None or (x is not None and x[0] < y[0]):
            assert x is not None
            yield x[0], x[1], None
            x = next(a, None)
        elif x is None or y[0] < x[0]:
            yield y[0], None, y[1]
            y = next(b, None)
        else:
            if x[1] != y[1]:
                yield x[0], x[1], y[1]
            x, y = next(a, None), next(b, None)


def _json(value: bytes) -> Any:
    return msgspec.json.decode(value)


def replay(
    log: LogSource,
    finder: EventFinder,
    live: LiveSnapshot,
    scratch: _Scratch,
    *,
    on_progress: Callable[[int], None] | None = None,
) -> ReplayReport:
    """Rebuild everything from the log into ``scratch`` and memory; compare with ``live``."""
    started = time.perf_counter()
    sizes = live.sizes()
    positions = live.positions()
    differences = _Differences()
    source = _LogEvents(finder)
    layer = StateLayer(source)
    runner = Runner(log, scratch, PROJECTIONS)
    report = CatchUp()

    def judge(leaf: int, event: Event, trusted_ms: int) -> None:
        source.leaf = leaf
        result = evolve(event, layer, trusted_ms)
        if isinstance(result, Refusal):
            differences.add(
                "log", [event.coop, leaf, event.id], "accepted", f"{result.code}: {result.reason}"
            )
            return
        layer.write(event, result)
        if len(layer.events) > KEEP_EVENTS:
            layer.events.clear()

    for coop in sorted(sizes):
        source.coop = coop
        layer.events.clear()
        runner.rebuild(
            coop,
            _targets(positions.get(coop, {})),
            size=sizes[coop],
            report=report,
            on_event=judge,
            on_progress=on_progress,
        )

    rebuilt_rows = layer.rows()
    rebuilt_state = sorted(
        ((r.coop, r.kind, r.key), r.value) for r in rebuilt_rows if r.kind != HISTORY_KIND
    )
    for key, was, now in _merge(live.state_rows(), rebuilt_state):
        differences.add("coop_state", key, _or_none(was, _json), _or_none(now, _json))
    # The per-epoch standings the rules made are kept in their own table, not in coop_state.
    rebuilt_history = sorted(
        ((r.coop, s.context, s.did, s.epoch), (s.standing_ppm, s.normalised_ppm, s.trust_class))
        for r, s in (
            (r, msgspec.json.decode(r.value, type=StandingAtEpochRecord))
            for r in rebuilt_rows
            if r.kind == HISTORY_KIND
        )
    )
    for key, was, now in _merge(live.standing_history_rows(), rebuilt_history):
        differences.add(HISTORY_TABLE, key, _history(was), _history(now))
    for projection in PROJECTIONS:
        for table in projection.tables:
            for key, was, now in _merge(live.rows(table), scratch.rows(table)):
                differences.add(table.name, key, _row(table, was), _row(table, now))
    seconds = time.perf_counter() - started
    return ReplayReport(
        identical=differences.count == 0,
        differences=differences.listed,
        difference_count=differences.count,
        events=report.events,
        seconds=round(seconds, 3),
        events_per_s=round(report.events / seconds, 1) if seconds > 0 else 0.0,
        coops=sizes,
        positions=positions,
    )


def _targets(positions: Mapping[str, int]) -> dict[str, int]:
    """Each projection rebuilt up to the live one's position (-1: nothing applied yet)."""
    return {p.name: positions.get(p.name, -1) for p in PROJECTIONS}


def _or_none(value: Any, convert: Callable[[Any], Any]) -> Any:
    return None if value is None else convert(value)


def _history(values: Any) -> dict[str, Any] | None:
    if values is None:
        return None
    return dict(zip(("standing_ppm", "normalised_ppm", "trust_class"), values, strict=True))


def _row(table: Table, values: Any) -> dict[str, Any] | None:
    if values is None:
        return None
    return dict(zip(table.values, values, strict=True))
