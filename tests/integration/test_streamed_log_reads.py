"""Whole-log reads in bounded memory: pages of the log, and a store audit that keeps no tree.

A coop's log only grows, so what reads all of it (export, audit, replay) must
read it a page at a time and keep state per author and account, not per
event. These tests hold the store to reading at most a page per query (on
the real databases, watching the statements they run), and the store audit
to the same answers it gave when it kept the whole tree in memory: the
stored tree checked node by node, every checkpoint checked against the
recomputed root, even one the checkpoint index lacks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from nacl.signing import SigningKey
from sqlalchemy import delete, event, update
from support.coops import sample_log
from support.tampering import tamper

from icn.application.append import AppendEvents
from icn.application.audit import audit_store
from icn.application.checkpoints import IssueCheckpoint
from icn.domain.log import merkle
from icn.infrastructure.store import event_store, schema
from icn.infrastructure.store.event_store import SqlEventStore

COOP = "demo"
PAGE = 10


@pytest.fixture
def log(store: SqlEventStore, clock: Callable[[], int]) -> SqlEventStore:
    """25 events of ``demo`` in the store."""
    outcomes = AppendEvents(store, clock).append([e.wire_bytes() for e in sample_log(payments=24)])
    assert [o.verdict for o in outcomes] == ["ok"] * 25
    return store


@contextmanager
def log_queries(store: SqlEventStore) -> Iterator[list[str]]:
    """The statements the store's read engine runs on ``log_entries`` meanwhile."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "log_entries" in statement:
            seen.append(statement)

    event.listen(store.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(store.engine, "before_cursor_execute", record)


@pytest.mark.parametrize("read", ["entries", "stored_node_rows"])
def test_whole_log_reads_fetch_one_page_per_query(
    log: SqlEventStore, monkeypatch: pytest.MonkeyPatch, read: str
) -> None:
    monkeypatch.setattr(event_store, "PAGE", PAGE)
    with log_queries(log) as queries:
        rows = getattr(log, read)(COOP)
        first = [next(rows) for _ in range(PAGE)]
        assert len(queries) == 1  # the first page, nothing more yet
        rest = list(rows)
    assert len(first) + len(rest) == 25
    assert len(queries) == 3  # 10 + 10 + 5 rows
    assert all("LIMIT" in q for q in queries)
    whole = list(getattr(log, read)(COOP))
    assert [*first, *rest] == whole


def test_store_audit_checks_the_stored_tree_and_every_checkpoint(
    log: SqlEventStore, clock: Callable[[], int]
) -> None:
    key = SigningKey.generate()
    issue = IssueCheckpoint(log, AppendEvents(log, clock), key, clock)
    node = issue.node_did
    issue.issue(COOP)  # at size 25, appended as leaf 25
    audit = audit_store(log, COOP, node)
    assert audit.passed and audit.stored_tree_matches
    assert audit.summary == {"ok": 26} and audit.problems == []
    assert [(c.size, c.own, c.matches) for c in audit.checkpoints] == [(25, True, True)]
    tree = merkle.MemoryTree()
    for entry in log.entries(COOP):
        tree.append(merkle.leaf_hash(bytes.fromhex(entry.event_id)))
    assert audit.root == tree.root().hex()

    # A checkpoint the index lost is still checked, against the verified stored tree.
    tamper(log, delete(schema.checkpoints))
    assert [c.matches for c in audit_store(log, COOP, node).checkpoints] == [True]

    # One changed node of the stored tree is found, and the audit fails.
    e = schema.log_entries
    tamper(log, update(e).where(e.c.coop == COOP, e.c.leaf_index == 7).values(nodes=b"\0" * 64))
    tampered = audit_store(log, COOP, node)
    assert not tampered.stored_tree_matches and not tampered.passed
    assert tampered.root == audit.root  # recomputed from the events, not read
