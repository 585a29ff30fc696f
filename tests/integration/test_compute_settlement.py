"""Compute tasks on a real store: the coop's key settles each judged task once, in one batch
with the entry that pays it; two nodes keeping the key sign the same settlement."""

from __future__ import annotations

from pathlib import Path

import msgspec
from support.compute_node import Node, second_store
from support.compute_story import EXECUTORS, held, prepare, record, run_all, submit

from icn.application.compute_duties import ComputeDuties
from icn.application.compute_reads import view_of
from icn.application.coop_view import decode_stored
from icn.domain.compute.task_rules import dispute_id, load
from icn.infrastructure.store.event_store import SqlEventStore
from icn.infrastructure.store.read_models import ReadSide
from icn.projections import ledger_views as views


def test_a_judged_task_is_settled_once_by_the_duty_round(store: SqlEventStore) -> None:
    node = Node(store)
    prepare(node)
    event = submit(node, max_fee=40)
    node.ok(event)
    assert node.run() == []  # nothing judged yet
    run_all(node, event.id)
    signed = node.run()
    assert [e.type for e in signed] == ["ledger.EntryRecorded", "compute.TaskSettled"]
    assert signed[-1].body == {"task": event.id, "effects": [signed[0].id]}
    t = record(node, event.id)
    assert (t.state, t.fee, t.settlement) == ("settled", 3, signed[-1].id)
    assert held(node, "bob") == 0
    names = ["alice", "bob", "carol", *EXECUTORS]
    assert node.balance("bob") == -9  # two replicas and the tie-breaker, 3 each
    assert sum(node.balance(n) for n in names) == 0
    assert node.run() == []
    assert ComputeDuties(store, node.author).settle("demo", event.id, node.s.coop_key) == []


def test_two_nodes_keeping_the_coop_key_sign_the_same_settlement(
    store: SqlEventStore, tmp_path: Path
) -> None:
    a = Node(store)
    prepare(a)
    found = a.state.coop("demo")
    assert found is not None
    policy = msgspec.to_builtins(found.policy)
    policy["compute"] = {"fuel_per_credit": 5_000, "dissent_exclusion_seconds": 3_600}
    a.ok(a.s.event("coop", "coop.PolicyChanged", {"policy": policy}))
    with second_store(tmp_path) as other:
        b = Node(other, a.s)
        event = submit(a)
        a.ok(event)
        liar = next(n for n in EXECUTORS if a.s.did(n) == record(a, event.id).assigned[0])
        run_all(a, event.id, {liar: b"lie"})
        b.ok(*[decode_stored(w.wire) for w in store.entries("demo")])
        b.now = a.now + 60_000  # its clock reads later: the reveal's time dates the settlement
        ours, theirs = a.run(), b.run()
        assert [e.wire_bytes() for e in ours] == [e.wire_bytes() for e in theirs]
        assert [n for n in record(b, event.id).dissenting] == [a.s.did(liar)]
        assert b.balance(liar) == 0
        # outvoted, so disputed by the coop's DID and left out of placement, on both nodes
        dispute = dispute_id(ours[-1].id, a.s.did(liar))
        on_a, on_b = a.state.dispute("demo", dispute), b.state.dispute("demo", dispute)
        assert on_a is not None and on_a == on_b
        assert (on_a.task, on_a.counterparty, on_a.status) == (event.id, a.s.did(liar), "filed")
        t = record(b, event.id)
        assert view_of(t).disputes == [dispute]  # what `…/tasks/{id}` shows
        assert (t.fee, t.fuel_per_credit) == (5, 5_000)  # ⌈25,000 / 5,000⌉: the policy's price
        until = load(b.state, "demo", a.s.did(liar)).excluded_until_ms
        assert until == t.judged_ms + 3_600_000 == on_a.filed_ms + 3_600_000
        for node in (store, other):  # each node's read side lists it, and replays identical
            side = ReadSide(node)
            try:
                side.catch_up("demo")
                page = views.disputes(side.models, "demo", status=None, after=None, limit=10)
                listed = [(d.id, d.entry, d.task) for d in page.disputes]
                assert listed == [(dispute, event.id, event.id)]
                report = side.replay()
                assert report.identical, report.differences
            finally:
                side.close()
