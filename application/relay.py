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

Events this node received from the stream are in its log too. While the
node runs, the relay skips them (``already_in_stream``: the stream is where
they came from, and publishing them again would only make JetStream drop
them as duplicates); after a restart it cannot tell them apart and publishes
them again, which the duplicate window (or, after it, every receiver)
absorbs. ``icn node sync`` consumes with no relay running and remembers no ids
(a catch-up of a million would hold 110 MiB); it notes the leaves its intake
appended as runs (:class:`LeafRuns`, ``received_at``) and pumps once more at the
end, so the cursor passes them without publishing them back.

The cursor moves in memory after every acknowledged page and is written to
the store at most every ``persist_every_s`` (and by :meth:`flush`): a crash
re-publishes at most that much more, which the duplicate window absorbs,
and a busy node does not pay a synced write per page.
"""

from __future__ import annotations

import asyncio
import bisect
import math
import threading
import time
from collections.abc import Callable, Sequence
from typing import NamedTuple, Protocol, TypeVar

import msgspec

from icn.application.append import CommittedEvent
from icn.application.ports import LogEntry
from icn.application.remembered_ids import RememberedIds

PAGE = 500
PERSIST_EVERY_S = 0.25


OutboxItem = CommittedEvent
"""One log entry to publish: what its subject is made of, its id, and its wire bytes."""

MAX_OFFERED = 20_000
"""Committed events held for the relay per coop; beyond that it reads them from the store."""
MAX_PUBLISHED_REMEMBERED = 100_000
"""Ids of events this relay published, kept per coop for :meth:`OutboxRelay.published_here`."""


class OutboxHead(NamedTuple):
    """A log entry without its bytes: enough to decide whether and where to publish it."""

    position: int
    event_id: str
    event_type: str
    author: str
    trusted_ms: int | None = None


_Entry = TypeVar("_Entry", OutboxHead, OutboxItem)


class OutboxLog(Protocol):
    """The part of the store the relay reads."""

    def tree_size(self, coop: str) -> int:
        """Events in the coop's log."""
        ...

    def outbox_heads(self, coop: str, start: int, limit: int) -> list[OutboxHead]:
        """Up to ``limit`` entries of the coop's log from leaf ``start``, in order."""
        ...

    def outbox_wires(self, coop: str, start: int, stop: int) -> dict[int, bytes]:
        """The wire bytes of the coop's leaves ``start`` to ``stop - 1``, by leaf index."""
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
        entry.coop,
        entry.leaf_index,
        entry.event_id,
        head.type,
        head.author,
        entry.wire,
        entry.trusted_ms,
    )


def outbox_heads_of(entries: Sequence[LogEntry]) -> list[OutboxHead]:
    """:class:`OutboxHead` s of log entries (for stores that only have whole entries)."""
    heads = []
    for e in entries:
        h = _head.decode(e.wire)
        heads.append(OutboxHead(e.leaf_index, e.event_id, h.type, h.author, e.trusted_ms))
    return heads


class LeafRuns:
    """Leaf indexes per coop, kept as runs of consecutive ones: a commit listener of a
    process whose every commit came from the stream notes them (any thread), and the
    relay asks :meth:`holds`. A catch-up appends one run, however long, so this stays
    a few integers where the ids would grow with the log."""

    def __init__(self) -> None:
        self._runs: dict[str, list[list[int]]] = {}
        self._lock = threading.Lock()

    def committed(self, events: Sequence[CommittedEvent]) -> None:
        """A :data:`~icn.application.append.CommitListener`: note each event's leaf."""
        with self._lock:
            for e in events:
                runs = self._runs.setdefault(e.coop, [])
                if runs and runs[-1][1] == e.position:
                    runs[-1][1] += 1
                else:
                    bisect.insort(runs, [e.position, e.position + 1])

    def holds(self, coop: str, position: int) -> bool:
        """True if leaf ``position`` of ``coop`` was noted."""
        with self._lock:
            runs = self._runs.get(coop, [])
            i = bisect.bisect_right(runs, [position, math.inf]) - 1
            return i >= 0 and runs[i][0] <= position < runs[i][1]

    def runs(self, coop: str) -> int:
        """How many runs ``coop``'s leaves make (what this holds in memory)."""
        with self._lock:
            return len(self._runs.get(coop, []))


class OutboxRelay:
    """Publishes each coop's log past its cursor, moving the cursor only behind the acks."""

    def __init__(
        self,
        log: OutboxLog,
        cursors: OutboxCursors,
        publisher: OutboxPublisher,
        *,
        page: int = PAGE,
        persist_every_s: float = PERSIST_EVERY_S,
        already_in_stream: Callable[[str, str], bool] | None = None,
        received_at: Callable[[str, int], bool] | None = None,
        remember: int = MAX_PUBLISHED_REMEMBERED,
    ) -> None:
        self._log = log
        self._cursors = cursors
        self._publisher = publisher
        self.page = page
        self.persist_every_s = persist_every_s
        self._already_in_stream = already_in_stream
        self._received_at = received_at
        """Leaves (coop, position) appended from the stream, where ids are not remembered."""
        self._cursor: dict[str, int] = {}
        self._stored: dict[str, int] = {}
        self._stored_at: dict[str, float] = {}
        self._size: dict[str, int] = {}
        self.skipped = 0
        """Events not published because they came from the stream (since start)."""
        self.read_back = 0
        """Events the relay had to read from the store (not handed over by :meth:`offer`)."""
        self._offered: dict[str, dict[int, OutboxItem]] = {}
        self._published = RememberedIds(remember)
        """For :meth:`published_here`: 0 where no consumer of this process asks."""
        self._lock = threading.Lock()

    def offer(self, committed: Sequence[OutboxItem]) -> None:
        """Events this node just committed (a commit listener; any thread).

        The next :meth:`pump` then publishes them without reading them back
        from the store. Only a shortcut: whatever was not offered (appends by
        other processes, a relay far behind) is read from the store.
        """
        with self._lock:
            for item in committed:
                held = self._offered.setdefault(item.coop, {})
                if len(held) >= MAX_OFFERED:
                    held.clear()  # far behind (NATS away?): the store has them all
                held[item.position] = item

    def published_here(self, coop: str, event_id: str) -> bool:
        """True, once, for an event this relay published and JetStream acknowledged.

        The node's own consumer reads its events back from the stream; these
        need no checks (the log holds them), nor a trip to the store.
        """
        return self._published.take(coop, event_id)

    def _take_offered(
        self, coop: str, start: int
    ) -> tuple[list[OutboxHead], list[OutboxItem]] | None:
        """The page from ``start`` out of what was offered, or None if ``start`` was not."""
        with self._lock:
            held = self._offered.get(coop)
            if not held or start not in held:
                if held:
                    for stale in [p for p in held if p < start]:
                        del held[stale]
                return None
            run: list[OutboxItem] = []
            while len(run) < self.page:
                item = held.pop(start + len(run), None)
                if item is None:
                    break
                run.append(item)
        heads = [OutboxHead(i.position, i.event_id, i.event_type, i.author) for i in run]
        return heads, self._not_from_stream(coop, run)

    def _not_from_stream(self, coop: str, entries: list[_Entry]) -> list[_Entry]:
        """Those of ``entries`` this node did not receive from the stream (to publish)."""
        ids, leaves = self._already_in_stream, self._received_at
        if ids is None and leaves is None:
            return entries
        keep = [
            e
            for e in entries
            if not (ids is not None and ids(coop, e.event_id))
            and not (leaves is not None and leaves(coop, e.position))
        ]
        self.skipped += len(entries) - len(keep)
        return keep

    def backlog(self, coop: str) -> int:
        """Events of ``coop`` not yet acknowledged by the stream: tree size − 1 − cursor."""
        cursor = max(self._cursor.get(coop, -1), self._cursors.outbox_cursor(coop))
        return max(0, self._log.tree_size(coop) - 1 - cursor)

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
            self._cursor[coop] = self._stored[coop] = cursor
            self._stored_at[coop] = time.monotonic()
        published = 0
        while True:
            # What follows the cursor, and the bytes of what to send: handed over at commit,
            # or else read from the store (one thread hop per page).
            page = self._take_offered(coop, cursor + 1)
            heads, todo = (
                page if page is not None else await asyncio.to_thread(self._read, coop, cursor + 1)
            )
            if not heads:
                self._size[coop] = cursor + 1
                await self._persist(coop, due=False)
                return RelayResult(published, caught_up=True)
            self._size[coop] = heads[-1].position + 1
            acked = await self._publisher.publish(todo) if todo else 0
            if acked:
                self._published.add(coop, [i.event_id for i in todo[:acked]])
            if acked == len(todo):
                cursor = heads[-1].position  # skipped ones need no ack: the stream has them
            elif acked > 0:
                cursor = todo[acked - 1].position
            published += acked
            if cursor != self._cursor[coop]:
                self._cursor[coop] = cursor
                await self._persist(coop, due=False)
            if acked < len(todo):
                return RelayResult(published, caught_up=False)
            if len(heads) < self.page:
                await self._persist(coop, due=False)
                return RelayResult(published, caught_up=True)

    def _read(self, coop: str, start: int) -> tuple[list[OutboxHead], list[OutboxItem]]:
        """The next page's heads (a gap-free run from ``start``) and the items to publish:
        those this node did not receive from the stream, with their bytes."""
        heads: list[OutboxHead] = []
        for h in self._log.outbox_heads(coop, start, self.page):
            if h.position != start + len(heads):
                break  # never skip a leaf: a contiguous run only
            heads.append(h)
        keep = self._not_from_stream(coop, heads)
        self.read_back += len(heads)
        if not keep:
            return heads, []
        wires = self._log.outbox_wires(coop, keep[0].position, keep[-1].position + 1)
        items = []
        for h in keep:
            wire = wires.get(h.position)
            if wire is None:  # not visible yet: publish up to here, the rest next round
                break
            items.append(
                OutboxItem(coop, h.position, h.event_id, h.event_type, h.author, wire, h.trusted_ms)
            )
        if len(items) < len(keep):
            heads = [h for h in heads if h.position < keep[len(items)].position]
        return heads, items

    async def flush(self, coop: str) -> None:
        """Write the coop's cursor to the store now if it moved since the last write."""
        await self._persist(coop, due=True)

    async def _persist(self, coop: str, *, due: bool) -> None:
        cursor = self._cursor.get(coop)
        if cursor is None or cursor == self._stored.get(coop):
            return
        now = time.monotonic()
        if not due and now - self._stored_at.get(coop, 0.0) < self.persist_every_s:
            return
        await asyncio.to_thread(self._cursors.set_outbox_cursor, coop, cursor)
        self._stored[coop] = cursor
        self._stored_at[coop] = now
