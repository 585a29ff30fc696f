"""The log commands through the real ``icn`` entry point."""

from __future__ import annotations

import json

from icn.domain.log import merkle
from icn.domain.log.checkpoint import open_checkpoint


def _json(proc) -> dict:
    return json.loads(proc.stdout)


def test_importing_the_faults_log_stores_only_ok_events_and_exits_1(icn, node_dir, vectors_dir):
    proc = icn(
        "log",
        "import",
        str(vectors_dir / "faults.jsonl"),
        "--data-dir",
        str(node_dir),
        "--json",
        check=1,
    )
    report = _json(proc)
    expected = json.loads((vectors_dir / "expected.json").read_text())["faults.jsonl"]["verdicts"]
    assert report["stored"] == expected.count("ok")
    assert report["lines"] == len(expected)
    assert {p["line"] for p in report["problems"]} == {
        i + 1 for i, v in enumerate(expected) if v not in ("ok", "duplicate")
    }
    store_audit = _json(
        icn("audit", "verify", "--coop", "food-coop", "--data-dir", str(node_dir), "--json")
    )
    assert set(store_audit["verdicts"]) == {"ok"}
    [fork] = store_audit["quarantined"]
    assert fork["seq"] == 10 and fork["author"].endswith("HeTt")  # alice's second seq 10
    want = json.loads((vectors_dir / "expected.json").read_text())["faults.jsonl"]["balances"]
    want.pop("bike-share")  # that currency lives in the log's other coop, bike-coop
    assert store_audit["balances"] == want


def test_export_import_export_gives_identical_bytes(icn, tmp_path, node_dir, vectors_dir):
    icn("log", "import", str(vectors_dir / "ok.jsonl"), "--data-dir", str(node_dir))
    icn("log", "checkpoint", "--coop", "food-coop", "--data-dir", str(node_dir), "--json")
    first = icn("log", "export", "--coop", "food-coop", "--data-dir", str(node_dir)).stdout
    assert first.count(b"\n") == 30  # 29 food-coop events + the node's checkpoint
    exported = tmp_path / "a.jsonl"
    exported.write_bytes(first)
    other = tmp_path / "other"
    icn("node", "init", "--data-dir", str(other))
    icn("log", "import", str(exported), "--data-dir", str(other))
    second = icn("log", "export", "--coop", "food-coop", "--data-dir", str(other)).stdout
    assert second == first


def test_import_refuses_lines_of_another_coop_when_asked(icn, node_dir, vectors_dir):
    proc = icn(
        "log",
        "import",
        str(vectors_dir / "ok.jsonl"),
        "--coop",
        "food-coop",
        "--data-dir",
        str(node_dir),
        "--json",
        check=1,
    )
    report = _json(proc)
    assert [p["code"] for p in report["problems"]] == ["wrong-coop"]
    assert report["stored"] == 29


def test_checkpoint_proofs_and_consistency_verify_independently(icn, node_dir, vectors_dir):
    d = ["--data-dir", str(node_dir)]
    icn("log", "import", str(vectors_dir / "ok.jsonl"), *d)
    cp = _json(icn("log", "checkpoint", "--coop", "food-coop", "--json", *d))
    node_did = _json(icn("id", "show", "--json", *d))["did"]
    opened = open_checkpoint(cp["note"], node_did)
    assert opened.size == cp["size"] == 29
    assert opened.root.hex() == cp["root"]
    vectors = json.loads((vectors_dir / "merkle.json").read_text())
    assert cp["root"] == vectors["checkpoint"]["root"]  # same order, same tree
    again = _json(icn("log", "checkpoint", "--coop", "food-coop", "--json", *d))
    assert again == cp  # nothing new: the latest checkpoint is returned, not a new one

    leaf_id = vectors["leaves"][5]
    proof = _json(
        icn("log", "prove", "--coop", "food-coop", "--id", leaf_id, "--size", "20", "--json", *d)
    )
    assert proof["index"] == 5 and proof["size"] == 20
    assert proof["root"] == vectors["roots"]["20"]
    merkle.verify_inclusion(
        merkle.leaf_hash(bytes.fromhex(leaf_id)),
        5,
        20,
        [bytes.fromhex(p) for p in proof["proof"]],
        bytes.fromhex(proof["root"]),
    )
    cons = _json(
        icn("log", "consistency", "--coop", "food-coop", "--from", "7", "--to", "29", "--json", *d)
    )
    assert (cons["root1"], cons["root2"]) == (vectors["roots"]["7"], vectors["roots"]["29"])
    merkle.verify_consistency(
        7,
        29,
        [bytes.fromhex(p) for p in cons["proof"]],
        bytes.fromhex(cons["root1"]),
        bytes.fromhex(cons["root2"]),
    )
    store_audit = _json(icn("audit", "verify", "--coop", "food-coop", "--json", *d))
    assert store_audit["passed"] is True
    assert [c["matches"] for c in store_audit["checkpoints"]] == [True]


def test_proof_requests_out_of_range_are_refused_cleanly(icn, node_dir, vectors_dir):
    d = ["--data-dir", str(node_dir)]
    icn("log", "import", str(vectors_dir / "ok.jsonl"), *d)
    leaf = json.loads((vectors_dir / "merkle.json").read_text())["leaves"][10]
    proc = icn("log", "prove", "--coop", "food-coop", "--id", leaf, "--size", "5", *d, check=1)
    assert b"not inside a tree of size 5" in proc.stderr
    proc = icn("log", "prove", "--coop", "food-coop", "--id", "ab" * 32, *d, check=1)
    assert b"not-found" in proc.stderr
    proc = icn(
        "log", "consistency", "--coop", "food-coop", "--from", "3", "--to", "999", *d, check=1
    )
    assert b"out of range" in proc.stderr
    icn("log", "consistency", "--coop", "food-coop", "--from", "x", "--to", "3", *d, check=2)
