"""The coop's compute policy: price and deadlines are policy keys, validated like every
other, changed by a ``change-policy`` proposal, and taken by a task when it is submitted."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from support.compute_story import answer, commit, record, reveal, run_all, settle, submit
from support.rule_coop import Coop
from unit.domain.governance.story import Gov

from icn.domain.compute import deadlines
from icn.domain.coop.records import DEFAULT_ENGINE, ComputePolicy


def _policy(coop: Coop, **compute: Any) -> dict[str, Any]:
    found = coop.state.coop(coop.s.coop)
    assert found is not None
    policy: dict[str, Any] = msgspec.to_builtins(found.policy)
    policy["compute"] = {**policy["compute"], **compute}
    return policy


def _changed_by_proposal(coop: Coop, **compute: Any) -> None:
    """alice proposes the change, the members vote yes, the coop's DID carries it out."""
    gov = Gov(coop)
    policy = _policy(coop, **compute)
    p = gov.propose(action={"kind": "change-policy", "policy": policy})
    voters = ["alice", "bob", "carol", "node-1", "node-2", "node-3", "node-4"]
    gov.run(p, *(gov.vote(v, p.id) for v in voters))
    gov.run(gov.close(p.id))
    assert gov.proposal(p.id).state == "accepted"
    forged = {"policy": _policy(coop, fuel_per_credit=1), "proposal": p.id}
    assert coop.refused(coop.s.event("coop", "coop.PolicyChanged", forged, advance=False)) == (
        "proposal-mismatch"
    )
    coop.ok(coop.s.event("coop", "coop.PolicyChanged", {"policy": policy, "proposal": p.id}))


def test_the_defaults_are_the_figures_tasks_had_before_they_were_policy() -> None:
    d = ComputePolicy()
    assert (d.fuel_per_credit, d.replace_after_seconds * 1000, d.expire_after_seconds * 1000) == (
        10_000, deadlines.STEP_MS, deadlines.FINAL_MS,
    )  # fmt: skip
    assert (deadlines.STEP_MS, deadlines.FINAL_MS) == (10 * 60 * 1000, 60 * 60 * 1000)


@pytest.mark.parametrize(
    ("compute", "code"),
    [
        ({"fuel_per_credit": 0}, "invalid-body"),
        ({"fuel_per_credit": "10"}, "invalid-body"),
        ({"fuel_per_credit": 2**53}, "invalid-body"),
        ({"replace_after_seconds": 59}, "invalid-body"),
        ({"expire_after_seconds": 604_801}, "invalid-body"),
        ({"dissent_exclusion_seconds": -1}, "invalid-body"),
        ({"replace_after_seconds": 1.5}, "invalid-body"),
        ({"gas_price": 3}, "invalid-body"),
        ({"replace_after_seconds": 7_200, "expire_after_seconds": 3_600}, "invalid-policy"),
        ({"engine": "wasmtime-50.0"}, "invalid-body"),
        ({"engine": "wasmtime-50.0.1-dev"}, "invalid-body"),
        ({"engine": "wasmer-4.0.0"}, "invalid-body"),
        ({"engine": "wasmtime-050.0.1"}, "invalid-body"),
        ({"engine": "wasmtime-12345.0.1"}, "invalid-body"),
        ({"engine": ""}, "invalid-body"),
        ({"engine": 50}, "invalid-body"),
        ({"engine": "wasmtime-50.0.1\n"}, "invalid-policy"),
    ],
)
def test_a_bad_compute_policy_is_refused(coop: Coop, compute: dict[str, Any], code: str) -> None:
    body = {"policy": _policy(coop, **compute)}
    assert coop.refused(coop.s.event("coop", "coop.PolicyChanged", body, advance=False)) == code
    gov = Gov(coop)
    proposal = gov.propose(
        action={"kind": "change-policy", "policy": body["policy"]}, advance=False
    )
    assert coop.refused(proposal) == code


def test_a_changed_policy_prices_and_times_tasks_submitted_after_it_not_before(
    coop: Coop,
) -> None:
    before = submit(coop, max_fee=40)
    coop.ok(before)
    _changed_by_proposal(
        coop, fuel_per_credit=1_000, replace_after_seconds=120, expire_after_seconds=900
    )
    after = submit(coop, max_fee=40)
    coop.ok(after)
    old, new = record(coop, before.id), record(coop, after.id)
    assert (old.fuel_per_credit, old.step_ms, old.final_ms) == (10_000, 600_000, 3_600_000)
    assert (new.fuel_per_credit, new.step_ms, new.final_ms) == (1_000, 120_000, 900_000)
    assert deadlines.due_ms(new) == new.submitted_ms + 120_000
    assert deadlines.expires_ms(new) == new.submitted_ms + 900_000
    assert deadlines.due_ms(old) == old.submitted_ms + 600_000
    for task_id in (before.id, after.id):
        run_all(coop, task_id)
        settle(coop, task_id)
    # 25,000 fuel: ⌈25,000 / 10,000⌉ = 3 each before, ⌈25,000 / 1,000⌉ = 25 capped at 40 // 3
    assert (record(coop, before.id).fee, record(coop, after.id).fee) == (3, 13)


def test_a_changed_engine_is_taken_by_tasks_submitted_after_it_not_before(coop: Coop) -> None:
    before = submit(coop)
    coop.ok(before)
    assert record(coop, before.id).engine == DEFAULT_ENGINE == ComputePolicy().engine
    _changed_by_proposal(coop, engine="wasmtime-51.0.0")
    after = submit(coop)
    coop.ok(after)
    assert (record(coop, before.id).engine, record(coop, after.id).engine) == (
        DEFAULT_ENGINE, "wasmtime-51.0.0",
    )  # fmt: skip
    found = coop.state.coop(coop.s.coop)
    assert found is not None and found.policy.compute.engine == "wasmtime-51.0.0"


def test_a_re_placement_takes_the_task_s_own_step(coop: Coop) -> None:
    _changed_by_proposal(coop, replace_after_seconds=120)
    event = submit(coop)
    coop.ok(event)
    t = record(coop, event.id)
    names = [n for n in ("node-1", "node-2", "node-3", "node-4") if coop.s.did(n) in t.assigned]
    coop.ok(commit(coop, event.id, names[0], answer()))
    due = deadlines.due_ms(t)
    body = {"task": event.id, "attempt": 0}
    early = coop.s.event("coop", "compute.TaskReplaced", body, ts=due - 1, advance=False)
    assert coop.refused(early) == "task-not-due"
    coop.ok(coop.s.event("coop", "compute.TaskReplaced", body, ts=due))
    assert record(coop, event.id).due_ms == due + 120_000
    # the first executor's reveal still waits for the others' commitments
    assert coop.refused(reveal(coop, event.id, names[0], answer())) == "commitments-pending"
