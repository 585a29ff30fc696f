"""What a live stream delivers: the coop's log after a cursor, in pages, then as it grows.

Both stream transports (SSE and WebSocket) consume :func:`follow`. It reads
the store in pages of at most ``PAGE`` events, so a subscriber starting at 0
on a large log never holds more than one page, and it reads again only when
it has delivered the previous page: a slow consumer slows its own reads,
nothing piles up in memory. Positions only grow, so a reconnect with the last
position seen resumes with no gap and no duplicate.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import NamedTuple, Protocol

import anyio
import msgspec

from icn.application.ports import LogEntry
from icn.interfaces.http.log_feed import LogFeed

PAGE = 500


class PagedLog(Protocol):
    """What a stream needs of the store."""

    def tree_size(self, coop: str) -> int: ...

    def page(
        self,
        coop: str,
        *,
        after: int = -1,
        limit: int = 100,
        type_prefix: str | None = None,
        author: str | None = None,
    ) -> list[LogEntry]: ...


class Filters(NamedTuple):
    """Which events a subscriber wants: after a position, by type prefix, by author."""

    after: int = -1
    type_prefix: str | None = None
    author: str | None = None


class Delivery(NamedTuple):
    """One event to send: its position, its type, and its wire bytes untouched."""

    position: int
    type: str
    wire: bytes


class Heartbeat(NamedTuple):
    """Nothing to send, but the connection is alive (unix ms)."""

    at_ms: int


class _Typed(msgspec.Struct):
    type: str


_type_of = msgspec.json.Decoder(_Typed)


def read_page(
    store: PagedLog, coop: str, after: int, filters: Filters
) -> tuple[list[Delivery], int]:
    """Up to ``PAGE`` matching events after ``after``, and how far the log was scanned.

    With a filter, a short page means nothing else matches up to the size read
    *before* the page, so the cursor may skip there: the next read starts
    after it instead of rescanning non-matching events on every wake-up.
    """
    size = store.tree_size(coop)
    rows = store.page(
        coop, after=after, limit=PAGE, type_prefix=filters.type_prefix, author=filters.author
    )
    page = [Delivery(e.leaf_index, _type_of.decode(e.wire).type, e.wire) for e in rows]
    scanned = page[-1].position if page else after
    if len(page) < PAGE:
        scanned = max(scanned, size - 1)
    return page, scanned


async def follow(
    feed: LogFeed, store: PagedLog, coop: str, filters: Filters, heartbeat_s: float
) -> AsyncIterator[list[Delivery] | Heartbeat]:
    """Pages of events after ``filters.after``, then live; heartbeats every ``heartbeat_s``.

    Ends when the feed closes (server shutdown).
    """
    cursor = filters.after
    next_beat = time.monotonic() + heartbeat_s
    async with feed.watch(coop):
        while not feed.closed:
            seen = feed.version(coop)  # before the read: a commit during it still wakes us
            page, scanned = await anyio.to_thread.run_sync(read_page, store, coop, cursor, filters)
            full = len(page) == PAGE
            if page:
                yield page
            # Not kept while this stream idles: hundreds of idle streams each holding
            # their last page was most of what they cost.
            del page
            cursor = scanned
            if full and time.monotonic() < next_beat:
                continue
            while not feed.closed:
                now = time.monotonic()
                if now >= next_beat:
                    yield Heartbeat(int(time.time() * 1000))
                    next_beat = time.monotonic() + heartbeat_s
                    if full:
                        break
                if await feed.wait(coop, seen, next_beat - time.monotonic()):
                    break
