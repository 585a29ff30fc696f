"""A data directory an earlier release wrote (hex-text log ids, read models by DID text)
keeps working: the log is rewritten and the read models rebuilt when the node opens it,
each with its progress shown."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from support.coops import write_jsonl
from support.ledger_story import ledger_story

EARLIER_RELEASE = (
    # log_entries with the event id as 64 hex characters and the author's DID
    "ALTER TABLE log_entries RENAME TO log_entries_new",
    "DROP INDEX log_entries_by_author",
    "DROP INDEX log_entries_by_type",
    "CREATE TABLE log_entries (coop VARCHAR(64) NOT NULL, leaf_index INTEGER NOT NULL,"
    " event_id VARCHAR(64) NOT NULL, author TEXT NOT NULL, seq INTEGER NOT NULL,"
    " type TEXT NOT NULL, ts INTEGER NOT NULL, nodes BLOB NOT NULL, trusted_ms INTEGER,"
    " PRIMARY KEY (coop, leaf_index), UNIQUE (event_id)) WITHOUT ROWID",
    "INSERT INTO log_entries SELECT e.coop, e.leaf_index, lower(hex(e.event_id)), a.did, e.seq,"
    " e.type, e.ts, e.nodes, e.trusted_ms FROM log_entries_new e"
    " JOIN log_authors a ON a.id = e.author",
    "DROP TABLE log_entries_new",
    # the chain keys with the author's DID, and no author numbers
    "UPDATE stored_events SET originator_id = (SELECT a.coop || '/' || a.did"
    " FROM log_authors a WHERE a.coop || '/' || a.id = stored_events.originator_id)",
    "DROP TABLE log_authors",
    "CREATE INDEX log_entries_by_author ON log_entries (coop, author, leaf_index)",
    "CREATE INDEX log_entries_by_type ON log_entries (coop, type, leaf_index)",
    # the ledger's read models keyed by (coop, DID), history rows with the event id
    "DROP TABLE ledger_balances",
    "DROP TABLE ledger_history",
    "DROP TABLE read_accounts",
    "CREATE TABLE ledger_balances (coop VARCHAR(64) NOT NULL, did TEXT NOT NULL,"
    " currency VARCHAR(16) NOT NULL, balance INTEGER NOT NULL, cleared_volume INTEGER NOT NULL,"
    " debited_volume INTEGER NOT NULL, entries INTEGER NOT NULL,"
    " PRIMARY KEY (coop, did, currency)) WITHOUT ROWID",
    "CREATE TABLE ledger_history (coop VARCHAR(64) NOT NULL, did TEXT NOT NULL,"
    " cursor INTEGER NOT NULL, event_id VARCHAR(64) NOT NULL, counterparty TEXT NOT NULL,"
    " amount INTEGER NOT NULL, currency VARCHAR(16) NOT NULL, memo TEXT, ts INTEGER NOT NULL,"
    " PRIMARY KEY (coop, did, cursor)) WITHOUT ROWID",
    "DELETE FROM node_meta WHERE key LIKE 'read-layout.%'",
)


def test_an_earlier_release_data_dir_reads_the_same_after_opening(
    icn, node_dir: Path, tmp_path: Path
) -> None:
    s, events = ledger_story("food-coop", payments=30)
    icn("log", "import", str(write_jsonl(tmp_path / "story.jsonl", events)),
        "--data-dir", str(node_dir))  # fmt: skip
    args = ["--data-dir", str(node_dir), "--coop", "food-coop"]
    alice = s.did("alice")
    history = json.loads(icn("history", *args, "--did", alice, "--limit", "1000", "--json").stdout)
    balance = json.loads(icn("balance", *args, "--did", alice, "--json").stdout)
    assert history["items"] and all(len(i["event_id"]) == 64 for i in history["items"])

    db = sqlite3.connect(node_dir / "icn.sqlite3", isolation_level=None)
    db.execute("BEGIN IMMEDIATE")
    for sql in EARLIER_RELEASE:
        db.execute(sql)
    db.execute("COMMIT")
    db.close()

    first = icn("history", *args, "--did", alice, "--limit", "1000", "--json")
    # The rewrite and the rebuild show their progress on stderr (on a pipe: a plain line at
    # the end, as the long commands do); stdout stays the one JSON document.
    assert json.loads(first.stdout) == history
    shown = first.stderr.decode().splitlines()
    assert f"chain keys: {len(events):,}/{len(events):,} (100%)" in shown, shown
    assert f"log ids: {len(events):,}/{len(events):,} (100%)" in shown, shown
    assert f"read models: {len(events):,}/{len(events):,} (100%)" in shown, shown
    caught_up = icn("balance", *args, "--did", alice, "--json")
    assert "read models" not in caught_up.stderr.decode()  # nothing left to rebuild
    now = json.loads(caught_up.stdout)
    assert {k: v for k, v in now.items() if k != "now_ms"} == {
        k: v for k, v in balance.items() if k != "now_ms"
    }
    report = json.loads(icn("replay", "--data-dir", str(node_dir), "--json").stdout)
    assert report["identical"] is True and report["events"] == len(events)
    with sqlite3.connect(node_dir / "icn.sqlite3") as db:
        kinds = {t for (t,) in db.execute("SELECT DISTINCT typeof(event_id) FROM log_entries")}
        authors = {t for (t,) in db.execute("SELECT DISTINCT typeof(author) FROM log_entries")}
        keys = [k for (k,) in db.execute("SELECT originator_id FROM stored_events")]
    assert kinds == {"blob"} and authors == {"integer"}
    assert keys and not [k for k in keys if "did:" in k]
