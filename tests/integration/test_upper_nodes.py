"""Proofs and roots read their upper hashes (subtrees of 256 leaves and up) from
``log_upper_nodes``, on SQLite and PostgreSQL, and agree with the pure tree; a store made
before the table gets its rows once at open, and until then proofs are still right."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
from sqlalchemy import delete, select, update
from support.coops import CoopScript
from support.tampering import tamper, writer

from icn.application.append import AppendEvents
from icn.application.audit import audit_store
from icn.domain.coop.records import CreditPolicy, Policy
from icn.domain.log import merkle
from icn.infrastructure.store import schema
from icn.infrastructure.store.event_store import SqlEventStore
from icn.infrastructure.store.upper_nodes import FILLED, UPPER_META

COOP = "tall-coop"
LEAVES = 1_100
"""Past 1,024: four complete subtrees of level 8, two of level 9, one of level 10."""
UNLIMITED = Policy(credit={"hours": CreditPolicy(baseline=10**12, max_limit=10**12)})


def tall_log(store: SqlEventStore, clock: Callable[[], int]) -> merkle.MemoryTree:
    """``LEAVES`` events in one coop through the real write path; their pure tree."""
    script = CoopScript(COOP)
    members: dict[str, list[str]] = {n: [] for n in ("alice", "bob", "carol")}
    events = [script.found(members, policy=UNLIMITED)]
    rng = random.Random(8)
    while len(events) < LEAVES:
        payer, payee = rng.sample(sorted(members), 2)
        events.append(script.pay(payer, payee, rng.randint(1, 50)))
    append = AppendEvents(store, clock)
    tree = merkle.MemoryTree()
    for i in range(0, LEAVES, 97):
        batch = events[i : i + 97]
        outcomes = append.append([e.wire_bytes() for e in batch])
        assert [o.verdict for o in outcomes] == ["ok"] * len(batch), outcomes
        for e in batch:
            tree.append(merkle.leaf_hash(bytes.fromhex(e.id)))
    return tree


def upper_rows(store: SqlEventStore) -> list[tuple[int, bytes]]:
    u = schema.log_upper_nodes
    with store.engine.connect() as conn:
        rows = conn.execute(select(u.c.leaf_index, u.c.nodes).where(u.c.coop == COOP))
        return sorted((int(leaf), bytes(nodes)) for leaf, nodes in rows)


def expected_rows(tree: merkle.MemoryTree) -> list[tuple[int, bytes]]:
    """Every leaf that completes a level-8 subtree or higher, with those levels' hashes."""
    out = []
    for leaf in range(tree.size):
        levels = []
        level = schema.UPPER_LEVEL
        while (leaf + 1) % (1 << level) == 0:
            levels.append(tree.get(level, leaf >> level))
            level += 1
        if levels:
            out.append((leaf, b"".join(levels)))
    return out


def assert_proofs_match(store: SqlEventStore, tree: merkle.MemoryTree, seed: int) -> None:
    rng = random.Random(seed)
    sizes = [tree.size, 1_024, 1_023, 512, 257, 256, *(rng.randint(1, tree.size) for _ in range(8))]
    for size in sizes:
        assert store.root(COOP, size) == tree.root(size), size
        for index in {0, size - 1, rng.randrange(size), rng.randrange(size)}:
            proof = store.inclusion_proof(COOP, index, size)
            assert proof == merkle.inclusion_proof(tree.get, index, size), (index, size)
        size1 = rng.randint(0, size)
        proof = store.consistency_proof(COOP, size1, size)
        assert proof == merkle.consistency_proof(tree.get, size1, size), (size1, size)


def test_upper_hashes_are_written_with_their_leaf_and_serve_proofs_equal_to_the_pure_tree(
    store: SqlEventStore, clock: Callable[[], int]
) -> None:
    tree = tall_log(store, clock)
    assert upper_rows(store) == expected_rows(tree)
    assert [leaf for leaf, _ in upper_rows(store)] == [255, 511, 767, 1023]
    assert_proofs_match(store, tree, seed=1)


def test_a_store_made_before_the_table_is_filled_once_at_open_and_proves_right_meanwhile(
    store: SqlEventStore, open_store: Callable[[], SqlEventStore], clock: Callable[[], int]
) -> None:
    tree = tall_log(store, clock)
    assert store.get_meta(UPPER_META) == FILLED  # a new store is only noted
    # As the release before the table left it: no rows, no note.
    with writer(store.database.url) as conn:
        conn.execute(delete(schema.log_upper_nodes))
        conn.execute(delete(schema.node_meta).where(schema.node_meta.c.key == UPPER_META))
    assert upper_rows(store) == []
    assert_proofs_match(store, tree, seed=2)  # from log_entries alone

    reopened = open_store()  # create_tables, as a node's start does
    assert upper_rows(reopened) == expected_rows(tree)
    assert reopened.get_meta(UPPER_META) == FILLED
    assert_proofs_match(reopened, tree, seed=3)


def test_an_audit_of_the_store_fails_when_the_upper_copy_is_damaged(
    store: SqlEventStore, clock: Callable[[], int]
) -> None:
    tree = tall_log(store, clock)
    assert audit_store(store, COOP, None).stored_tree_matches
    u = schema.log_upper_nodes
    # Leaf 511's row holds levels 8 and 9; its first hash (leaves 256-511) is a sibling on
    # leaf 0's path. Leaf 1023's holds levels 8-10; its last (leaves 0-1023) is a sibling
    # on leaf 1050's path. The first lies inside the audit's first unit of 1,024 leaves,
    # the second above it.
    for leaf, index, at in ((511, 0, 0), (1023, 1050, 95)):
        kept = dict(upper_rows(store))[leaf]
        damaged = kept[:at] + bytes([kept[at] ^ 1]) + kept[at + 1 :]
        where = (u.c.coop == COOP) & (u.c.leaf_index == leaf)
        tamper(store, update(u).where(where).values(nodes=damaged))
        proof = store.inclusion_proof(COOP, index, LEAVES)  # read from the damaged copy
        with pytest.raises(merkle.VerificationError):
            merkle.verify_inclusion(tree.get(0, index), index, LEAVES, proof, tree.root())
        report = audit_store(store, COOP, None)
        assert not report.stored_tree_matches and not report.passed
        tamper(store, update(u).where(where).values(nodes=kept))
    assert audit_store(store, COOP, None).passed
