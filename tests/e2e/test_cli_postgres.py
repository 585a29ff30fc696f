"""The same CLI round trip with the store on PostgreSQL, chosen only by ICN_DATABASE_URL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.coops import VECTOR_LIKE_FOOD, faults_log

pytestmark = pytest.mark.postgres


def test_a_node_on_postgresql_imports_exports_proves_and_audits(
    icn, tmp_path: Path, vectors_dir: Path, pg_cluster
) -> None:
    faults = faults_log()
    path = faults.write(tmp_path / "faults.jsonl")
    food_ok = sum(
        1
        for line, verdict in zip(faults.lines, faults.node, strict=True)
        if verdict == "ok" and json.loads(line)["coop"] == VECTOR_LIKE_FOOD
    )
    name = pg_cluster.create_database()
    env = {"ICN_DATABASE_URL": pg_cluster.url(name)}
    d = ["--data-dir", str(tmp_path / "node")]
    try:
        icn("node", "init", *d, env=env)
        assert not (tmp_path / "node" / "icn.sqlite3").exists()
        report = json.loads(icn("log", "import", str(path), *d, "--json", env=env, check=1).stdout)
        assert report["stored"] == faults.node.count("ok") == 33
        cp = json.loads(
            icn("log", "checkpoint", "--coop", "food-coop", "--json", *d, env=env).stdout
        )
        assert cp["size"] == food_ok == 31
        exported = icn("log", "export", "--coop", "food-coop", *d, env=env).stdout
        assert exported.count(b"\n") == food_ok + 1
        audit = json.loads(
            icn("audit", "verify", "--coop", "food-coop", "--json", *d, env=env).stdout
        )
        assert audit["passed"] and audit["stored_tree_matches"]
        assert [c["matches"] for c in audit["checkpoints"]] == [True]
        assert len(audit["quarantined"]) == 1
        # The same file through SQLite gives the same export: the backend is invisible.
        lite = ["--data-dir", str(tmp_path / "lite")]
        icn("node", "init", *lite)
        icn("log", "import", str(path), *lite, check=1)
        lite_export = icn("log", "export", "--coop", "food-coop", *lite).stdout
        assert lite_export == exported.rsplit(b"\n", 2)[0] + b"\n"  # minus PG node's checkpoint
    finally:
        pg_cluster.drop_database(name)


def test_the_spec_fault_vectors_still_pass_the_storeless_audit(icn, vectors_dir: Path) -> None:
    """They no longer import into a node (section 6's coop.Founded is the project's own)."""
    expected = json.loads((vectors_dir / "expected.json").read_text())["faults.jsonl"]
    proc = icn("audit", "verify", str(vectors_dir / "faults.jsonl"), "--json", check=1)
    audit = json.loads(proc.stdout)
    assert (audit["verdicts"], audit["balances"]) == (expected["verdicts"], expected["balances"])
    assert audit["verdicts"].count("ok") == 33
