"""The outbox relay against an in-memory log, cursor table and publisher."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from support.coops import CoopScript

from icn.application.append import CommittedEvent
from icn.application.ports import LogEntry
from icn.application.relay import (
    LeafRuns,
    OutboxHead,
    OutboxItem,
    OutboxRelay,
    outbox_heads_of,
    outbox_item,
)

COOP = "relay-coop"


class MemoryLog:
    """Log entries per coop, and the cursor table, in memory."""

    def __init__(self) -> None:
        self.entries_by_coop: dict[str, list[LogEntry]] = {}
        self.cursors: dict[str, int] = {}
        self.cursor_writes = 0

    def add(self, coop: str, wire: bytes, event_id: str) -> None:
        log = self.entries_by_coop.setdefault(coop, [])
        log.append(LogEntry(coop, len(log), event_id, wire))

    def tree_size(self, coop: str) -> int:
        return len(self.entries_by_coop.get(coop, []))

    def outbox_heads(self, coop: str, start: int, limit: int) -> list[OutboxHead]:
        return outbox_heads_of(self.entries_by_coop.get(coop, [])[start : start + limit])

    def outbox_wires(self, coop: str, start: int, stop: int) -> dict[int, bytes]:
        return {e.leaf_index: e.wire for e in self.entries_by_coop.get(coop, [])[start:stop]}

    def outbox_cursor(self, coop: str) -> int:
        return self.cursors.get(coop, -1)

    def set_outbox_cursor(self, coop: str, position: int) -> None:
        self.cursor_writes += 1
        self.cursors[coop] = max(self.cursors.get(coop, -1), position)


class MemoryPublisher:
    """Records what it was asked to publish; can stop short or fail, like NATS going away."""

    def __init__(self) -> None:
        self.published: list[OutboxItem] = []
        self.calls = 0
        self.ack_only: int | None = None
        self.fail = False

    async def publish(self, items: Sequence[OutboxItem]) -> int:
        self.calls += 1
        if self.fail:
            raise ConnectionError("NATS is away")
        acked = len(items) if self.ack_only is None else min(self.ack_only, len(items))
        self.published += items[:acked]
        return acked


def _log(events: int, coop: str = COOP) -> MemoryLog:
    log = MemoryLog()
    script = CoopScript(coop)
    log.add(coop, script.found().wire_bytes(), "f")
    for i in range(events - 1):
        e = script.pay("alice" if i % 2 else "bob", "bob" if i % 2 else "alice", 1 + i)
        log.add(coop, e.wire_bytes(), e.id)
    return log


def test_publishes_the_whole_log_in_order_and_moves_the_cursor_behind_the_acks() -> None:
    log, pub = _log(1234), MemoryPublisher()
    relay = OutboxRelay(log, log, pub, page=500, persist_every_s=0)
    result = asyncio.run(relay.pump(COOP))
    assert result.published == 1234 and result.caught_up
    assert [i.position for i in pub.published] == list(range(1234))
    assert log.cursors[COOP] == 1233
    assert pub.calls == 3 and log.cursor_writes == 3  # one publish and one cursor write per page
    assert pub.published[5].event_type == "ledger.EntryRecorded"
    assert relay.backlog(COOP) == 0 and relay.known_backlog(COOP) == 0


def test_items_carry_subject_parts_from_the_wire() -> None:
    log = _log(3)
    item = outbox_item(log.entries_by_coop[COOP][1])
    assert item.event_type == "ledger.EntryRecorded"
    assert item.author == CoopScript(COOP).did("bob")
    assert item.wire == log.entries_by_coop[COOP][1].wire and item.coop == COOP


def test_nothing_new_publishes_nothing() -> None:
    log, pub = _log(10), MemoryPublisher()
    relay = OutboxRelay(log, log, pub)
    asyncio.run(relay.pump(COOP))
    calls = pub.calls
    again = asyncio.run(relay.pump(COOP))
    assert again.published == 0 and again.caught_up and pub.calls == calls


def test_a_partial_ack_moves_the_cursor_only_over_the_acked_prefix() -> None:
    log, pub = _log(100), MemoryPublisher()
    relay = OutboxRelay(log, log, pub, page=50, persist_every_s=0)
    pub.ack_only = 30
    result = asyncio.run(relay.pump(COOP))
    assert result.published == 30 and not result.caught_up
    assert log.cursors[COOP] == 29 and relay.backlog(COOP) == 70
    pub.ack_only = None
    result = asyncio.run(relay.pump(COOP))
    assert result.caught_up and log.cursors[COOP] == 99
    positions = [i.position for i in pub.published]
    assert positions == list(range(100))  # nothing skipped, nothing sent twice after an ack


def test_a_failed_publish_keeps_the_cursor_and_the_next_pump_resends() -> None:
    log, pub = _log(20), MemoryPublisher()
    relay = OutboxRelay(log, log, pub)
    pub.fail = True
    with pytest.raises(ConnectionError):
        asyncio.run(relay.pump(COOP))
    assert log.outbox_cursor(COOP) == -1 and relay.backlog(COOP) == 20
    pub.fail = False
    assert asyncio.run(relay.pump(COOP)).published == 20


def test_a_restarted_relay_starts_from_the_stored_cursor() -> None:
    """A crash after the acks but before more commits: a new relay resumes, no re-publish."""
    log, pub = _log(40), MemoryPublisher()
    asyncio.run(OutboxRelay(log, log, pub, persist_every_s=0).pump(COOP))
    script = CoopScript("relay-coop")
    for _ in range(5):
        log.add(COOP, script.found().wire_bytes(), "x")  # any bytes with type and author
    fresh = MemoryPublisher()
    result = asyncio.run(OutboxRelay(log, log, fresh).pump(COOP))
    assert result.published == 5 and [i.position for i in fresh.published] == list(range(40, 45))


def test_a_crash_before_the_cursor_write_republishes_the_same_ids() -> None:
    """At least once: the cursor is written after the acks, so a lost write means a re-publish
    with the same message ids (= event ids), which JetStream's duplicate window drops."""
    log, pub = _log(10), MemoryPublisher()

    def crash(coop: str, position: int) -> None:
        raise SystemExit("killed between ack and cursor write")

    log.set_outbox_cursor = crash  # type: ignore[method-assign]
    with pytest.raises(SystemExit):
        asyncio.run(OutboxRelay(log, log, pub, persist_every_s=0).pump(COOP))
    del log.set_outbox_cursor
    again = MemoryPublisher()
    asyncio.run(OutboxRelay(log, log, again).pump(COOP))
    assert [i.event_id for i in again.published] == [i.event_id for i in pub.published]


def test_coops_have_separate_cursors() -> None:
    log, pub = _log(5), MemoryPublisher()
    other = CoopScript("other-coop")
    log.add("other-coop", other.found().wire_bytes(), "o")
    relay = OutboxRelay(log, log, pub, persist_every_s=0)
    asyncio.run(relay.pump("other-coop"))
    assert log.cursors == {"other-coop": 0} and relay.backlog(COOP) == 5
    asyncio.run(relay.pump(COOP))
    assert log.cursors == {"other-coop": 0, COOP: 4}


def test_the_stored_cursor_is_written_at_most_every_interval_and_on_flush() -> None:
    """A busy relay does not pay a synced write per page; a flush (idle, stop) writes it."""
    log, pub = _log(30), MemoryPublisher()
    relay = OutboxRelay(log, log, pub, page=10, persist_every_s=3600)

    async def go() -> None:
        await relay.pump(COOP)
        assert log.outbox_cursor(COOP) == -1 and log.cursor_writes == 0
        assert relay.backlog(COOP) == 0  # the relay itself knows
        await relay.flush(COOP)
        assert log.outbox_cursor(COOP) == 29 and log.cursor_writes == 1
        await relay.flush(COOP)
        assert log.cursor_writes == 1  # nothing moved: nothing written

    asyncio.run(go())


def test_events_received_from_the_stream_are_passed_over_not_published() -> None:
    log, pub = _log(10), MemoryPublisher()
    from_stream = {e.event_id for e in log.entries_by_coop[COOP][2:8]}
    asked: list[str] = []

    def already(coop: str, event_id: str) -> bool:
        asked.append(event_id)
        return event_id in from_stream

    relay = OutboxRelay(log, log, pub, persist_every_s=0, already_in_stream=already)
    result = asyncio.run(relay.pump(COOP))
    assert result.caught_up and result.published == 4 and relay.skipped == 6
    assert [i.position for i in pub.published] == [0, 1, 8, 9]
    assert log.cursors[COOP] == 9 and len(asked) == 10


def _committed(coop: str, *positions: int) -> list[CommittedEvent]:
    return [
        CommittedEvent(coop, p, f"id{p}", "ledger.EntryRecorded", "a", b"{}") for p in positions
    ]


def test_leaves_appended_from_the_stream_are_kept_as_runs() -> None:
    runs = LeafRuns()
    runs.committed(_committed(COOP, 3, 4, 5))
    runs.committed(_committed(COOP, 6, 7))  # one batch after another: still one run
    runs.committed(_committed(COOP, 10))  # another process appended 8 and 9
    runs.committed(_committed("other", 0))
    assert runs.runs(COOP) == 2 and runs.runs("other") == 1
    assert [p for p in range(12) if runs.holds(COOP, p)] == [3, 4, 5, 6, 7, 10]
    assert runs.holds("other", 0) and not runs.holds("other", 3)
    assert not runs.holds("none", 0)


def test_leaves_received_from_the_stream_are_passed_over_by_position() -> None:
    # icn node sync: its intake remembered no ids, but noted the leaves it appended (2-7);
    # the last pump moves the cursor past them, publishing only what another process added.
    log, pub = _log(10), MemoryPublisher()
    runs = LeafRuns()
    runs.committed(_committed(COOP, *range(2, 8)))
    relay = OutboxRelay(log, log, pub, persist_every_s=0, received_at=runs.holds, remember=0)
    result = asyncio.run(relay.pump(COOP))
    assert result.caught_up and result.published == 4 and relay.skipped == 6
    assert [i.position for i in pub.published] == [0, 1, 8, 9]
    assert log.cursors[COOP] == 9
    assert asyncio.run(relay.pump(COOP)).published == 0


def test_a_partial_ack_after_skipped_events_never_passes_an_unacked_one() -> None:
    log, pub = _log(10), MemoryPublisher()
    from_stream = {log.entries_by_coop[COOP][i].event_id for i in (1, 2, 5)}
    relay = OutboxRelay(
        log, log, pub, persist_every_s=0, already_in_stream=lambda c, i: i in from_stream
    )
    pub.ack_only = 2  # publishes positions 0 and 3, then NATS goes away
    result = asyncio.run(relay.pump(COOP))
    assert not result.caught_up and log.cursors[COOP] == 3


def _offered(log: MemoryLog, start: int, stop: int, coop: str = COOP) -> list[OutboxItem]:
    return [outbox_item(e) for e in log.entries_by_coop[coop][start:stop]]


class CountingLog(MemoryLog):
    """Counts the reads the relay makes of the store."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def outbox_heads(self, coop: str, start: int, limit: int) -> list[OutboxHead]:
        self.reads += 1
        return super().outbox_heads(coop, start, limit)


def _counting(events: int) -> CountingLog:
    log = CountingLog()
    log.entries_by_coop = _log(events).entries_by_coop
    return log


def test_events_handed_over_at_commit_are_published_without_reading_the_store() -> None:
    log, pub = _counting(10), MemoryPublisher()
    relay = OutboxRelay(log, log, pub, persist_every_s=0)
    log.cursors[COOP] = 3  # 0..3 published earlier
    relay.offer(_offered(log, 4, 10))
    result = asyncio.run(relay.pump(COOP))
    assert result.caught_up and result.published == 6
    assert [i.position for i in pub.published] == [4, 5, 6, 7, 8, 9]
    assert log.reads == 0 and relay.read_back == 0 and log.cursors[COOP] == 9


def test_what_was_not_handed_over_is_read_from_the_store_in_order() -> None:
    """Appends by another process (or a relay far behind) leave a hole: the store fills it."""
    log, pub = _counting(10), MemoryPublisher()
    relay = OutboxRelay(log, log, pub, persist_every_s=0)
    relay.offer(_offered(log, 6, 10))  # 0..5 came from elsewhere
    result = asyncio.run(relay.pump(COOP))
    assert result.caught_up and [i.position for i in pub.published] == list(range(10))
    assert log.reads >= 1 and log.cursors[COOP] == 9
    relay.offer(_offered(log, 2, 4))  # stale: already published
    assert asyncio.run(relay.pump(COOP)).published == 0


def test_handed_over_events_from_the_stream_are_passed_over_too() -> None:
    log, pub = _counting(6), MemoryPublisher()
    from_stream = {log.entries_by_coop[COOP][i].event_id for i in (1, 2)}
    relay = OutboxRelay(
        log, log, pub, persist_every_s=0, already_in_stream=lambda c, i: i in from_stream
    )
    relay.offer(_offered(log, 0, 6))
    result = asyncio.run(relay.pump(COOP))
    assert result.published == 4 and relay.skipped == 2 and log.reads == 0
    assert log.cursors[COOP] == 5


def test_published_events_are_known_once_as_published_here() -> None:
    """The node's consumer reads its own events back: the relay vouches for acked ones only."""
    log, pub = _log(10), MemoryPublisher()
    relay = OutboxRelay(log, log, pub, persist_every_s=0)
    pub.ack_only = 4
    asyncio.run(relay.pump(COOP))
    ids = [e.event_id for e in log.entries_by_coop[COOP]]
    assert [relay.published_here(COOP, i) for i in ids] == [True] * 4 + [False] * 6
    assert not relay.published_here(COOP, ids[0])  # once
    assert not relay.published_here("other-coop", ids[1])
