"""A log an earlier release made is rewritten at start: event ids that were hex text become
their 32 bytes, authors named by DID become numbers (``log_authors``), in the log rows and
in the chain keys."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import text
from support.coops import CoopScript

from icn.application.append import AppendEvents
from icn.domain.events.envelope import Event, inspect
from icn.infrastructure.store import event_store as es
from icn.infrastructure.store.event_store import SqlEventStore


def earlier_release_sqlite(text_ids: bool) -> tuple[str, ...]:
    """log_entries and the chain keys as releases before storage cut 4 (issue 13) made them:
    authors by DID; with ``text_ids``, as releases before cut 2: ids as hex text too."""
    event_id = "lower(hex(e.event_id))" if text_ids else "e.event_id"
    return (
        "ALTER TABLE log_entries RENAME TO log_entries_new",
        "DROP INDEX log_entries_by_author",
        "DROP INDEX log_entries_by_type",
        "CREATE TABLE log_entries (coop VARCHAR(64) NOT NULL, leaf_index INTEGER NOT NULL,"
        f" event_id {'VARCHAR(64)' if text_ids else 'BLOB'} NOT NULL, author TEXT NOT NULL,"
        " seq INTEGER NOT NULL, type TEXT NOT NULL, ts INTEGER NOT NULL, nodes BLOB NOT NULL,"
        " trusted_ms INTEGER, PRIMARY KEY (coop, leaf_index), UNIQUE (event_id)) WITHOUT ROWID",
        f"INSERT INTO log_entries SELECT e.coop, e.leaf_index, {event_id}, a.did, e.seq, e.type,"
        " e.ts, e.nodes, e.trusted_ms FROM log_entries_new e JOIN log_authors a ON a.id = e.author",
        "UPDATE stored_events SET originator_id = (SELECT a.coop || '/' || a.did"
        " FROM log_authors a WHERE a.coop || '/' || a.id = stored_events.originator_id)",
        "DROP TABLE log_entries_new",
        "DROP TABLE log_authors",
        "CREATE INDEX log_entries_by_author ON log_entries (coop, author, leaf_index)",
        "CREATE INDEX log_entries_by_type ON log_entries (coop, type, leaf_index)",
    )


def earlier_release_postgres(text_ids: bool) -> tuple[str, ...]:
    """The same on PostgreSQL."""
    ids = (
        "ALTER TABLE log_entries ALTER COLUMN event_id TYPE varchar(64)"
        " USING encode(event_id, 'hex')",
    )
    return (*(ids if text_ids else ()),
        "CREATE FUNCTION pg_temp.did_of(n bigint) RETURNS text LANGUAGE sql STABLE"
        " AS $$SELECT did FROM log_authors WHERE id = n$$",
        "ALTER TABLE log_entries ALTER COLUMN author TYPE text USING pg_temp.did_of(author)",
        "UPDATE stored_events s SET originator_id = a.coop || '/' || a.did FROM log_authors a"
        " WHERE s.originator_id = a.coop || '/' || a.id",
        "DROP TABLE log_authors",
    )  # fmt: skip


def make_earlier_release(store: SqlEventStore, text_ids: bool = True) -> None:
    """Turn ``store``'s log back into an earlier release's layout."""
    if store.database.is_sqlite:
        db = sqlite3.connect(store.database.sqlite_path, isolation_level=None)
        db.execute("BEGIN IMMEDIATE")
        for sql in earlier_release_sqlite(text_ids):
            db.execute(sql)
        db.execute("COMMIT")
        db.close()
    else:
        with store.engine.begin() as conn:
            for sql in earlier_release_postgres(text_ids):
                conn.execute(text(sql))
    assert es._log_layout(store.engine) == (text_ids, True, True)


def append(store: SqlEventStore, events: list[Event], clock: Callable[[], int]) -> None:
    outcomes = AppendEvents(store, clock).append_inspected(
        [inspect(e.wire_bytes()) for e in events]
    )
    assert [o.verdict for o in outcomes] == ["ok"] * len(events), outcomes


@pytest.mark.parametrize("text_ids", [True, False], ids=["hex-ids-and-dids", "dids"])
def test_an_earlier_release_log_is_rewritten_at_start_and_reads_the_same(
    open_store: Callable[[], SqlEventStore], clock: Callable[[], int], text_ids: bool
) -> None:
    s = CoopScript("demo")
    events = [s.found({"alice": ["admin"], "bob": []})]
    events += [s.pay("alice" if i % 2 else "bob", "bob" if i % 2 else "alice", 5 + i)
               for i in range(40)]  # fmt: skip
    first = open_store()
    append(first, events, clock)
    before = list(first.entries("demo"))
    by_author = first.page("demo", author=s.did("alice"), limit=1000)
    root = first.root("demo", len(events))
    heads = {d: first.head("demo", d) for d in (s.did("alice"), s.did("bob"))}
    make_earlier_release(first, text_ids)
    shown: list[tuple[str, int, int]] = []

    @contextmanager
    def progress(label: str, total: int) -> Iterator[Callable[[int], None]]:
        done = [0]
        yield lambda n: done.__setitem__(0, done[0] + n)
        shown.append((label, total, done[0]))

    second = open_store()  # create_tables() at open: already migrated by the time it returns
    assert es._log_layout(second.engine) == (False, True, False)
    assert not es.migrate_log(second.engine, progress)  # nothing left to do
    assert shown == []
    assert list(second.entries("demo")) == before
    assert second.page("demo", author=s.did("alice"), limit=1000) == by_author
    assert second.root("demo", len(events)) == root
    assert {d: second.head("demo", d) for d in heads} == heads
    assert second.id_at("demo", s.did("bob"), 2) == first.id_at("demo", s.did("bob"), 2)
    for e in (events[0], events[17], events[-1]):
        found = second.find(e.id)
        assert found is not None and found.event_id == e.id
    assert second.find(events[3].id.upper()) is None and second.find("not-an-id") is None
    append(second, [s.pay("alice", "bob", 1)], clock)
    assert second.tree_size("demo") == len(events) + 1


def test_the_migration_shows_its_progress(
    open_store: Callable[[], SqlEventStore], clock: Callable[[], int]
) -> None:
    s = CoopScript("demo")
    events = [s.found({"alice": ["admin"], "bob": []})]
    events += [s.pay("alice", "bob", 1 + i) for i in range(12)]
    store = open_store()
    append(store, events, clock)
    make_earlier_release(store)
    shown: list[tuple[str, int, int]] = []

    @contextmanager
    def progress(label: str, total: int) -> Iterator[Callable[[int], None]]:
        done = [0]
        yield lambda n: done.__setitem__(0, done[0] + n)
        shown.append((label, total, done[0]))

    store.create_tables(progress)
    steps = ["chain keys", "log ids"] if store.database.is_sqlite else [
        "chain keys", "log authors", "log ids"]  # fmt: skip
    assert shown == [(step, len(events), len(events)) for step in steps]
    assert [e.event_id for e in store.entries("demo")] == [e.id for e in events]


UNIQUE_IDS_POSTGRES = (  # the event id index as releases before storage cut 3 (issue 13) made it
    "DROP INDEX log_entries_by_id",
    "ALTER TABLE log_entries ADD CONSTRAINT log_entries_event_id_key UNIQUE (event_id)",
)


def test_postgres_trades_the_unique_id_btree_for_a_hash_index_at_start(
    open_store: Callable[[], SqlEventStore], clock: Callable[[], int]
) -> None:
    s = CoopScript("demo")
    events = [s.found({"alice": ["admin"], "bob": []})]
    events += [s.pay("alice", "bob", 1 + i) for i in range(12)]
    first = open_store()
    append(first, events, clock)
    sqlite = first.database.is_sqlite

    def id_indexes(store: SqlEventStore) -> list[str]:
        with store.engine.connect() as conn:
            if sqlite:
                sql = "SELECT sql FROM sqlite_master WHERE tbl_name = 'log_entries'"
            else:
                sql = "SELECT indexdef FROM pg_indexes WHERE tablename = 'log_entries'"
            return [d for (d,) in conn.exec_driver_sql(sql) if d and "event_id" in d]

    if sqlite:  # nothing to trade: the unique constraint stays, nothing else is made
        assert not es.hash_id_index(first.engine)
        assert [d for d in id_indexes(first) if "UNIQUE (event_id)" in d]
        assert not [d for d in id_indexes(first) if "by_id" in d]
        return
    assert id_indexes(first) == [
        "CREATE INDEX log_entries_by_id ON public.log_entries USING hash (event_id)"
    ]
    with first.engine.begin() as conn:
        for sql in UNIQUE_IDS_POSTGRES:
            conn.execute(text(sql))
    assert id_indexes(first) == [
        "CREATE UNIQUE INDEX log_entries_event_id_key ON public.log_entries USING btree (event_id)"
    ]
    shown: list[tuple[str, int, int]] = []

    @contextmanager
    def progress(label: str, total: int) -> Iterator[Callable[[int], None]]:
        done = [0]
        yield lambda n: done.__setitem__(0, done[0] + n)
        shown.append((label, total, done[0]))

    first.create_tables(progress)
    assert shown == [("log id index", len(events), len(events))]
    assert id_indexes(first) == [
        "CREATE INDEX log_entries_by_id ON public.log_entries USING hash (event_id)"
    ]
    second = open_store()
    assert not es.hash_id_index(second.engine)
    for e in (events[0], events[7], events[-1]):
        found = second.find(e.id)
        assert found is not None and found.event_id == e.id
    append(second, [s.pay("bob", "alice", 1)], clock)
    # The same event again is still refused as a duplicate, not stored twice.
    outcomes = AppendEvents(second, clock).append_inspected([inspect(events[5].wire_bytes())])
    assert [o.verdict for o in outcomes] != ["ok"]
    assert second.tree_size("demo") == len(events) + 1
