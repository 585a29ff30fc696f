"""Proofs verify for random tree sizes; a proof never verifies for the wrong leaf."""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from icn.domain.log import merkle

trees = st.integers(min_value=1, max_value=600)


def _tree(size: int) -> merkle.MemoryTree:
    t = merkle.MemoryTree()
    for i in range(size):
        t.append(merkle.leaf_hash(hashlib.sha256(i.to_bytes(8, "big")).digest()))
    return t


@settings(max_examples=150, deadline=None)
@given(size=trees, data=st.data())
def test_inclusion_proofs_verify_for_random_sizes(size: int, data: st.DataObject) -> None:
    t = _tree(size)
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    leaf = t.get(0, index)
    proof = merkle.inclusion_proof(t.get, index, size)
    assert len(proof) <= size.bit_length()
    merkle.verify_inclusion(leaf, index, size, proof, t.root())
    wrong = t.get(0, (index + 1) % size) if size > 1 else bytes(32)
    if wrong != leaf:
        try:
            merkle.verify_inclusion(wrong, index, size, proof, t.root())
        except merkle.VerificationError:
            pass
        else:
            raise AssertionError("a proof verified for the wrong leaf")


@settings(max_examples=150, deadline=None)
@given(size2=trees, data=st.data())
def test_consistency_proofs_verify_for_random_sizes(size2: int, data: st.DataObject) -> None:
    t = _tree(size2)
    size1 = data.draw(st.integers(min_value=0, max_value=size2))
    proof = merkle.consistency_proof(t.get, size1, size2)
    merkle.verify_consistency(size1, size2, proof, t.root(size1), t.root(size2))
    if 0 < size1 < size2:
        try:
            merkle.verify_consistency(size1, size2, proof, bytes(32), t.root(size2))
        except merkle.VerificationError:
            pass
        else:
            raise AssertionError("a consistency proof verified against a wrong first root")


@settings(max_examples=100, deadline=None)
@given(size=st.integers(min_value=0, max_value=2000))
def test_the_frontier_root_equals_the_full_recomputation(size: int) -> None:
    t = _tree(size)
    assert t.frontier.root() == merkle.root(t.get, size)
