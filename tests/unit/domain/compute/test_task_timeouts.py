"""Tasks whose executors never answer: re-placed past the placement's deadline, expired
(hold released) past the final one, each judged from the log's trusted times alone."""

from __future__ import annotations

import msgspec
from support.compute_story import (
    EXECUTORS,
    answer,
    commit,
    held,
    name_of,
    record,
    reveal,
    run_all,
    settle,
    submit,
)
from support.rule_coop import Coop

from icn.domain.compute import deadlines
from icn.domain.compute.task_rules import load, running


def _replace(c: Coop, task_id: str, attempt: int, ts: int, who: str = "coop") -> object:
    body = {"task": task_id, "attempt": attempt}
    return c.s.event(who, "compute.TaskReplaced", body, ts=ts, advance=False)


def _expire(c: Coop, task_id: str, ts: int) -> object:
    return c.s.event("coop", "compute.TaskExpired", {"task": task_id}, ts=ts, advance=False)


def test_the_rule_of_deadlines_is_a_function_of_the_task_and_the_time(coop: Coop) -> None:
    event = submit(coop)
    coop.ok(event)
    t = record(coop, event.id)
    due = t.submitted_ms + deadlines.STEP_MS
    assert (deadlines.due_ms(t), deadlines.expires_ms(t)) == (
        due, t.submitted_ms + deadlines.FINAL_MS,
    )  # fmt: skip
    assert deadlines.stalled(t) == t.assigned  # nobody committed: every one is late
    assert deadlines.step(t, due - 1) is None
    assert deadlines.step(t, due) == deadlines.REPLACE
    assert deadlines.step(t, deadlines.expires_ms(t)) == deadlines.EXPIRE
    committed = msgspec.structs.replace(t, commitments=dict.fromkeys(t.assigned, "c"))
    assert deadlines.stalled(committed) == t.assigned  # all committed, none revealed
    one = msgspec.structs.replace(committed, answers={t.assigned[0]: None})
    assert deadlines.stalled(one) == t.assigned[1:]
    older = msgspec.structs.replace(t, due_ms=None)  # recorded before deadlines existed
    assert deadlines.due_ms(older) == due
    assert deadlines.step(msgspec.structs.replace(t, state="agreed"), due * 2) is None


def test_a_stalled_executor_is_replaced_by_one_never_placed_and_the_task_still_settles(
    coop: Coop,
) -> None:
    event = submit(coop, max_fee=40)
    coop.ok(event)
    t = record(coop, event.id)
    quick, slow, tie_breaker = (name_of(coop, n) for n in t.assigned)
    coop.ok(commit(coop, event.id, quick, answer()))
    coop.ok(commit(coop, event.id, tie_breaker, answer()))
    due = deadlines.due_ms(t)
    assert coop.refused(_replace(coop, event.id, 0, due - 1)) == "task-not-due"
    assert coop.refused(_replace(coop, event.id, 0, due, who="alice")) == "not-authorized"
    assert coop.refused(_replace(coop, event.id, 1, due)) == "task-not-due"  # no such round
    replaced = coop.s.event(
        "coop", "compute.TaskReplaced", {"task": event.id, "attempt": 0}, ts=due
    )
    coop.ok(replaced)
    after = record(coop, event.id)
    assert after.dropped == (coop.s.did(slow),)
    assert after.assigned[:2] == (coop.s.did(quick), coop.s.did(tie_breaker))
    fresh = name_of(coop, after.assigned[2])
    assert fresh not in (quick, slow, tie_breaker) and len(after.assigned) == 3
    assert set(after.commitments) == {coop.s.did(quick), coop.s.did(tie_breaker)}
    assert (after.replacements, after.due_ms) == (1, due + deadlines.STEP_MS)
    assert running(coop.state, coop.s.coop).tasks == {event.id: due + deadlines.STEP_MS}
    assert load(coop.state, coop.s.coop, coop.s.did(slow)).open == 0
    assert load(coop.state, coop.s.coop, coop.s.did(fresh)).open == 1
    assert held(coop, "bob") == 40  # re-placing moves no money
    # the dropped executor can no longer take part; the same round is not replayed
    assert coop.refused(commit(coop, event.id, slow, answer())) == "not-assigned"
    assert coop.refused(_replace(coop, event.id, 0, due + 1)) == "task-not-due"
    coop.ok(commit(coop, event.id, fresh, answer()))
    for n in (quick, fresh, tie_breaker):
        coop.ok(reveal(coop, event.id, n, answer()))
    assert record(coop, event.id).state == "agreed"
    assert event.id not in running(coop.state, coop.s.coop).tasks
    settle(coop, event.id)
    assert held(coop, "bob") == 0 and coop.balance(slow) == 0 and coop.balance(fresh) == 3


def test_a_task_nobody_answers_expires_and_releases_its_hold(coop: Coop) -> None:
    event = submit(coop, max_fee=9_000)
    coop.ok(event)
    t = record(coop, event.id)
    assert running(coop.state, coop.s.coop).tasks == {event.id: deadlines.due_ms(t)}
    end = deadlines.expires_ms(t)
    assert coop.refused(_expire(coop, event.id, end - 1)) == "task-not-due"
    assert coop.refused(_replace(coop, event.id, 0, end)) == "task-not-due"  # too late
    coop.ok(coop.s.event("coop", "compute.TaskExpired", {"task": event.id}, ts=end))
    done = record(coop, event.id)
    assert (done.state, done.held, done.fee) == ("expired", 0, 0)
    assert held(coop, "bob") == 0 and running(coop.state, coop.s.coop).tasks == {}
    assert all(load(coop.state, coop.s.coop, n).open == 0 for n in t.assigned)
    coop.ok(coop.s.pay("bob", "carol", 10_000))  # the whole limit is spendable again
    for late in (
        commit(coop, event.id, name_of(coop, t.assigned[0]), answer()),
        _expire(coop, event.id, end + 1),
        coop.s.event("coop", "compute.TaskSettled", {"task": event.id}, advance=False),
    ):
        assert coop.refused(late) in ("task-not-running", "task-not-settleable")


def test_answers_in_before_the_coop_acts_win(coop: Coop) -> None:
    event = submit(coop)
    coop.ok(event)
    t = record(coop, event.id)
    run_all(coop, event.id)
    assert coop.refused(_replace(coop, event.id, 0, deadlines.due_ms(t))) == "task-not-running"
    assert coop.refused(_expire(coop, event.id, deadlines.expires_ms(t))) == "task-not-running"


def test_with_too_few_executors_left_the_task_goes_on_with_fewer_then_waits(coop: Coop) -> None:
    event = submit(coop)
    coop.ok(event)
    t = record(coop, event.id)
    first = name_of(coop, t.assigned[0])
    coop.ok(commit(coop, event.id, first, answer()))
    due = deadlines.due_ms(t)
    coop.ok(coop.s.event("coop", "compute.TaskReplaced", {"task": event.id, "attempt": 0}, ts=due))
    t = record(coop, event.id)
    # two stalled, one executor free: the task goes on with its two replicas, no tie-breaker
    assert (len(t.assigned), len(t.dropped)) == (2, 2)
    assert len(set(t.assigned + t.dropped)) == len(EXECUTORS)
    again = deadlines.due_ms(t)
    assert coop.refused(_replace(coop, event.id, 1, again)) == "no-executors"
    coop.ok(
        coop.s.event("coop", "compute.TaskExpired", {"task": event.id}, ts=deadlines.expires_ms(t))
    )
    assert held(coop, "bob") == 0


def test_once_an_answer_is_revealed_nobody_is_placed_the_stalled_are_dropped_and_judged(
    coop: Coop,
) -> None:
    """Commit–reveal stops a late-placed executor: every answer judged was committed
    before the first reveal, so no executor placed later could have copied one."""
    event = submit(coop, max_fee=40)
    coop.ok(event)
    t = record(coop, event.id)
    a, b, tie_breaker = (name_of(coop, n) for n in t.assigned)
    free = next(n for n in EXECUTORS if n not in (a, b, tie_breaker))
    for n in (a, b, tie_breaker):
        coop.ok(commit(coop, event.id, n, answer()))
    coop.ok(reveal(coop, event.id, a, answer()))
    coop.ok(reveal(coop, event.id, tie_breaker, answer()))
    # b sits on its reveal; the free executor is never placed: it could copy what a revealed
    assert coop.refused(commit(coop, event.id, free, answer())) == "not-assigned"
    due = deadlines.due_ms(t)
    assert deadlines.stalled(record(coop, event.id)) == (coop.s.did(b),)
    coop.ok(coop.s.event("coop", "compute.TaskReplaced", {"task": event.id, "attempt": 0}, ts=due))
    after = record(coop, event.id)
    assert after.dropped == (coop.s.did(b),) and coop.s.did(free) not in after.assigned
    assert (after.state, len(after.agreeing), after.dissenting) == ("agreed", 2, ())
    assert coop.refused(reveal(coop, event.id, b, answer())) == "not-assigned"
    assert load(coop.state, coop.s.coop, coop.s.did(b)).open == 0
    settle(coop, event.id)
    assert (coop.balance(a), coop.balance(tie_breaker), coop.balance(b)) == (3, 3, 0)


def test_a_lone_revealed_answer_is_not_enough_when_the_rest_stall(coop: Coop) -> None:
    event = submit(coop)
    coop.ok(event)
    t = record(coop, event.id)
    names = [name_of(coop, n) for n in t.assigned]
    for n in names:
        coop.ok(commit(coop, event.id, n, answer()))
    coop.ok(reveal(coop, event.id, names[0], answer()))
    due = deadlines.due_ms(t)
    coop.ok(coop.s.event("coop", "compute.TaskReplaced", {"task": event.id, "attempt": 0}, ts=due))
    after = record(coop, event.id)
    assert (after.state, after.assigned) == ("unresolved", (coop.s.did(names[0]),))
    settle(coop, event.id)
    assert record(coop, event.id).fee == 0 and held(coop, "bob") == 0
