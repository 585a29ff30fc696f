"""The store's hot queries do work that does not grow with history.

Timing would be flaky on a shared machine, so these count instead: on SQLite, the
virtual-machine steps a query runs (a progress handler called on every step), at a
short history and at one 20 times longer, must be the same; on PostgreSQL, the plans
must read the indexes meant for them. Rows are inserted directly (no signing): the
queries read only the columns filled here.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import create_engine, event, insert, text

from icn.infrastructure.store import schema
from icn.infrastructure.store.event_store import SqlEventStore
from icn.infrastructure.store.log_rows import HEADS_SQL, heads_params
from icn.infrastructure.store.reads import stored_events

COOP, BUSY, RARE, NODE = "c", "did:key:busy", "did:key:rare", "did:key:node"
SMALL, LARGE = 300, 6000


def _levels(leaf: int) -> int:
    """How many subtree hashes leaf ``leaf`` completes (level 0 always)."""
    n, levels = leaf + 1, 1
    while n % 2 == 0:
        n, levels = n // 2, levels + 1
    return levels


def fill(store: SqlEventStore, size: int) -> None:
    """A coop log of ``size`` entries: a coop.Founded, three events of a quiet author
    early on, everything else by one busy author; a node's checkpoint every 100."""
    entries, events = [], []
    seqs: dict[str, int] = {}
    numbers = {BUSY: 1, RARE: 2}  # log_authors
    for leaf in range(size):
        author = RARE if leaf in (1, 2, 3) else BUSY
        kind = "coop.Founded" if leaf == 0 else "ledger.EntryRecorded"
        seq = seqs[author] = seqs.get(author, 0) + 1
        event_id = f"{leaf:064x}"
        wire = json.dumps({"id": event_id, "ts": leaf, "type": kind}).encode()
        entries.append(
            {
                "coop": COOP,
                "leaf_index": leaf,
                "event_id": event_id,
                "author": numbers[author],
                "seq": seq,
                "type": kind,
                "ts": leaf,
                "nodes": bytes(32 * _levels(leaf)),
                "trusted_ms": leaf,
            }
        )
        events.append(
            {
                "originator_id": f"{COOP}/{numbers[author]}",
                "originator_version": seq,
                "topic": kind,
                "state": wire,
            }
        )
    db = store.database
    writer = create_engine(f"sqlite:///{db.sqlite_path}") if db.is_sqlite else store.engine
    with writer.begin() as conn:
        conn.execute(
            insert(schema.log_authors),
            [{"id": n, "coop": COOP, "did": did} for did, n in numbers.items()],
        )
        conn.execute(insert(schema.log_entries), entries)
        conn.execute(insert(stored_events), events)
        conn.execute(insert(schema.log_trees), [{"coop": COOP, "size": size, "edge": bytes(32)}])
    if db.is_sqlite:
        writer.dispose()


def paths(store: SqlEventStore) -> dict[str, Callable[[], object]]:
    """The reads whose cost must not follow history (``size`` is read from the store)."""
    size = store.tree_size(COOP)
    return {
        "chain head": lambda: store.head(COOP, BUSY),
        "event by id": lambda: store.find(f"{size // 3:064x}"),
        "page from an old position": lambda: store.page(COOP, after=size // 2, limit=50),
        "page by a quiet author": lambda: store.page(COOP, after=-1, author=RARE),
        "page by a rare type": lambda: store.page(COOP, after=10, type_prefix="coop."),
        "page by a common type": lambda: store.page(COOP, after=10, type_prefix="ledger."),
        "tree size": lambda: store.tree_size(COOP),
        "latest checkpoint": lambda: store.latest_checkpoint(COOP, NODE),
        "checkpoints since a leaf": lambda: store.checkpoints(COOP, from_leaf=size - 150),
    }


@contextmanager
def counting(store: SqlEventStore) -> Iterator[list[int]]:
    """Count the SQLite VM steps of everything the store's read engine runs."""
    steps = [0]

    def step() -> int:
        steps[0] += 1
        return 0

    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.set_progress_handler(step, 1)

    store.engine.dispose()
    event.listen(store.engine, "connect", on_connect)
    try:
        yield steps
    finally:
        event.remove(store.engine, "connect", on_connect)
        store.engine.dispose()


def sqlite_steps(store: SqlEventStore) -> dict[str, int]:
    found = {}
    for name, read in paths(store).items():
        read()  # the first run opens the connection and reads the schema
        with counting(store) as steps:
            read()
            read()
        found[name] = steps[0]
    conn = sqlite3.connect(store.database.sqlite_path)
    steps = [0]

    def step() -> int:
        steps[0] += 1
        return 0

    conn.set_progress_handler(step, 1)
    sql = HEADS_SQL.format(marks="?,?")
    conn.execute(sql, heads_params(COOP, [BUSY, RARE])).fetchall()
    steps[0] = 0
    conn.execute(sql, heads_params(COOP, [BUSY, RARE])).fetchall()
    found["write path: chain heads"] = steps[0]
    conn.close()
    return found


def test_sqlite_reads_take_the_same_steps_at_20x_the_history(tmp_path: Any) -> None:
    from icn.infrastructure.store.database import parse_database_url

    counts = []
    for size in (SMALL, LARGE):
        d = tmp_path / f"s{size}"
        d.mkdir()
        store = SqlEventStore(parse_database_url(None, d))
        try:
            store.create_tables()
            fill(store, size)
            counts.append(sqlite_steps(store))
        finally:
            store.close()
    small, large = counts
    grew = {k: (small[k], large[k]) for k in small if large[k] > small[k] * 1.1 + 20}
    assert not grew, f"VM steps that grew with history (at {SMALL:,}, at {LARGE:,}): {grew}"


@pytest.mark.postgres
def test_postgres_plans_read_the_indexes(pg_cluster: Any, tmp_path: Any) -> None:
    from icn.infrastructure.store.database import parse_database_url

    name = pg_cluster.create_database()
    store = SqlEventStore(parse_database_url(pg_cluster.url(name), tmp_path))
    try:
        store.create_tables()
        fill(store, SMALL)
        statements: list[tuple[str, Any]] = []

        def keep(_c: Any, _cur: Any, sql: str, params: Any, _ctx: Any, _many: bool) -> None:
            if sql.lstrip().upper().startswith(("SELECT", "WITH")):
                statements.append((sql, params))

        event.listen(store.engine, "before_cursor_execute", keep)
        for read in paths(store).values():
            read()
        event.remove(store.engine, "before_cursor_execute", keep)
        sql = HEADS_SQL.format(marks="%s").replace("?", "%s")
        statements.append((sql, tuple(heads_params(COOP, [BUSY]))))
        with store.engine.connect() as conn:
            # A tiny table is cheapest to read whole; forbid that, so the plan shows
            # what the query can use, as it would on a large log.
            conn.execute(text("SET enable_seqscan = off"))
            raw = conn.connection.dbapi_connection
            assert raw is not None
            plans = []
            for sql, params in statements:
                cur = raw.cursor()
                cur.execute("EXPLAIN " + sql, params)
                plans.append((sql, "\n".join(r[0] for r in cur.fetchall())))
    finally:
        store.close()
        pg_cluster.drop_database(name)
    for sql, plan in plans:
        assert "Seq Scan" not in plan, f"{sql}\n{plan}"
    text_of = "\n".join(plan for _, plan in plans)
    assert "log_entries_by_author" in text_of
    assert "log_entries_by_type" in text_of
    assert "log_entries_by_id" in text_of  # event by id: the hash index
    assert "checkpoints_by_author" in text_of and "checkpoints_by_leaf" in text_of
    heads = plans[-1][1]
    assert "Index Only Scan Backward" in heads and "Limit" in heads, heads
