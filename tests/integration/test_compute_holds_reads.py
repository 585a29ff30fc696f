"""Holds on the read side, and tasks nobody answers, on a real store (SQLite and PostgreSQL).

The balances document and the limit's terms show what a task holds and what is
left as the write path judges it (one function over the same records); the holds
read model lists the open holds, is rebuilt by replay and compared; the coop's
duty round re-places a stalled executor past the placement's deadline and
expires the task (hold released) past the final one, as two nodes keeping the
coop's key sign alike; once an answer is revealed it places nobody: it drops
the stalled and the answers in settle the task.
"""

from __future__ import annotations

from pathlib import Path

from support.compute_node import Node, second_store
from support.compute_story import (
    EXECUTORS,
    answer,
    commit,
    name_of,
    prepare,
    record,
    reveal,
    submit,
)

from icn.application.coop_view import decode_stored
from icn.domain.compute import deadlines
from icn.domain.events.envelope import inspect
from icn.domain.ledger.holds import credit_room
from icn.infrastructure.store.event_store import SqlEventStore
from icn.infrastructure.store.read_models import ReadSide
from icn.projections import ledger_views as views


def _hours(side: ReadSide, node: Node, who: str) -> views.AccountDetail:
    side.catch_up("demo")
    doc = views.account_balances(side.models, "demo", node.s.did(who), node.now)
    return doc.accounts["hours"]


def _written(node: Node, who: str) -> tuple[int, int, int]:
    """(held, available, spendable) as the write path's own view computes them."""
    view = node.state
    coop, member = view.coop("demo"), view.member("demo", node.s.did(who))
    assert coop is not None and member is not None
    room = credit_room(view, coop, member, "hours", node.now)
    return room.held, room.available, room.spendable


def test_the_read_side_shows_what_is_held_and_what_is_left_as_the_write_path_judges(
    store: SqlEventStore,
) -> None:
    node = Node(store)
    prepare(node)
    side = ReadSide(store)
    try:
        before = _hours(side, node, "bob")
        assert (before.held, before.holds, before.available) == (0, [], 10_000)
        first, second = submit(node, max_fee=2_500), submit(node, max_fee=4_000)
        node.ok(first, second)
        bob = _hours(side, node, "bob")
        assert (bob.balance, bob.held, bob.held_display) == (0, 6_500, "65.00")
        assert (bob.credit_used, bob.credit_limit, bob.available) == (6_500, 10_000, 3_500)
        assert (bob.spendable, bob.available_display) == (3_500, "35.00")
        assert [(h.task, h.amount) for h in bob.holds] == [(first.id, 2_500), (second.id, 4_000)]
        assert (bob.held, bob.available, bob.spendable) == _written(node, "bob")
        limit = views.account_limit(side.models, "demo", node.s.did("bob"), "hours", node.now)
        assert (limit.held, limit.used, limit.available, limit.spendable) == (
            6_500, 6_500, 3_500, 3_500,
        )  # fmt: skip
        assert limit.display["held"] == "65.00"
        # what is shown as spendable is exactly what the next payment may take
        over = node.s.pay("bob", "carol", 3_501, advance=False)
        refused = node.append.append_inspected([inspect(over.wire_bytes())])
        assert [o.code for o in refused] == ["credit-limit-exceeded"]
        node.ok(node.s.pay("bob", "carol", 3_500))
        bob = _hours(side, node, "bob")
        assert (bob.balance, bob.held, bob.available, bob.spendable) == (-3_500, 6_500, 0, 0)
        # the first task runs out of time: its hold is released, on both sides
        t = record(node, first.id)
        node.now = deadlines.expires_ms(t)
        expired = [e for e in node.run() if e.type == "compute.TaskExpired"]
        assert [e.body["task"] for e in expired] == [first.id, second.id]  # submitted alike
        bob = _hours(side, node, "bob")
        assert [h.task for h in bob.holds] == [] and bob.held == 0
        assert (bob.held, bob.available, bob.spendable) == _written(node, "bob")
        report = side.replay()
        assert report.identical, report
    finally:
        side.close()


def test_the_duty_round_re_places_a_stalled_executor_then_expires_the_task(
    store: SqlEventStore, tmp_path: Path
) -> None:
    a = Node(store)
    prepare(a)
    with second_store(tmp_path) as other:
        b = Node(other, a.s)
        event = submit(a, max_fee=40)
        a.ok(event)
        t = record(a, event.id)
        quick, slow, tie_breaker = (name_of(a, n) for n in t.assigned)
        a.ok(commit(a, event.id, quick, answer()))
        a.ok(commit(a, event.id, tie_breaker, answer()))
        a.now = deadlines.due_ms(t) - 1
        assert a.run() == []  # not due yet
        b.ok(*[decode_stored(w.wire) for w in store.entries("demo")])
        a.now = deadlines.due_ms(t) + 5_000
        b.now = a.now + 60_000  # its clock reads later: the deadline dates the event
        ours, theirs = a.run(), b.run()
        assert [e.type for e in ours] == ["compute.TaskReplaced"]
        assert [e.wire_bytes() for e in ours] == [e.wire_bytes() for e in theirs]
        assert ours[0].ts == deadlines.due_ms(t)
        again = record(a, event.id)
        assert again.dropped == (a.s.did(slow),) and again.replacements == 1
        fresh = name_of(a, again.assigned[2])
        assert fresh not in (quick, slow, tie_breaker) and fresh in EXECUTORS
        assert a.run() == []  # the new executor has its own deadline
        a.now = deadlines.expires_ms(again)
        ended = a.run()
        assert [e.type for e in ended] == ["compute.TaskExpired"]
        assert ended[0].ts == deadlines.expires_ms(again)
        done = record(a, event.id)
        assert (done.state, done.held, done.expiry) == ("expired", 0, ended[0].id)
        assert a.run() == []


def test_past_the_deadline_after_a_reveal_the_duty_drops_the_stalled_and_settles(
    store: SqlEventStore,
) -> None:
    a = Node(store)
    prepare(a)
    event = submit(a, max_fee=40)
    a.ok(event)
    t = record(a, event.id)
    first, slow, tie_breaker = (name_of(a, n) for n in t.assigned)
    for n in (first, slow, tie_breaker):
        a.ok(commit(a, event.id, n, answer()))
    for n in (first, tie_breaker):
        a.ok(reveal(a, event.id, n, answer()))
    a.now = deadlines.due_ms(t) + 5_000
    dropped = a.run()
    assert [e.type for e in dropped] == ["compute.TaskReplaced"]
    judged = record(a, event.id)
    assert (judged.state, judged.dropped, len(judged.assigned)) == ("agreed", (a.s.did(slow),), 2)
    settled = a.run()
    assert [e.type for e in settled] == ["ledger.EntryRecorded", "compute.TaskSettled"]
    assert (a.balance(first), a.balance(tie_breaker), a.balance(slow)) == (3, 3, 0)
