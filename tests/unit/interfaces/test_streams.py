"""Live-stream plumbing without a server: the feed, paging, and dropping slow subscribers."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from icn.application.ports import LogEntry
from icn.interfaces.http.log_feed import LogFeed
from icn.interfaces.http.stream_source import PAGE, Delivery, Filters, Heartbeat, follow, read_page
from icn.interfaces.http.streams import (
    TOO_SLOW_SSE,
    WS_SHUTDOWN,
    WS_TOO_SLOW,
    pump_ws,
    sse_body,
    sse_message,
    ws_frame,
)

COOP = "c"


class FakeLog:
    """A coop's log in memory; counts the largest page asked for."""

    def __init__(self, types: list[str]) -> None:
        self.entries = [
            LogEntry(COOP, i, f"{i:064x}", json.dumps({"type": t, "n": i}).encode())
            for i, t in enumerate(types)
        ]
        self.largest_page = 0

    def tree_size(self, coop: str) -> int:
        return len(self.entries)

    def page(
        self, coop: str, *, after: int = -1, limit: int = 100, **filters: Any
    ) -> list[LogEntry]:
        self.largest_page = max(self.largest_page, limit)
        prefix = filters.get("type_prefix") or ""
        rows = [
            e for e in self.entries[after + 1 :] if json.loads(e.wire)["type"].startswith(prefix)
        ]
        return rows[:limit]


def test_a_filtered_short_page_moves_the_cursor_to_the_end_of_the_log() -> None:
    log = FakeLog(["a.X"] * 3 + ["b.Y"] * 7)
    page, scanned = read_page(log, COOP, -1, Filters(type_prefix="a."))
    assert [d.position for d in page] == [0, 1, 2] and scanned == 9
    page, scanned = read_page(log, COOP, scanned, Filters(type_prefix="a."))
    assert page == [] and scanned == 9


def test_follow_reads_in_pages_then_heartbeats_then_ends_on_close() -> None:
    log = FakeLog(["a.X"] * (2 * PAGE + 7))
    feed = LogFeed(log, poll_s=0.01)
    total = 2 * PAGE + 7

    async def run() -> tuple[list[Any], list[Any]]:
        pages: list[Any] = []
        beats: list[Any] = []
        delivered = 0
        async for item in follow(feed, log, COOP, Filters(after=-1), heartbeat_s=0.05):
            if isinstance(item, Heartbeat):
                beats.append(item)
                # A slow machine may heartbeat between pages; close once all arrived.
                if delivered == total:
                    feed.close()
            else:
                pages.append(item)
                delivered += len(item)
        return pages, beats

    pages, beats = asyncio.run(run())
    assert [len(p) for p in pages] == [PAGE, PAGE, 7] and beats
    assert [d.position for p in pages for d in p] == list(range(total))
    assert log.largest_page == PAGE


def test_the_feed_wakes_waiters_on_notify_and_on_close_and_times_out_otherwise() -> None:
    feed = LogFeed(FakeLog([]))

    async def run() -> tuple[bool, bool, bool]:
        seen = feed.version(COOP)
        quiet = await feed.wait(COOP, seen, 0.02)
        asyncio.get_running_loop().call_later(0.01, feed.notify, COOP)
        woken = await feed.wait(COOP, seen, 5)
        asyncio.get_running_loop().call_later(0.01, feed.close)
        closed = await feed.wait(COOP, feed.version(COOP), 5)
        return quiet, woken, closed

    assert asyncio.run(run()) == (False, True, True)


def test_an_outside_append_is_found_by_the_poll() -> None:
    log = FakeLog(["a.X"])
    feed = LogFeed(log, poll_s=0.01)

    async def run() -> list[int]:
        got: list[int] = []
        async for item in follow(feed, log, COOP, Filters(after=-1), heartbeat_s=5):
            assert not isinstance(item, Heartbeat)
            got += [d.position for d in item]
            if len(got) == 1:
                log.entries.append(LogEntry(COOP, 1, "1" * 64, b'{"type":"a.X"}'))
            else:
                feed.close()
        return got

    assert asyncio.run(asyncio.wait_for(run(), 5)) == [0, 1]


class StuckSocket:
    """A client whose connection never drains: every send after the first blocks forever."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send_text(self, data: str) -> None:
        if self.sent:
            await asyncio.Event().wait()
        self.sent.append(data)

    async def receive(self) -> dict[str, str]:
        await asyncio.Event().wait()
        return {"type": "websocket.disconnect"}


async def _pages(*pages: list[Delivery]):  # type: ignore[no-untyped-def]
    for page in pages:
        yield page


def test_a_websocket_send_that_blocks_drops_the_subscriber_with_4008() -> None:
    deliveries = [Delivery(i, "a.X", b'{"type":"a.X"}') for i in range(1000)]
    socket = StuckSocket()
    started = time.monotonic()
    outcome = asyncio.run(pump_ws(socket, _pages(deliveries), send_timeout=0.1))
    assert outcome == WS_TOO_SLOW and time.monotonic() - started < 2
    assert socket.sent == ['{"position":0,"event":{"type":"a.X"}}']


def test_a_source_that_ends_means_shutdown() -> None:
    class Quick(StuckSocket):
        async def send_text(self, data: str) -> None:
            self.sent.append(data)

    socket = Quick()
    outcome = asyncio.run(pump_ws(socket, _pages([Delivery(3, "a.X", b"{}")]), 1.0))
    assert outcome == WS_SHUTDOWN and socket.sent == ['{"position":3,"event":{}}']


def test_a_slow_sse_reader_gets_a_final_too_slow_error() -> None:
    async def run() -> list[bytes]:
        body = sse_body(_pages([Delivery(0, "a.X", b"{}")], [Delivery(1, "a.X", b"{}")]), 0.05)
        chunks = [await anext(body)]
        await asyncio.sleep(0.1)  # the "send" of the first chunk took too long
        chunks += [c async for c in body]
        return chunks

    assert asyncio.run(run()) == [b"id: 0\nevent: a.X\ndata: {}\n\n", TOO_SLOW_SSE]


def test_messages_keep_the_wire_bytes_and_the_position() -> None:
    d = Delivery(7, "ledger.EntryRecorded", b'{"a":1,\n"b":2}')
    assert sse_message(d) == b'id: 7\nevent: ledger.EntryRecorded\ndata: {"a":1,\ndata: "b":2}\n\n'
    assert ws_frame(Delivery(7, "x.Y", b'{"a":1}')) == '{"position":7,"event":{"a":1}}'
