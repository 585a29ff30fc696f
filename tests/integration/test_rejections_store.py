"""Rejected messages and dead letters on SQLite and PostgreSQL alike: bounded, once per seq."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from icn.application.intake import to_reject
from icn.infrastructure.store.event_store import SqlEventStore
from icn.infrastructure.store.parked import DeadLetter, SqlReplicationState

LONG_COOP = "c" * 64


@pytest.fixture
def state(store: SqlEventStore) -> Iterator[SqlReplicationState]:
    s = SqlReplicationState(store)
    yield s
    s.close()


def test_rejections_are_recorded_once_per_stream_seq_and_bounded(
    state: SqlReplicationState,
) -> None:
    rows = [to_reject(seq, "malformed", "not JSON", b"\xff" * 10) for seq in (1, 2, 3)]
    assert state.reject(LONG_COOP, rows, bound=10, now_ms=1) == 3
    assert state.reject(LONG_COOP, rows[1:], bound=10, now_ms=2) == 0  # a redelivery
    # Without a stream sequence (a parked event refused later) each is its own row.
    unknown = [to_reject(None, "broken-link", "r", b"{}")] * 2
    assert state.reject(LONG_COOP, unknown, bound=10, now_ms=3) == 2
    assert state.rejected_count(LONG_COOP) == 5
    state.reject(LONG_COOP, [to_reject(9, "bad-id", "x" * 10_000, b"y" * 100_000)], 3, 4)
    kept = state.rejected(LONG_COOP)
    assert [r.stream_seq for r in kept] == [None, None, 9]  # the newest three
    assert (len(kept[-1].reason), len(kept[-1].wire), kept[-1].size) == (500, 16_384, 100_000)
    assert state.rejected_count("other") == 0


def test_dead_letters_once_per_stream_seq_and_bounded(state: SqlReplicationState) -> None:
    def letter(seq: int) -> DeadLetter:
        return DeadLetter(seq, "icn.c.x.y.z", 5, "RecursionError: deep", b"{}", 2)

    assert state.dead_letter(LONG_COOP, letter(4), bound=2, now_ms=1)
    assert not state.dead_letter(LONG_COOP, letter(4), bound=2, now_ms=2)
    state.dead_letter(LONG_COOP, letter(7), bound=2, now_ms=3)
    state.dead_letter(LONG_COOP, letter(8), bound=2, now_ms=4)
    assert [d.stream_seq for d in state.dead_letters(LONG_COOP)] == [7, 8]
    assert state.dead_letter_count(LONG_COOP) == 2 and state.dead_letter_count("other") == 0
