"""A complete subtree appended whole is the same tree as its leaves appended one by one.

An audit's workers hash aligned units of the log and the caller appends each unit's
top as one node (:meth:`Frontier.append_subtree`); the nodes that closes above the
unit, the edge and every root after it must be exactly those of the leaf-by-leaf tree.
"""

from __future__ import annotations

import hashlib

import pytest

from icn.domain.log.merkle import Frontier, leaf_hash


def _leaves(n: int) -> list[bytes]:
    return [leaf_hash(hashlib.sha256(i.to_bytes(4, "big")).digest()) for i in range(n)]


@pytest.mark.parametrize("level", [0, 1, 3])
@pytest.mark.parametrize("units", [1, 2, 3, 5, 8])
def test_appending_a_subtree_whole_is_appending_its_leaves(level: int, units: int) -> None:
    span = 1 << level
    leaves = _leaves(span * units + 3)
    by_leaf, by_unit = Frontier(), Frontier()
    for u in range(units):
        last: list[tuple[int, int, bytes]] = []
        for leaf in leaves[u * span : (u + 1) * span]:
            last = by_leaf.append(leaf)
        own = Frontier()
        for leaf in leaves[u * span : (u + 1) * span]:
            own.append(leaf)
        (top,) = own.edge()
        assert by_unit.append_subtree(level, top) == [n for n in last if n[0] > level]
        assert (by_unit.size, by_unit.edge(), by_unit.root()) == (
            by_leaf.size,
            by_leaf.edge(),
            by_leaf.root(),
        )
    # A short last unit: the edge at its end is the tree's edge followed by its own.
    own = Frontier()
    for leaf in leaves[units * span :]:
        by_leaf.append(leaf)
        own.append(leaf)
    if span > 3:
        joined = Frontier(by_unit.size + own.size, by_unit.edge() + own.edge())
        assert joined.root() == by_leaf.root()


def test_a_subtree_must_start_where_one_of_its_size_can() -> None:
    tree = Frontier()
    tree.append(_leaves(1)[0])
    with pytest.raises(ValueError, match="cannot start"):
        tree.append_subtree(1, b"\0" * 32)
