"""Replication's rows (parked events, outbox cursors) on SQLite and PostgreSQL alike."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from support.coops import CoopScript

from icn.application.append import AppendEvents
from icn.application.intake import ToPark
from icn.infrastructure.store.event_store import SqlEventStore
from icn.infrastructure.store.parked import SqlReplicationState

LONG_COOP = "c" * 64  # the longest coop name: its cursor must fit


@pytest.fixture
def state(store: SqlEventStore) -> Iterator[SqlReplicationState]:
    s = SqlReplicationState(store)
    yield s
    s.close()


def _park(n: int, start: int = 0) -> list[ToPark]:
    return [ToPark(f"{i:064x}", "did:icn:zX", i, "gap", b'{"n":%d}' % i) for i in range(start, n)]


def test_cursor_starts_at_minus_one_and_only_moves_forward(state: SqlReplicationState) -> None:
    assert state.outbox_cursor(LONG_COOP) == -1
    state.set_outbox_cursor(LONG_COOP, 41)
    state.set_outbox_cursor(LONG_COOP, 7)  # a slower relay (another process) never moves it back
    assert state.outbox_cursor(LONG_COOP) == 41
    state.set_outbox_cursor(LONG_COOP, 99)
    assert state.outbox_cursor(LONG_COOP) == 99
    assert state.outbox_cursor("other") == -1


def test_park_ignores_known_events_and_evicts_the_oldest_beyond_the_bound(
    state: SqlReplicationState,
) -> None:
    assert state.park(LONG_COOP, _park(450), bound=1000, now_ms=1) == (450, 0)
    assert state.park(LONG_COOP, _park(460, 440), bound=1000, now_ms=2) == (10, 0)
    assert state.parked_count(LONG_COOP) == 460
    assert state.park(LONG_COOP, _park(500, 460), bound=300, now_ms=3) == (40, 200)
    assert state.parked_count(LONG_COOP) == 300 and state.parked_dropped(LONG_COOP) == 200
    parked = state.parked(LONG_COOP)
    assert [p.event_id for p in parked] == [f"{i:064x}" for i in range(200, 500)]
    assert parked[0].wire == b'{"n":200}' and parked[0].code == "gap"
    state.set_outbox_cursor(LONG_COOP, 5)  # the cursor row and the dropped count share a row
    assert state.parked_dropped(LONG_COOP) == 200 and state.outbox_cursor(LONG_COOP) == 5
    state.unpark(LONG_COOP, [p.event_id for p in parked[:600]])
    assert state.parked_count(LONG_COOP) == 0


def test_drop_forgets_parked_events_and_counts_only_those_still_parked(
    state: SqlReplicationState,
) -> None:
    """What the intake's bound dropped while judging a batch (some the bound of park may
    have dropped already): each counted once."""
    state.park(LONG_COOP, _park(600), bound=1000, now_ms=1)
    assert state.drop(LONG_COOP, []) == 0
    gone = [f"{i:064x}" for i in range(550)] + ["f" * 64]  # and one never parked
    assert state.drop(LONG_COOP, gone) == 550
    assert state.drop(LONG_COOP, gone[:3]) == 0
    assert state.parked_count(LONG_COOP) == 50 and state.parked_dropped(LONG_COOP) == 550
    assert state.drop("other", [f"{i:064x}" for i in range(550, 600)]) == 0
    assert state.parked_count(LONG_COOP) == 50


def test_known_ids_heads_and_wires_read_that_coops_log(
    store: SqlEventStore, state: SqlReplicationState, clock: Callable[[], int]
) -> None:
    s = CoopScript("known-coop")
    events = [s.found(), s.pay("alice", "bob", 1)]
    AppendEvents(store, clock).append([e.wire_bytes() for e in events], atomic=True)
    ids = [e.id for e in events]
    assert state.known_ids("known-coop", [*ids, "ff" * 32, ids[0]]) == set(ids)
    assert state.known_ids("other-coop", ids) == set()
    assert state.tree_size("known-coop") == 2 and state.quarantined_count("known-coop") == 0
    heads = state.outbox_heads("known-coop", 0, 10)
    assert [(h.position, h.event_id, h.event_type, h.author) for h in heads] == [
        (i, e.id, e.type, e.author) for i, e in enumerate(events)
    ]
    assert state.outbox_heads("known-coop", 1, 10) == heads[1:]
    assert state.outbox_wires("known-coop", 0, 2) == {
        i: e.wire_bytes() for i, e in enumerate(events)
    }
    assert state.outbox_wires("known-coop", 1, 2) == {1: events[1].wire_bytes()}
