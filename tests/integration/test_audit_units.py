"""A store audit by units the workers read themselves gives the report event by event gave.

The workers read 1,024-leaf units of the log on their own connection, judge them
and hash their part of the tree (:mod:`icn.application.audit_units`); the caller
joins units and checks checkpoints at sizes inside a unit from the edges the
workers hand back. These tests build a log of three units (two whole, one
short) with checkpoints inside units and on their boundaries, and hold the
audit, inline and in worker processes, to the report of the one-event-at-a-time
audit, on an intact store and on each kind of damage: a stored tree node inside
a unit and above one, a changed event, a leaf hash that moves every later root,
and a missing leaf.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from nacl.signing import SigningKey
from sqlalchemy import delete, select, update
from support.coops import CoopScript, sample_log
from support.tampering import tamper

from icn.application.append import AppendEvents
from icn.application.audit import StoreAudit, _audit_events, audit_store
from icn.application.audit_units import UNIT
from icn.application.checkpoints import IssueCheckpoint
from icn.application.parallel import InlineVerifier, ProcessVerifier
from icn.infrastructure.store import schema
from icn.infrastructure.store.event_store import SqlEventStore
from icn.infrastructure.store.reads import stored_events
from icn.infrastructure.store.wire_packing import unpack

COOP = "demo"
CHECKPOINTS_AT = [500, UNIT, 2 * UNIT - 10, 2 * UNIT]
"""Sizes at which a checkpoint is issued: inside a unit, on a boundary, just before one."""
SIZE = 2 * UNIT + 150


def _build(store: SqlEventStore, clock: Callable[[], int]) -> str:
    """The log of :data:`SIZE` events with the checkpoints; returns the node's DID."""
    events = [e.wire_bytes() for e in sample_log(CoopScript(), payments=SIZE)]
    append = AppendEvents(store, clock)
    issue = IssueCheckpoint(store, append, SigningKey.generate(), clock)
    taken = 0
    for at in [*CHECKPOINTS_AT, SIZE]:
        want = at - store.tree_size(COOP)
        outcomes = append.append(events[taken : taken + want])
        assert all(o.verdict == "ok" for o in outcomes)
        taken += want
        if at != SIZE:
            issue.issue(COOP)
    assert store.tree_size(COOP) == SIZE
    return issue.node_did


def _audits(store: SqlEventStore, node: str) -> StoreAudit:
    """The audit by units inline and in two worker processes, checked equal to the audit
    one event at a time; that report."""
    reference = _audit_events(store, COOP, node, InlineVerifier(), None)
    assert audit_store(store, COOP, node) == reference
    processes = ProcessVerifier(2, caller_verifies=False)
    try:
        assert audit_store(store, COOP, node, verifier=processes) == reference
    finally:
        processes.close()
    return reference


def _leaf(store: SqlEventStore, leaf: int, **values: object) -> None:
    e = schema.log_entries
    tamper(store, update(e).where(e.c.coop == COOP, e.c.leaf_index == leaf).values(**values))


@pytest.mark.slow
def test_audit_by_units_reports_what_the_audit_by_events_does(
    store: SqlEventStore, clock: Callable[[], int]
) -> None:
    node = _build(store, clock)
    intact = _audits(store, node)
    assert intact.passed and intact.stored_tree_matches and intact.size == SIZE
    assert [(c.size, c.matches) for c in intact.checkpoints] == [(s, True) for s in CHECKPOINTS_AT]

    # A stored node inside a unit, then one above a unit (in its last leaf's row).
    e = schema.log_entries
    query = select(e.c.leaf_index, e.c.nodes).where(
        e.c.coop == COOP, e.c.leaf_index.in_([1500, 2 * UNIT - 1])
    )
    with store.engine.connect() as conn:
        nodes = {row.leaf_index: bytes(row.nodes) for row in conn.execute(query)}
    assert len(nodes[2 * UNIT - 1]) == 12 * 32  # levels 0-10 its own, 11 above the unit
    for leaf in (1500, 2 * UNIT - 1):
        _leaf(store, leaf, nodes=nodes[leaf][:-1] + b"\xff")
        damaged = _audits(store, node)
        assert not damaged.stored_tree_matches and not damaged.passed
        assert damaged.root == intact.root and damaged.problem_count == 0
        _leaf(store, leaf, nodes=nodes[leaf])
    assert _audits(store, node).passed

    # A changed event is reported at its leaf (and its author's later events after it).
    entry = next(store.entries(COOP, 1600, 1601))
    changed = entry.wire.replace(b'"memo":"job', b'"memo":"jab')
    with store.engine.connect() as conn:
        rows = conn.execute(select(stored_events.c.originator_id,
            stored_events.c.originator_version, stored_events.c.state)).all()  # fmt: skip
    key = next((r[0], r[1]) for r in rows if unpack(bytes(r[2])) == entry.wire)
    s = stored_events.c
    tamper(store, update(stored_events).where(s.originator_id == key[0],
        s.originator_version == key[1]).values(state=changed))  # fmt: skip
    damaged = _audits(store, node)
    assert (damaged.problems[0].leaf, damaged.problems[0].event_id) == (1600, entry.event_id)
    assert damaged.stored_tree_matches and not damaged.passed
    tamper(store, update(stored_events).where(s.originator_id == key[0],
        s.originator_version == key[1]).values(state=entry.wire))  # fmt: skip

    # A leaf's id changed in the log: every root from there on differs from the checkpoints'.
    first = next(store.entries(COOP, 100, 101))
    _leaf(store, 100, event_id="00" * 32)
    damaged = _audits(store, node)
    assert [c.matches for c in damaged.checkpoints] == [False] * len(CHECKPOINTS_AT)
    assert not damaged.stored_tree_matches and damaged.root != intact.root
    _leaf(store, 100, event_id=first.event_id)

    # A leaf missing from the log: the units are not whole, the audit goes event by event.
    tamper(store, delete(e).where(e.c.coop == COOP, e.c.leaf_index == 1700))
    damaged = _audits(store, node)
    assert not damaged.stored_tree_matches and not damaged.passed
