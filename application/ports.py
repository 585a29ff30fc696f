"""What the use cases need from the outside world, as protocols.

The application decides; a port only stores or reads. Infrastructure
implements these (SQLite and PostgreSQL today), unit tests may fake them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Protocol

import msgspec

from icn.domain.events.chain import ChainHead, ChainView
from icn.domain.events.envelope import Event


class StoreError(Exception):
    """Base of the errors a store raises."""


class ConcurrentAppend(StoreError):
    """Another writer appended first; judge the batch again against fresh state."""


class Accepted(msgspec.Struct, frozen=True):
    """An event judged ``ok``: stored with its canonical wire bytes."""

    event: Event
    wire: bytes
    trusted_ms: int | None = None
    """The trusted time it was judged at (:mod:`icn.domain.events.timing`), stored beside
    it so replay judges it at the same time; ``None`` only for decisions made elsewhere."""


class ForkEvidence(msgspec.Struct, frozen=True):
    """A second event at an occupied (coop, author, seq), kept but never applied."""

    event: Event
    wire: bytes
    conflicts_with: str


class StoreView(ChainView, Protocol):
    """A chain view that also knows which authors forked (a node rule, not a spec verdict)."""

    def is_flagged(self, coop: str, author: str) -> bool:
        """True when the author has a fork in quarantine in ``coop``."""
        ...

    def state_get(self, coop: str, kind: str, key: str) -> bytes | None:
        """One record of the coop rules' state, encoded (see :class:`StateRow`)."""
        ...

    def event_wire(self, coop: str, event_id: str) -> bytes | None:
        """The wire bytes of an accepted event of ``coop``."""
        ...

    def state_get_many(
        self, keys: Sequence[tuple[str, str, str]]
    ) -> dict[tuple[str, str, str], bytes]:
        """Several records at once, by (coop, kind, key); missing ones are left out."""
        ...

    def state_scan(self, coop: str, kind: str, prefix: str) -> list[tuple[str, bytes]]:
        """(key, record) of every record of ``kind`` whose key starts with ``prefix``."""
        ...

    def log_size(self, coop: str) -> int:
        """How many events the coop's log holds (before this write)."""
        ...


class StateRow(msgspec.Struct, frozen=True):
    """One record of the state the coop rules keep (members, accounts, disputes …).

    Written in the same transaction as the events that produced it, so the
    rules of the next write read exactly the state the log implies.
    """

    coop: str
    kind: str
    key: str
    value: bytes


class Decision(msgspec.Struct, frozen=True):
    """What a write decided to store: accepted events and fork evidence."""

    accepted: Sequence[Accepted]
    forks: Sequence[ForkEvidence]
    received_ms: int
    records: Sequence[StateRow] = ()


Decide = Callable[[StoreView], Decision]
"""Judges a batch against the store's current state, inside the write transaction."""


class StoredCheckpoint(msgspec.Struct, frozen=True):
    """A ``log.CheckpointIssued`` event as the log holds it."""

    event_id: str
    coop: str
    author: str
    size: int
    root: str
    note: str
    leaf_index: int


class LogEntry(msgspec.Struct, frozen=True):
    """One event at its place in the node's log."""

    coop: str
    leaf_index: int
    event_id: str
    wire: bytes
    trusted_ms: int | None = None
    """The trusted time the node judged it at (``None`` in stores older than the column)."""


class EventStore(Protocol):
    """The append-only log of signed events, per coop, with its Merkle tree."""

    def append_decided(self, chains: Iterable[tuple[str, str]], decide: Decide) -> list[int]:
        """Run ``decide`` and store its decision in one transaction; return leaf indexes.

        The view handed to ``decide`` reads inside the transaction, after the
        store's write lock is held, so nothing can change between the
        decision and the write. ``chains`` names the (coop, author) pairs
        whose state ``decide`` will ask for, so it can be read up front in one
        round trip. If ``decide`` raises, nothing is stored.
        """
        ...

    def append(
        self, accepted: Sequence[Accepted], forks: Sequence[ForkEvidence], received_ms: int
    ) -> list[int]:
        """Store an already-made decision; the store's own uniqueness rules still apply.

        It runs no rules and writes no coop state: only for decisions made and
        checked elsewhere (store contract tests); every node write goes
        through :meth:`append_decided`.

        Raises :class:`ConcurrentAppend` when a second event at one (coop,
        author, seq) or one leaf position would be stored; nothing is stored then.
        """
        ...

    def head(self, coop: str, author: str) -> ChainHead | None:
        """The author's last accepted event in ``coop``."""
        ...

    def id_at(self, coop: str, author: str, seq: int) -> str | None:
        """The id accepted at ``seq`` of the author's chain in ``coop``."""
        ...

    def tree_size(self, coop: str) -> int:
        """Number of events in the coop's log."""
        ...

    def root(self, coop: str, size: int) -> bytes:
        """Merkle root of the coop's log at ``size``."""
        ...

    def inclusion_proof(self, coop: str, index: int, size: int) -> list[bytes]:
        """RFC 9162 inclusion proof for leaf ``index`` in the tree of ``size``."""
        ...

    def consistency_proof(self, coop: str, size1: int, size2: int) -> list[bytes]:
        """RFC 9162 consistency proof between two sizes."""
        ...

    def find(self, event_id: str) -> LogEntry | None:
        """An event by id."""
        ...

    def entries(self, coop: str, start: int = 0, stop: int | None = None) -> Iterator[LogEntry]:
        """The coop's log in order, leaves ``start`` up to (not including) ``stop``."""
        ...

    def page(
        self,
        coop: str,
        *,
        after: int = -1,
        limit: int = 100,
        type_prefix: str | None = None,
        author: str | None = None,
    ) -> list[LogEntry]:
        """Up to ``limit`` entries after leaf ``after``, filtered by type prefix and author."""
        ...

    def coops(self) -> list[str]:
        """Coops with at least one event."""
        ...

    def checkpoints(
        self, coop: str, author: str | None = None, *, from_leaf: int = 0
    ) -> list[StoredCheckpoint]:
        """Checkpoint events in log order from leaf ``from_leaf``, optionally only one author's."""
        ...

    def latest_checkpoint(self, coop: str, author: str) -> StoredCheckpoint | None:
        """The author's last checkpoint of ``coop``: one index descent, however many came before."""
        ...

    def quarantined(self, coop: str) -> list[ForkEvidence]:
        """Fork evidence held for ``coop``."""
        ...

    def state_get(self, coop: str, kind: str, key: str) -> bytes | None:
        """One committed record of the coop rules' state (``coop_state``), encoded."""
        ...

    def state_records(self, coop: str, kind: str) -> list[tuple[str, bytes]]:
        """Every committed record of one kind in ``coop``, as (key, encoded value), by key."""
        ...

    def stored_nodes(self, coop: str) -> dict[tuple[int, int], bytes]:
        """Every persisted complete-subtree hash: lets an audit check the stored tree."""
        ...

    def stored_node_rows(
        self, coop: str, start: int = 0, stop: int | None = None
    ) -> Iterator[tuple[int, bytes]]:
        """(leaf index, the subtree hashes that leaf completed, level 0 first), in leaf
        order, read in pages: an audit compares the tree without holding all of it."""
        ...

    def log_ranges(self) -> LogRanges:
        """A reader of this log by leaf range that can be pickled to another process and
        read there on its own connection (an audit's workers read their own units)."""
        ...


class LogRanges(Protocol):
    """Reads of a coop's stored log by leaf range, for workers in other processes."""

    def entries(self, coop: str, start: int, stop: int) -> list[LogEntry]:
        """The entries at leaves ``start`` to ``stop``, in leaf order."""
        ...

    def stored_node_rows(self, coop: str, start: int, stop: int) -> list[tuple[int, bytes]]:
        """Each leaf's persisted subtree hashes for leaves ``start`` to ``stop``, in order."""
        ...


SpanAttributes = Mapping[str, str | int]


class Telemetry(Protocol):
    """Traces and the few measures the write path takes (:mod:`icn.infrastructure.telemetry`
    implements it with OpenTelemetry; :data:`NO_TELEMETRY` does nothing).

    A span's parent is the current span of the calling thread, or ``parent``: what
    :meth:`current` returned in another thread (a write crosses from the HTTP handler to
    the group commit's writer thread)."""

    def span(
        self,
        name: str,
        attributes: SpanAttributes | None = None,
        *,
        parent: object = None,
        links: Sequence[object] = (),
    ) -> AbstractContextManager[object]:
        """A span around a ``with`` block; ``links``: the traces of other writes it also
        carries out (what :meth:`current` returned in their threads)."""
        ...

    def current(self) -> object:
        """The calling thread's trace context, to hand to :meth:`span` in another thread."""
        ...

    def verified(self, seconds: float, events: int) -> None:
        """How long the stateless checks of ``events`` lines took."""
        ...

    def grouped(self, events: int) -> None:
        """A group commit wrote ``events`` events in one transaction."""
        ...

    def refused(self, coop: str, code: str, count: int = 1) -> None:
        """A write to ``coop`` was refused with ``code``: a post or a local write (once
        each, whatever its events), or ``count`` events replicated in."""
        ...


class NoTelemetry:
    """Telemetry off: no spans, no measures."""

    def span(
        self,
        name: str,
        attributes: SpanAttributes | None = None,
        *,
        parent: object = None,
        links: Sequence[object] = (),
    ) -> AbstractContextManager[object]:
        return contextlib.nullcontext()

    def current(self) -> object:
        return None

    def verified(self, seconds: float, events: int) -> None:
        pass

    def grouped(self, events: int) -> None:
        pass

    def refused(self, coop: str, code: str, count: int = 1) -> None:
        pass


NO_TELEMETRY: Telemetry = NoTelemetry()
