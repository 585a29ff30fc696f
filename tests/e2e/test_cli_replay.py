"""``icn replay`` as a person runs it: identical after an import, loud after tampering."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from support.compute_story import liar_log
from support.coops import write_jsonl
from support.ledger_story import ledger_story


def _import(icn, node: list[str], tmp_path: Path, env: dict[str, str] | None = None) -> int:
    _, events = ledger_story("food-coop", payments=60)
    log = write_jsonl(tmp_path / "story.jsonl", events)
    icn("log", "import", str(log), *node, env=env)
    return len(events)


def test_replay_finds_nothing_after_an_import_then_a_tampered_balance(
    icn, node_dir: Path, tmp_path: Path
) -> None:
    node = ["--data-dir", str(node_dir)]
    size = _import(icn, node, tmp_path)
    report = json.loads(icn("replay", *node, "--json").stdout)
    assert report["identical"] is True and report["differences"] == []
    assert report["events"] == size and report["coops"] == {"food-coop": size}
    assert set(report["positions"]["food-coop"].values()) == {size - 1}

    with sqlite3.connect(node_dir / "icn.sqlite3") as db:
        did, account, currency, balance = db.execute(  # balances name accounts by number
            "SELECT a.did, b.did, currency, balance FROM ledger_balances b"
            " JOIN read_accounts a ON a.id = b.did ORDER BY a.did LIMIT 1"
        ).fetchone()
        db.execute(
            "UPDATE ledger_balances SET balance = balance + 5 WHERE did = ? AND currency = ?",
            (account, currency),
        )
    proc = icn("replay", *node, "--json", check=1)
    report = json.loads(proc.stdout)
    assert report["identical"] is False and report["difference_count"] == 1
    [d] = report["differences"]
    assert d["table"] == "ledger_balances" and d["key"] == ["food-coop", did, currency]
    assert (d["live"]["balance"], d["rebuilt"]["balance"]) == (balance + 5, balance)

    text = icn("replay", *node, check=1)
    assert b"1 difference(s)" in text.stdout and b"events/s" in text.stdout
    assert b"ledger_balances" in text.stderr
    assert b"\x1b[" not in text.stdout + text.stderr  # no progress bar off a terminal


def test_replay_notices_a_tampered_rule_record(icn, node_dir: Path, tmp_path: Path) -> None:
    node = ["--data-dir", str(node_dir)]
    _import(icn, node, tmp_path)
    with sqlite3.connect(node_dir / "icn.sqlite3") as db:
        db.execute("DELETE FROM coop_state WHERE kind = 'dispute'")
    report = json.loads(icn("replay", *node, "--json", check=1).stdout)
    [d] = report["differences"]
    assert (d["table"], d["key"][1], d["live"]) == ("coop_state", "dispute", None)
    assert d["rebuilt"]["reason"] == "not done"


def test_replay_is_identical_after_a_lying_executor_is_outvoted_and_disputed(
    icn, node_dir: Path, tmp_path: Path
) -> None:
    """Tasks under a coop's own compute policy, a liar outvoted: the dispute and the
    placement exclusion the settlement made are rebuilt byte for byte by ``icn replay``."""
    node = ["--data-dir", str(node_dir)]
    s, events, task = liar_log()
    icn("log", "import", str(write_jsonl(tmp_path / "compute.jsonl", events)), *node)
    report = json.loads(icn("replay", *node, "--json").stdout)
    assert report["identical"] is True and report["differences"] == []
    assert report["coops"] == {"compute-coop": len(events)}
    with sqlite3.connect(node_dir / "icn.sqlite3") as db:
        [(value,)] = db.execute("SELECT value FROM coop_state WHERE kind = 'dispute'").fetchall()
        loads = dict(db.execute("SELECT key, value FROM coop_state WHERE kind = 'compute-load'"))
    dispute = json.loads(value)
    assert (dispute["task"], dispute["filed_by"], dispute["amount"]) == (task, s.coop_did, 0)
    excluded = [k for k, v in loads.items() if json.loads(v)["excluded_until_ms"] > 0]
    assert excluded == [dispute["counterparty"]]


def test_an_empty_node_replays_identical(icn, node_dir: Path) -> None:
    proc = icn("replay", "--data-dir", str(node_dir))
    assert b"identical; 0 events" in proc.stdout


@pytest.mark.postgres
def test_replay_of_a_postgresql_node_rebuilds_in_sqlite(icn, tmp_path: Path, pg_cluster) -> None:
    name = pg_cluster.create_database()
    env = {"ICN_DATABASE_URL": pg_cluster.url(name)}
    node = ["--data-dir", str(tmp_path / "node")]
    try:
        icn("node", "init", *node, env=env)
        size = _import(icn, node, tmp_path, env)
        report = json.loads(icn("replay", *node, "--json", env=env).stdout)
        assert report["identical"] and report["events"] == size
        pg_cluster.psql(
            f"\\c {name}\nUPDATE ledger_totals SET volume = volume + 1 WHERE currency = 'hours';"
        )
        report = json.loads(icn("replay", *node, "--json", env=env, check=1).stdout)
        [d] = report["differences"]
        assert d["table"] == "ledger_totals" and d["live"]["volume"] == d["rebuilt"]["volume"] + 1
    finally:
        pg_cluster.drop_database(name)
