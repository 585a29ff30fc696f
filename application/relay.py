"""The outbox relay: every event in a coop's log goes to the coop's stream, at least once.

The log is the outbox. An accepted event's log row (``log_entries``, its
leaf index in the coop's order) is written in the event's own transaction,
so "the outbox row is written in the same transaction as the event" holds
trivially: it is the same row. What the relay adds is a cursor per coop,
the last leaf index whose JetStream ack arrived. It reads the log after the
cursor in pages, publishes each page (message id = event id) and moves the
cursor only past events whose acks all arrived, in order. A crash between
commit and ack publishes those events again after the restart; JetStream's
duplicate window drops them, and after the window every receiver still
treats an event id it holds as a no-op.

Events this node received from other nodes are in its log too, and are
published again like any other: the stream already has them, so JetStream
drops them as duplicates (within the window) or receivers do (after it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from typing import Protocol

import msgspec

from icn.application.ports import LogEntry

PAGE = 500


class OutboxItem(msgspec.Struct, frozen=True):
    """One log entry to publish: what its subject is made of, its id, and its wire bytes."""

    coop: str
    position: int
    event_id: str
    event_type: str
    author: str
    wire: bytes


class OutboxLog(Protocol):
    """The part of the store the relay reads."""

    def tree_size(self, coop: str) -> int:
        """Events in the coop's log."""
        ...

    def entries(self, coop: str, start: int = 0, stop: int | None = None) -> Iterator[LogEntry]:
        """The coop's log from leaf ``start`` (to ``stop``), in order."""
        ...


class OutboxCursors(Protocol):
    """Where the relay remembers how far each coop's log is acknowledged."""

    def outbox_cursor(self, coop: str) -> int:
        """The last leaf index whose ack arrived; -1 when none."""
        ...

    def set_outbox_cursor(self, coop: str, position: int) -> None:
        """Record that every leaf up to ``position`` is acknowledged (never moves back)."""
        ...


class OutboxPublisher(Protocol):
    """Publishes events to their coop's stream and waits for the acks."""

    async def publish(self, items: Sequence[OutboxItem]) -> int:
        """Publish ``items`` in order; return how many of them, from the first, are acked.

        Fewer than ``len(items)`` means the rest must be published again later
        (the transport is away); an exception means the same for all of them.
        """
        ...


class RelayResult(msgspec.Struct, frozen=True):
    """What one :meth:`OutboxRelay.pump` did."""

    published: int
    caught_up: bool
    """False when the publisher stopped short: try again after a pause."""


class _Head(msgspec.Struct):
    type: str
    author: str


_head = msgspec.json.Decoder(_Head)


def outbox_item(entry: LogEntry) -> OutboxItem:
    """The item to publish for one log entry (type and author read from its wire bytes)."""
    head = _head.decode(entry.wire)
    return OutboxItem(
        entry.coop, entry.leaf_index, entry.event_id, head.type, head.author, entry.wire
    )


class OutboxRelay:
    """Publishes each coop's log past its cursor, moving the cursor only behind the acks."""

    def __init__(
        self,
        log: OutboxLog,
        cursors: OutboxCursors,
        publisher: OutboxPublisher,
        *,
        page: int = PAGE,
    ) -> None:
        self._log = log
        self._cursors = cursors
        self._publisher = publisher
        self.page = page
        self._cursor: dict[str, int] = {}
        self._size: dict[str, int] = {}

    def backlog(self, coop: str) -> int:
        """Events of ``coop`` not yet acknowledged by the stream: tree size − 1 − cursor."""
        return max(0, self._log.tree_size(coop) - 1 - self._cursors.outbox_cursor(coop))

    def known_backlog(self, coop: str) -> int | None:
        """The backlog as of the last :meth:`pump`, without a query (None before the first)."""
        if coop not in self._cursor:
            return None
        return max(0, self._size.get(coop, 0) - 1 - self._cursor[coop])

    async def pump(self, coop: str) -> RelayResult:
        """Publish everything of ``coop`` past the cursor, page by page, until caught up.

        The store is synchronous: its reads and the cursor writes run in
        worker threads, so the event loop keeps serving meanwhile.
        """
        cursor = self._cursor.get(coop)
        if cursor is None:
            cursor = await asyncio.to_thread(self._cursors.outbox_cursor, coop)
            self._cursor[coop] = cursor
        published = 0
        while True:
            size = await asyncio.to_thread(self._log.tree_size, coop)
            self._size[coop] = size
            if cursor + 1 >= size:
                return RelayResult(published, caught_up=True)
            stop = min(size, cursor + 1 + self.page)
            items = await asyncio.to_thread(self._read, coop, cursor + 1, stop)
            if not items:  # the log is shorter than its size says: not yet visible; next round
                return RelayResult(published, caught_up=False)
            acked = await self._publisher.publish(items)
            if acked > 0:
                cursor = items[acked - 1].position
                await asyncio.to_thread(self._cursors.set_outbox_cursor, coop, cursor)
                self._cursor[coop] = cursor
                published += acked
            if acked < len(items):
                return RelayResult(published, caught_up=False)

    def _read(self, coop: str, start: int, stop: int) -> list[OutboxItem]:
        items: list[OutboxItem] = []
        for entry in self._log.entries(coop, start, stop):
            if entry.leaf_index != start + len(items):
                break  # never skip a leaf: publish a contiguous run only
            items.append(outbox_item(entry))
        return items
