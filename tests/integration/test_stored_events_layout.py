"""Storage cut 5 (issue 13): on PostgreSQL, ``stored_events`` keeps each wire packed and has no
``notification_id``; a store made before is rewritten at open. SQLite keeps wires verbatim."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import text
from support.coops import CoopScript

from icn.application.append import AppendEvents
from icn.domain.events.envelope import Event, inspect
from icn.infrastructure.store import event_store as es
from icn.infrastructure.store.event_store import SqlEventStore
from icn.infrastructure.store.wire_packing import PACKED_V1, unpack


def append(store: SqlEventStore, events: list[Event], clock: Callable[[], int]) -> None:
    outcomes = AppendEvents(store, clock).append_inspected(
        [inspect(e.wire_bytes()) for e in events]
    )
    assert [o.verdict for o in outcomes] == ["ok"] * len(events), outcomes


def states(store: SqlEventStore) -> list[bytes]:
    with store.engine.connect() as conn:
        return [bytes(s) for (s,) in conn.execute(text("SELECT state FROM stored_events"))]


def columns(store: SqlEventStore) -> set[str]:
    with store.engine.connect() as conn:
        return {
            c
            for (c,) in conn.execute(
                text(
                    "SELECT column_name FROM information_schema.columns"
                    " WHERE table_name = 'stored_events'"
                )
            )
        }


def earlier_release(store: SqlEventStore) -> None:
    """``stored_events`` as PostgreSQL stores before cut 5 held it: the application
    recorder's notification id, every wire verbatim, no note in ``node_meta``."""
    rows = [(o, v, unpack(bytes(s))) for o, v, s in _rows(store)]
    with store.engine.begin() as conn:
        conn.execute(text("ALTER TABLE stored_events ADD COLUMN notification_id bigserial"))
        conn.execute(
            text(
                "CREATE UNIQUE INDEX stored_events_notification_id_idx"
                " ON stored_events (notification_id ASC)"
            )
        )
        for o, v, wire in rows:
            conn.execute(
                text("UPDATE stored_events SET state = :w WHERE originator_id = :o"
                     " AND originator_version = :v"),
                {"w": wire, "o": o, "v": v},
            )  # fmt: skip
        conn.execute(text("DELETE FROM node_meta WHERE key = :k"), {"k": es.WIRE_META})


def _rows(store: SqlEventStore) -> list[tuple[str, int, bytes]]:
    with store.engine.connect() as conn:
        return [
            (o, int(v), bytes(s))
            for o, v, s in conn.execute(
                text("SELECT originator_id, originator_version, state FROM stored_events")
            )
        ]


def story() -> tuple[CoopScript, list[Event]]:
    s = CoopScript("demo")
    events = [s.found({"alice": ["admin"], "bob": []})]
    events += [s.pay("alice" if i % 2 else "bob", "bob" if i % 2 else "alice", 5 + i,
                     memo="café" if i % 3 else None) for i in range(30)]  # fmt: skip
    return s, events


def test_postgres_stores_wires_packed_and_reads_them_as_signed(
    store: SqlEventStore, clock: Callable[[], int]
) -> None:
    s, events = story()
    append(store, events, clock)
    stored = states(store)
    assert len(stored) == len(events)
    assert not es.compact_stored_events(store.engine)
    if store.database.is_sqlite:  # verbatim: nothing to pack, no note
        assert sorted(stored) == sorted(e.wire_bytes() for e in events)
        assert store.get_meta(es.WIRE_META) is None
    else:
        assert all(x[0] == PACKED_V1 for x in stored)
        assert sum(map(len, stored)) < 0.6 * sum(len(e.wire_bytes()) for e in events)
        assert "notification_id" not in columns(store)
        assert store.get_meta(es.WIRE_META) == es.CUT_5
    assert [e.wire for e in store.entries("demo")] == [e.wire_bytes() for e in events]
    assert store.page("demo", after=3, limit=2)[1].wire == events[5].wire_bytes()
    found = store.find(events[7].id)
    assert found is not None and found.wire == events[7].wire_bytes()
    head = store.head("demo", s.did("bob"))
    assert head is not None and head.id == events[-2].id
    assert store.id_at("demo", s.did("alice"), 1) == events[2].id  # its first payment


def test_a_postgres_store_made_before_cut_5_is_rewritten_at_open(
    open_store: Callable[[], SqlEventStore], clock: Callable[[], int]
) -> None:
    s, events = story()
    first = open_store()
    append(first, events, clock)
    if first.database.is_sqlite:
        assert not es.compact_stored_events(first.engine)
        return
    before = list(first.entries("demo"))
    heads = {d: first.head("demo", d) for d in (s.did("alice"), s.did("bob"))}
    earlier_release(first)
    assert "notification_id" in columns(first)
    assert all(x[:1] == b"{" for x in states(first))
    assert list(first.entries("demo")) == before  # verbatim rows read as they are
    shown: list[tuple[str, int, int]] = []

    @contextmanager
    def progress(label: str, total: int) -> Iterator[Callable[[int], None]]:
        done = [0]
        yield lambda n: done.__setitem__(0, done[0] + n)
        shown.append((label, total, done[0]))

    first.create_tables(progress)
    assert shown == [("stored wires", len(events), len(events))]
    assert "notification_id" not in columns(first)
    assert all(x[0] == PACKED_V1 for x in states(first))
    second = open_store()
    assert not es.compact_stored_events(second.engine)  # noted: one point read
    assert list(second.entries("demo")) == before
    assert {d: second.head("demo", d) for d in heads} == heads
    append(second, [s.pay("alice", "bob", 1)], clock)
    assert second.tree_size("demo") == len(events) + 1
    assert all(x[0] == PACKED_V1 for x in states(second))
