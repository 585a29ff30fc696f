"""A running node's SQLite WAL is checkpointed by its own thread, never inside a commit.

Observed on real files: while the WAL holds far more than SQLite's 1,000-page automatic
threshold, the database file has not grown (no commit copied pages back); once the
checkpointer has run, it has, and a fresh connection reads everything.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import time
from pathlib import Path

import pytest
from support.coops import GENEROUS_POLICY, CoopScript

from icn.application.append import AppendEvents
from icn.domain.events.envelope import Event, inspect
from icn.infrastructure.settings import Settings
from icn.infrastructure.store.database import parse_database_url
from icn.infrastructure.store.event_store import SqlEventStore
from icn.infrastructure.store.read_models import ReadSide
from icn.infrastructure.store.wal import WalCheckpointer
from icn.interfaces.bootstrap import build_node, init_node, open_node

NAMES = ["alice", "bob", "carol", "dan", "erin", "fay"]
SQLITE_AUTOCHECKPOINT_PAGES = 1000


def history(payments: int) -> tuple[str, list[Event]]:
    s = CoopScript("demo", ts=time.time_ns() // 1_000_000 - 10 * 60_000)
    events = [s.found({n: [] for n in NAMES}, policy=GENEROUS_POLICY)]
    for i in range(payments):
        payer, payee = NAMES[i % 6], NAMES[(i + 1 + i // 6) % 6]
        if payer == payee:
            payee = NAMES[(i + 2) % 6]
        events.append(s.pay(payer, payee, 100 + i, memo=f"job {i:05d} " + "x" * 200))
    return s.coop, events


def wal_pages(path: Path) -> int:
    wal = Path(f"{path}-wal")
    return wal.stat().st_size // 4096 if wal.exists() else 0


def test_commits_leave_the_wal_to_the_checkpointer(tmp_path: Path) -> None:
    path = tmp_path / "icn.sqlite3"
    database = parse_database_url(f"sqlite:///{path}", tmp_path)
    store = SqlEventStore(dataclasses.replace(database, autocheckpoint=False))
    store.create_tables()
    reads = ReadSide(store)
    append = AppendEvents(store, lambda: time.time_ns() // 1_000_000)
    coop, events = history(3000)
    # Everything created so far is in the database file: the writes start from here.
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    file_before = path.stat().st_size
    try:
        for i in range(0, len(events), 100):
            outcomes = append.append_inspected(
                [inspect(e.wire_bytes()) for e in events[i : i + 100]]
            )
            assert {o.verdict for o in outcomes} == {"ok"}
            reads.catch_up(coop)
        assert wal_pages(path) > 2 * SQLITE_AUTOCHECKPOINT_PAGES
        assert path.stat().st_size == file_before  # no commit copied a page back

        checkpointer = WalCheckpointer(str(path), every_s=0.05)
        checkpointer.start()
        deadline = time.monotonic() + 10
        while path.stat().st_size == file_before and time.monotonic() < deadline:
            time.sleep(0.05)
        checkpointer.stop()
        assert path.stat().st_size > file_before + SQLITE_AUTOCHECKPOINT_PAGES * 4096
        with sqlite3.connect(path) as conn:
            busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            assert (busy, copied) == (0, frames)  # the last checkpoint left nothing behind
            assert conn.execute("SELECT COUNT(*) FROM log_entries").fetchone() == (3001,)
    finally:
        reads.close()
        store.close()


def test_commands_keep_sqlites_own_checkpoints(tmp_path: Path) -> None:
    """A short-lived command has no checkpointer, so its commits checkpoint as SQLite does."""
    path = tmp_path / "icn.sqlite3"
    store = SqlEventStore(parse_database_url(f"sqlite:///{path}", tmp_path))
    store.create_tables()
    append = AppendEvents(store, lambda: time.time_ns() // 1_000_000)
    _, events = history(3000)
    try:
        file_before = path.stat().st_size
        for i in range(0, len(events), 100):
            append.append_inspected([inspect(e.wire_bytes()) for e in events[i : i + 100]])
        assert path.stat().st_size > file_before + (1 << 20)  # commits copied pages back
    finally:
        store.close()


def test_a_running_node_runs_its_checkpointer_until_closed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ICN_PASSPHRASE", "wal checkpoints passphrase")
    settings = Settings(data_dir=tmp_path / "node", replication=False, clock_offset_ms=0)
    init_node(settings)
    running = build_node(settings).node
    checkpointer = running.checkpointer
    assert checkpointer is not None and checkpointer.alive
    assert not running.store.database.autocheckpoint
    running.close()
    assert not checkpointer.alive
    command = open_node(settings, writer=True)  # e.g. `icn log import`
    assert command.checkpointer is None and command.store.database.autocheckpoint
    command.close()
