"""What projections need from the outside: the log to read, and a place for their rows.

A projection is pure: it turns one accepted event into row changes
(:class:`Changes`) and never touches a database. Its rows are of two shapes
only, which every store can apply the same way:

- a :class:`SumTable` row is a set of counters under a key: a change *adds*
  to them (a missing row starts at zero), so changes of a whole batch can be
  summed before they are written, and the order of batches does not matter;
- an :class:`AppendTable` row is written once, by the entry that made it.

The store applies a batch's changes and moves each projection's tracking
position in one transaction, and only if every position is still the one
the batch started from (:meth:`ReadModelStore.commit`), so two runners can
never both apply the same entries.
"""

from __future__ import annotations

import operator
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

import msgspec

from icn.application.ports import LogEntry

Key = tuple[Any, ...]
Row = tuple[Any, ...]


class Fact(Protocol):
    """What a projection reads of an accepted event (a domain ``Event`` is one)."""

    @property
    def coop(self) -> str: ...
    @property
    def author(self) -> str: ...
    @property
    def id(self) -> str: ...
    @property
    def ts(self) -> int: ...
    @property
    def type(self) -> str: ...
    @property
    def body(self) -> dict[str, Any]: ...


class AcceptedEvent(msgspec.Struct, frozen=True):
    """An accepted event decoded without re-validating it (it was checked before it was
    stored): the fields projections read, at a seventh of a full ``Event`` decode."""

    coop: str
    author: str
    id: str
    ts: int
    type: str
    body: dict[str, Any]


class SumTable(msgspec.Struct, frozen=True):
    """Rows of counters under a key; a change adds to the counters."""

    name: str
    key: tuple[str, ...]
    values: tuple[str, ...]


class AppendTable(msgspec.Struct, frozen=True):
    """Rows written once each; ``key`` (a prefix of ``columns``) identifies a row."""

    name: str
    key: tuple[str, ...]
    values: tuple[str, ...]

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column, key first: the order of a row's values."""
        return self.key + self.values


Table = SumTable | AppendTable


class Changes:
    """What a batch of events does to the read models, summed per key where it can be."""

    def __init__(self) -> None:
        self.sums: dict[str, dict[Key, list[int]]] = {}
        self.rows: dict[str, list[Row]] = {}

    def add(self, table: SumTable, key: Key, values: Sequence[int]) -> None:
        """Add ``values`` to the counters of ``key`` (a zero change still creates the row)."""
        rows = self.sums.get(table.name)
        if rows is None:
            rows = self.sums[table.name] = {}
        have = rows.get(key)
        rows[key] = list(values) if have is None else list(map(operator.add, have, values))

    def insert(self, table: AppendTable, row: Row) -> None:
        """A new row (key columns first, then values, as ``table.columns``)."""
        self.rows.setdefault(table.name, []).append(row)

    def __len__(self) -> int:
        return sum(len(r) for r in self.sums.values()) + sum(len(r) for r in self.rows.values())


class Projection(Protocol):
    """Turns accepted events, in log order, into row changes. Pure and deterministic."""

    @property
    def name(self) -> str:
        """Stable name: the key of its tracking position."""
        ...

    @property
    def tables(self) -> tuple[Table, ...]:
        """The tables it writes."""
        ...

    def apply(self, leaf: int, event: Fact, changes: Changes) -> None:
        """Record what ``event`` (leaf ``leaf`` of its coop's log) changes."""
        ...


class Move(msgspec.Struct, frozen=True):
    """A projection's tracking position moving from ``before`` to ``after`` in one coop."""

    projection: str
    coop: str
    before: int
    after: int


class LogSource(Protocol):
    """The accepted log, per coop, in order (the event store provides it)."""

    def coops(self) -> list[str]:
        """Coops with at least one event."""
        ...

    def tree_size(self, coop: str) -> int:
        """Number of events in the coop's log."""
        ...

    def entries(self, coop: str, start: int = 0, stop: int | None = None) -> Iterator[LogEntry]:
        """Leaves ``start`` up to (not including) ``stop``, in order."""
        ...


class ReadModelStore(Protocol):
    """Where projections keep their rows and positions."""

    def positions(self, coop: str) -> dict[str, int]:
        """Last leaf applied per projection in ``coop`` (a projection absent here: -1)."""
        ...

    def commit(self, moves: Sequence[Move], changes: Changes) -> bool:
        """Apply ``changes`` and every move in one transaction, if no position moved meanwhile.

        Returns False (and changes nothing) when some projection's position is
        no longer ``before``: another runner applied those entries first.
        """
        ...


class ReadModelDump(Protocol):
    """Every row of a read-model table, ordered by key (for replay's comparison)."""

    def rows(self, table: Table) -> Iterator[tuple[Key, Row]]:
        """(key, values) pairs in key order."""
        ...
