"""Every file in shared/spec/vectors passes against the pure domain and the file audit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from icn.application.audit import audit_lines, split_lines
from icn.domain.identity.did import did_from_public_key
from icn.domain.log import merkle
from icn.domain.log.checkpoint import CheckpointError, open_checkpoint


def _expected(vectors_dir: Path) -> dict:
    return json.loads((vectors_dir / "expected.json").read_text())


@pytest.mark.parametrize("name", ["ok.jsonl", "faults.jsonl"])
def test_each_log_gets_the_expected_verdicts_and_balances(vectors_dir: Path, name: str) -> None:
    expected = _expected(vectors_dir)[name]
    report = audit_lines(split_lines((vectors_dir / name).read_bytes()))
    assert report.verdicts == expected["verdicts"]
    assert report.balances == expected["balances"]


def test_every_vector_file_is_covered(vectors_dir: Path) -> None:
    logs = {p.name for p in vectors_dir.glob("*.jsonl")}
    assert logs == set(_expected(vectors_dir))


def test_verdicts_do_not_depend_on_parallel_workers(vectors_dir: Path) -> None:
    lines = split_lines((vectors_dir / "faults.jsonl").read_bytes())
    assert audit_lines(lines, workers=2).verdicts == audit_lines(lines).verdicts


def test_key_seeds_give_the_listed_dids(vector_keys: dict, vectors_dir: Path) -> None:
    listed = json.loads((vectors_dir / "keys.json").read_text())
    for name, key in vector_keys.items():
        assert did_from_public_key(bytes(key.verify_key)) == listed[name]["did"]


@pytest.fixture(scope="module")
def merkle_vectors(vectors_dir: Path) -> dict:
    return json.loads((vectors_dir / "merkle.json").read_text())


@pytest.fixture(scope="module")
def tree(merkle_vectors: dict) -> merkle.MemoryTree:
    t = merkle.MemoryTree()
    for leaf in merkle_vectors["leaves"]:
        t.append(merkle.leaf_hash(bytes.fromhex(leaf)))
    return t


def test_roots_match_for_every_size(merkle_vectors: dict, tree: merkle.MemoryTree) -> None:
    assert len(merkle_vectors["roots"]) == len(merkle_vectors["leaves"]) + 1
    for size, root in merkle_vectors["roots"].items():
        assert tree.root(int(size)).hex() == root


def test_every_inclusion_proof_is_reproduced_and_verifies(
    merkle_vectors: dict, tree: merkle.MemoryTree
) -> None:
    for case in merkle_vectors["inclusion"]:
        proof = merkle.inclusion_proof(tree.get, case["index"], case["size"])
        assert [p.hex() for p in proof] == case["proof"]
        leaf = merkle.leaf_hash(bytes.fromhex(case["leaf"]))
        merkle.verify_inclusion(leaf, case["index"], case["size"], proof, tree.root(case["size"]))


def test_every_consistency_proof_is_reproduced_and_verifies(
    merkle_vectors: dict, tree: merkle.MemoryTree
) -> None:
    for case in merkle_vectors["consistency"]:
        s1, s2 = case["size1"], case["size2"]
        proof = merkle.consistency_proof(tree.get, s1, s2)
        assert [p.hex() for p in proof] == case["proof"]
        merkle.verify_consistency(s1, s2, proof, tree.root(s1), tree.root(s2))


def test_a_proof_with_one_wrong_hash_fails(merkle_vectors: dict, tree: merkle.MemoryTree) -> None:
    case = next(c for c in merkle_vectors["inclusion"] if c["proof"])
    proof = [bytes.fromhex(p) for p in case["proof"]]
    proof[0] = bytes(32)
    with pytest.raises(merkle.VerificationError):
        merkle.verify_inclusion(
            merkle.leaf_hash(bytes.fromhex(case["leaf"])),
            case["index"],
            case["size"],
            proof,
            tree.root(case["size"]),
        )


def test_the_checkpoint_note_verifies_and_states_the_root(merkle_vectors: dict) -> None:
    cp = merkle_vectors["checkpoint"]
    opened = open_checkpoint(cp["note"], cp["node"])
    assert opened.size == cp["size"]
    assert opened.root.hex() == cp["root"]


@pytest.mark.parametrize(
    "tamper",
    [
        lambda n: n.replace("\n29\n", "\n28\n"),
        lambda n: n.replace("icn/food-coop/", "icn/other-coop/"),
        lambda n: n[:-3] + ("A" if n[-3] != "A" else "B") + n[-2:],
    ],
    ids=["size", "origin", "signature"],
)
def test_a_tampered_checkpoint_note_does_not_verify(merkle_vectors: dict, tamper) -> None:
    cp = merkle_vectors["checkpoint"]
    with pytest.raises(CheckpointError):
        open_checkpoint(tamper(cp["note"]), cp["node"])


def test_a_note_signed_by_someone_else_is_refused(merkle_vectors: dict, vectors_dir: Path) -> None:
    other = json.loads((vectors_dir / "keys.json").read_text())["alice"]["did"]
    with pytest.raises(CheckpointError):
        open_checkpoint(merkle_vectors["checkpoint"]["note"], other)
