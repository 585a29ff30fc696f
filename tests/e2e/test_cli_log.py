"""The log commands through the real ``icn`` entry point.

The logs imported are generated (``support.coops``): the spec's vector logs
no longer import into a node (their ``coop.Founded`` body is not the
project's, and one of their coops is never founded). Roots and proofs are
compared with the pure in-memory tree of the same log; the vectors
themselves are checked here through the store-less ``icn audit verify`` and
the same pure tree.
"""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest
from support.coops import (
    VECTOR_LIKE_BIKE,
    VECTOR_LIKE_FOOD,
    faults_log,
    two_coop_log,
    write_jsonl,
)

from icn.domain.events.envelope import Event
from icn.domain.log import merkle
from icn.domain.log.checkpoint import open_checkpoint


def _json(proc) -> dict:
    return json.loads(proc.stdout)


def pure_tree(events: list[Event]) -> merkle.MemoryTree:
    """The tree of these events in this order, computed without any store."""
    tree = merkle.MemoryTree()
    for event in events:
        tree.append(merkle.leaf_hash(bytes.fromhex(event.id)))
    return tree


@pytest.fixture
def log(tmp_path: Path) -> tuple[Path, list[Event]]:
    """food-coop (29 events) and bike-coop (2), interleaved; every line ok for a node."""
    events = two_coop_log()
    return write_jsonl(tmp_path / "coops.jsonl", events), events


def food_of(events: list[Event]) -> list[Event]:
    return [e for e in events if e.coop == VECTOR_LIKE_FOOD]


def test_the_spec_vectors_pass_the_storeless_audit_and_the_pure_tree(icn, vectors_dir):
    expected = json.loads((vectors_dir / "expected.json").read_text())
    for name, want in expected.items():
        check = 0 if name == "ok.jsonl" else 1
        audit = _json(icn("audit", "verify", str(vectors_dir / name), "--json", check=check))
        assert (audit["verdicts"], audit["balances"]) == (want["verdicts"], want["balances"])
    lines = (vectors_dir / "ok.jsonl").read_bytes().splitlines()
    events = [msgspec.json.decode(ln, type=Event) for ln in lines]
    tree = pure_tree([e for e in events if e.coop == "food-coop"])
    vectors = json.loads((vectors_dir / "merkle.json").read_text())
    assert tree.root(vectors["checkpoint"]["size"]).hex() == vectors["checkpoint"]["root"]
    assert {s: tree.root(int(s)).hex() for s in vectors["roots"]} == vectors["roots"]


def test_importing_a_faults_log_stores_only_ok_events_and_exits_1(icn, node_dir, tmp_path):
    faults = faults_log()
    path = faults.write(tmp_path / "faults.jsonl")
    proc = icn("log", "import", str(path), "--data-dir", str(node_dir), "--json", check=1)
    report = _json(proc)
    assert report["stored"] == faults.node.count("ok")
    assert report["lines"] == len(faults.lines)
    assert {p["line"] for p in report["problems"]} == {
        i + 1 for i, v in enumerate(faults.node) if v not in ("ok", "duplicate")
    }
    refused = {p["line"]: p["code"] for p in report["problems"] if p["verdict"] == "refused"}
    assert refused == {i + 1: code for i, code in faults.codes.items()}

    # The store-less audit of the same file gives the spec's verdicts (no coop rules).
    file_audit = _json(icn("audit", "verify", str(path), "--json", check=1))
    assert file_audit["verdicts"] == faults.spec
    store_audit = _json(
        icn("audit", "verify", "--coop", "food-coop", "--data-dir", str(node_dir), "--json")
    )
    assert set(store_audit["summary"]) == {"ok"} and store_audit["problems"] == []
    [fork] = store_audit["quarantined"]
    assert faults.fork is not None
    assert (fork["event_id"], fork["seq"], fork["author"]) == (
        faults.fork.id,
        faults.fork.seq,
        faults.fork.author,
    )
    want = file_audit["balances"]
    want.pop("bike-share")  # that currency lives in the log's other coop, bike-coop
    assert store_audit["balances"] == want  # the lines refused by rules move no money


def test_export_import_export_gives_identical_bytes(icn, tmp_path, node_dir, log):
    path, events = log
    icn("log", "import", str(path), "--data-dir", str(node_dir))
    icn("log", "checkpoint", "--coop", "food-coop", "--data-dir", str(node_dir), "--json")
    first = icn("log", "export", "--coop", "food-coop", "--data-dir", str(node_dir)).stdout
    assert first.count(b"\n") == len(food_of(events)) + 1 == 30  # + the node's checkpoint
    exported = tmp_path / "a.jsonl"
    exported.write_bytes(first)
    other = tmp_path / "other"
    icn("node", "init", "--data-dir", str(other))
    icn("log", "import", str(exported), "--data-dir", str(other))
    second = icn("log", "export", "--coop", "food-coop", "--data-dir", str(other)).stdout
    assert second == first


def test_import_refuses_lines_of_another_coop_when_asked(icn, node_dir, log):
    path, events = log
    proc = icn(
        "log",
        "import",
        str(path),
        "--coop",
        "food-coop",
        "--data-dir",
        str(node_dir),
        "--json",
        check=1,
    )
    report = _json(proc)
    bike = [i + 1 for i, e in enumerate(events) if e.coop == VECTOR_LIKE_BIKE]
    assert [(p["line"], p["code"]) for p in report["problems"]] == [(n, "wrong-coop") for n in bike]
    assert report["stored"] == len(food_of(events)) == 29


def test_checkpoint_proofs_and_consistency_verify_independently(icn, node_dir, log):
    path, events = log
    food = food_of(events)
    tree = pure_tree(food)
    d = ["--data-dir", str(node_dir)]
    icn("log", "import", str(path), *d)
    cp = _json(icn("log", "checkpoint", "--coop", "food-coop", "--json", *d))
    node_did = _json(icn("id", "show", "--json", *d))["did"]
    opened = open_checkpoint(cp["note"], node_did)
    assert opened.size == cp["size"] == 29
    assert opened.root.hex() == cp["root"]
    assert cp["root"] == tree.root().hex()  # same order, same tree
    again = _json(icn("log", "checkpoint", "--coop", "food-coop", "--json", *d))
    assert again == cp  # nothing new: the latest checkpoint is returned, not a new one

    leaf_id = food[5].id
    proof = _json(
        icn("log", "prove", "--coop", "food-coop", "--id", leaf_id, "--size", "20", "--json", *d)
    )
    assert proof["index"] == 5 and proof["size"] == 20
    assert proof["root"] == tree.root(20).hex()
    assert proof["proof"] == [p.hex() for p in merkle.inclusion_proof(tree.get, 5, 20)]
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
    assert (cons["root1"], cons["root2"]) == (tree.root(7).hex(), tree.root(29).hex())
    assert cons["proof"] == [p.hex() for p in merkle.consistency_proof(tree.get, 7, 29)]
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


def test_proof_requests_out_of_range_are_refused_cleanly(icn, node_dir, log):
    path, events = log
    d = ["--data-dir", str(node_dir)]
    icn("log", "import", str(path), *d)
    leaf = food_of(events)[10].id
    proc = icn("log", "prove", "--coop", "food-coop", "--id", leaf, "--size", "5", *d, check=1)
    assert b"not inside a tree of size 5" in proc.stderr
    proc = icn("log", "prove", "--coop", "food-coop", "--id", "ab" * 32, *d, check=1)
    assert b"not-found" in proc.stderr
    proc = icn(
        "log", "consistency", "--coop", "food-coop", "--from", "3", "--to", "999", *d, check=1
    )
    assert b"out of range" in proc.stderr
    icn("log", "consistency", "--coop", "food-coop", "--from", "x", "--to", "3", *d, check=2)
