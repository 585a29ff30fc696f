"""Compute tasks through the rules: hold, placement, commit–reveal, agreement, settlement."""

from __future__ import annotations

import base64

import msgspec
import pytest
from support.compute_story import (
    EXECUTORS,
    answer,
    commit,
    compute_coop,
    held,
    name_of,
    record,
    reveal,
    run_all,
    settle,
    submit,
)
from support.rule_coop import Coop
from unit.domain.governance.story import Gov

from icn.domain.compute.abi import MAX_INPUT_BYTES
from icn.domain.compute.placement import tie_break
from icn.domain.compute.results import output_hash
from icn.domain.compute.task_rules import dispute_id, load, settlements


def _balances(c: Coop) -> dict[str, int]:
    names = ["alice", "bob", "carol", "node-1", "node-2", "node-3", "node-4"]
    return {n: c.balance(n) for n in names}


def test_a_task_holds_its_max_fee_and_is_placed_on_different_executors(coop: Coop) -> None:
    event = submit(coop, max_fee=9_000)
    coop.ok(event)
    t = record(coop, event.id)
    assert held(coop, "bob") == 9_000
    assert len(set(t.assigned)) == 3  # two replicas and the tie-breaker, placed at once
    assert t.state == "running"
    # the held credit is not spendable: 10,000 of limit, 9,000 held
    assert coop.refused(coop.s.pay("bob", "carol", 1_001, advance=False)) == (
        "credit-limit-exceeded"
    )
    coop.ok(coop.s.pay("bob", "carol", 1_000))
    assert coop.refused(submit(coop, max_fee=1, advance=False)) == "credit-limit-exceeded"


def test_placement_is_decided_by_the_log_alone(coop: Coop) -> None:
    event = submit(coop)
    coop.ok(event)
    # equal trust (none yet), economics and locality: the larger CPU wins, then the tie-break
    t = record(coop, event.id)
    assert [name_of(coop, n) for n in t.assigned] == ["node-4", "node-3", "node-2"]
    other = compute_coop()
    again = submit(other)
    other.ok(again)
    assert record(other, again.id).assigned == t.assigned
    assert tie_break(event.id, t.assigned[0]) != tie_break(event.id, t.assigned[1])


def test_agreeing_executors_are_paid_from_the_hold_and_the_rest_released(coop: Coop) -> None:
    event = submit(coop, max_fee=40)
    coop.ok(event)
    run_all(coop, event.id)
    t = record(coop, event.id)
    assert t.state == "agreed"
    assert settlements(coop.state, coop.s.coop).ids == (event.id,)
    settle(coop, event.id)
    t = record(coop, event.id)
    # 25,000 fuel at 10,000 fuel per unit: 3 units each
    assert (t.state, t.fee, t.held) == ("settled", 3, 0)
    assert held(coop, "bob") == 0
    balances = _balances(coop)
    assert balances["bob"] == -9
    assert {name_of(coop, n): balances[name_of(coop, n)] for n in t.assigned} == {
        name_of(coop, n): 3 for n in t.assigned
    }
    assert sum(balances.values()) == 0
    assert settlements(coop.state, coop.s.coop).ids == ()
    again = coop.s.event("coop", "compute.TaskSettled", {"task": event.id}, advance=False)
    assert coop.refused(again) == "task-not-settleable"


def test_fees_never_exceed_the_max_fee_and_out_of_fuel_is_charged_in_full(coop: Coop) -> None:
    event = submit(coop, max_fee=7, fuel_limit=100_000)
    coop.ok(event)
    t = record(coop, event.id)
    spent = answer(b"", fuel=100_000, outcome="out-of-fuel")
    for n in t.assigned:
        coop.ok(commit(coop, event.id, name_of(coop, n), spent))
    for n in t.assigned:
        coop.ok(reveal(coop, event.id, name_of(coop, n), spent, b""))
    settle(coop, event.id)
    # 100,000 fuel = 10 units each, capped at 7 // 3 = 2 each; 1 of the hold released
    assert record(coop, event.id).fee == 2
    assert coop.balance("bob") == -6
    assert held(coop, "bob") == 0


def test_a_lying_executor_is_outvoted_unpaid_disputed_and_left_out(coop: Coop) -> None:
    event = submit(coop)
    coop.ok(event)
    liar = name_of(coop, record(coop, event.id).assigned[0])
    run_all(coop, event.id, {liar: b"lie"})
    t = record(coop, event.id)
    assert len(t.assigned) == 3
    assert t.state == "agreed"
    assert [name_of(coop, n) for n in t.dissenting] == [liar]
    settled = settle(coop, event.id)[-1]
    assert coop.balance(liar) == 0
    assert sum(_balances(coop).values()) == 0
    # the coop's DID opened a dispute about the outvoted answer, in the ledger's vocabulary
    dispute = coop.state.dispute(coop.s.coop, dispute_id(settled.id, coop.s.did(liar)))
    assert dispute is not None
    assert (dispute.task, dispute.entry, dispute.status) == (event.id, event.id, "filed")
    assert (dispute.filed_by, dispute.counterparty) == (coop.s.coop_did, coop.s.did(liar))
    assert (dispute.amount, dispute.filed_ms) == (0, t.judged_ms)
    assert "lie" not in dispute.reason and output_hash(b"lie") in dispute.reason
    # and the policy's consequence: left out of placement for a day of trusted time
    ld = load(coop.state, coop.s.coop, coop.s.did(liar))
    assert (ld.dissents, ld.excluded_until_ms) == (1, t.judged_ms + 86_400_000)
    nxt = submit(coop)
    coop.ok(nxt)
    assert coop.s.did(liar) not in record(coop, nxt.id).assigned
    later = coop.s.event("bob", "compute.TaskSubmitted", nxt.body, ts=ld.excluded_until_ms)
    coop.ok(later)
    assert coop.s.did(liar) in record(coop, later.id).assigned
    # the liar answers; a money-moving ruling is refused (nothing moved), dismissal is not
    did = dispute.id
    answered = {"dispute": did, "response": "my wasmtime differs"}
    coop.ok(coop.s.event(liar, "ledger.DisputeAnswered", answered))
    refund = {"dispute": did, "outcome": "reversed"}
    wrong = coop.s.event("alice", "ledger.DisputeResolved", refund, advance=False)
    assert coop.refused(wrong) == "invalid-outcome"
    coop.ok(
        coop.s.event("alice", "ledger.DisputeResolved", {"dispute": did, "outcome": "dismissed"})
    )
    closed = coop.state.dispute(coop.s.coop, did)
    assert closed is not None and closed.status == "resolved"


def test_dismissing_a_dissent_dispute_lifts_the_exclusion_from_that_position(
    coop: Coop,
) -> None:
    def placed(liar: str) -> tuple[str, bool]:
        nxt = submit(coop)
        coop.ok(nxt)
        return nxt.id, coop.s.did(liar) in record(coop, nxt.id).assigned

    def outvote(task: str, liar: str) -> str:
        run_all(coop, task, {liar: b"lie"})
        return dispute_id(settle(coop, task)[-1].id, coop.s.did(liar))

    found = coop.state.coop(coop.s.coop)
    assert found is not None
    policy = msgspec.to_builtins(found.policy)  # a month: longer than a proposal takes
    policy["compute"]["dissent_exclusion_seconds"] = 30 * 86_400
    coop.ok(coop.s.event("coop", "coop.PolicyChanged", {"policy": policy}))
    event = submit(coop)
    coop.ok(event)
    liar = name_of(coop, record(coop, event.id).assigned[0])
    first = outvote(event.id, liar)
    assert not placed(liar)[1]
    dismissed = {"dispute": first, "outcome": "dismissed"}
    coop.ok(coop.s.event("alice", "ledger.DisputeResolved", dismissed))
    task, taken = placed(liar)
    assert taken  # from the dismissal on, well within the day it was left out for
    second = outvote(task, liar)  # outvoted again: a second exclusion, a second dispute
    ld = load(coop.state, coop.s.coop, coop.s.did(liar))
    assert [d for d, _ in ld.exclusions] == [first, second]
    assert not placed(liar)[1]  # the first is dismissed, the second still keeps it out
    assign = {"dispute": second, "mediator": coop.s.did("carol")}
    coop.ok(coop.s.event("alice", "ledger.MediatorAssigned", assign))
    up = {"dispute": second, "outcome": "escalated"}
    coop.ok(coop.s.event("carol", "ledger.DisputeResolved", up))
    assert not placed(liar)[1]  # escalated is not dismissed
    gov = Gov(coop)
    p = gov.propose(action={"kind": "escalated-dispute", "dispute": second, "ruling": "dismissed"})
    gov.run(p, *(gov.vote(v, p.id) for v in ["alice", "bob", "carol", *EXECUTORS]))
    gov.run(gov.close(p.id))
    ruled = coop.s.event(
        "coop",
        "ledger.DisputeResolved",
        {"dispute": second, "outcome": "dismissed", "proposal": p.id},
    )
    coop.ok(ruled)
    assert ruled.ts < ld.excluded_until_ms
    assert placed(liar)[1]  # the proposal's ruling lifts it too


def test_an_escalated_dissent_dispute_is_ruled_by_a_proposal_that_only_dismisses(
    coop: Coop,
) -> None:
    event = submit(coop)
    coop.ok(event)
    liar = name_of(coop, record(coop, event.id).assigned[0])
    run_all(coop, event.id, {liar: b"lie"})
    settled = settle(coop, event.id)[-1]
    did = dispute_id(settled.id, coop.s.did(liar))
    assign = {"dispute": did, "mediator": coop.s.did("carol")}
    coop.ok(coop.s.event("alice", "ledger.MediatorAssigned", assign))
    up = {"dispute": did, "outcome": "escalated"}
    coop.ok(coop.s.event("carol", "ledger.DisputeResolved", up))
    gov = Gov(coop)
    refund = {"kind": "escalated-dispute", "dispute": did, "ruling": "reversed"}
    assert coop.refused(gov.propose(action=refund, advance=False)) == "invalid-action"
    dismiss = {"kind": "escalated-dispute", "dispute": did, "ruling": "dismissed"}
    p = gov.propose(action=dismiss)
    voters = ["alice", "bob", "carol", *EXECUTORS]
    gov.run(p, *(gov.vote(v, p.id) for v in voters))
    gov.run(gov.close(p.id))
    ruled = {"dispute": did, "outcome": "dismissed", "proposal": p.id}
    coop.ok(coop.s.event("coop", "ledger.DisputeResolved", ruled))
    closed = coop.state.dispute(coop.s.coop, did)
    assert closed is not None and (closed.status, closed.outcome) == ("resolved", "dismissed")


def test_the_dissent_consequence_is_the_coop_s_policy(coop: Coop) -> None:
    found = coop.state.coop(coop.s.coop)
    assert found is not None
    policy = msgspec.to_builtins(found.policy)
    policy["compute"]["dissent_exclusion_seconds"] = 0
    coop.ok(coop.s.event("coop", "coop.PolicyChanged", {"policy": policy}))
    event = submit(coop)
    coop.ok(event)
    liar = name_of(coop, record(coop, event.id).assigned[0])
    run_all(coop, event.id, {liar: b"lie"})
    settled = settle(coop, event.id)[-1]
    assert coop.state.dispute(coop.s.coop, dispute_id(settled.id, coop.s.did(liar))) is not None
    nxt = submit(coop)
    coop.ok(nxt)
    assert coop.s.did(liar) in record(coop, nxt.id).assigned  # disputed, not left out


def test_no_majority_leaves_the_task_unresolved_paid_to_nobody(coop: Coop) -> None:
    event = submit(coop, replicas=1)
    coop.ok(event)
    t = record(coop, event.id)
    first = name_of(coop, t.assigned[0])
    run_all(coop, event.id, {first: b"a"})
    # one replica: one answer settles it at once
    assert record(coop, event.id).state == "agreed"
    event2 = submit(coop, replicas=2)
    coop.ok(event2)
    names = [name_of(coop, n) for n in record(coop, event2.id).assigned]
    outputs = {n: bytes([i]) for i, n in enumerate(["node-1", "node-2", "node-3", "node-4"])}
    run_all(coop, event2.id, outputs)
    t2 = record(coop, event2.id)
    assert len(t2.assigned) == 3  # nobody is placed after a reveal: three different answers
    assert set(names) == {name_of(coop, n) for n in t2.assigned}
    assert (t2.state, len(t2.dissenting)) == ("unresolved", 3)
    settle(coop, event2.id)
    assert record(coop, event2.id).fee == 0
    assert held(coop, "bob") == 40  # the first task is not settled yet


def test_reveals_wait_for_every_commitment_and_open_only_their_own(coop: Coop) -> None:
    event = submit(coop)
    coop.ok(event)
    a, b, tie_breaker = (name_of(coop, n) for n in record(coop, event.id).assigned)
    honest = answer()
    first = commit(coop, event.id, a, honest)
    coop.ok(first)
    assert coop.refused(commit(coop, event.id, a, honest)) == "already-committed"
    assert coop.refused(reveal(coop, event.id, a, honest)) == "commitments-pending"
    # b copies a's commitment: it binds a, so b cannot open it
    copied = coop.s.event(
        b, "compute.ResultCommitted", {"task": event.id, "commitment": first.body["commitment"]}
    )
    coop.ok(copied)
    assert coop.refused(reveal(coop, event.id, a, honest)) == "commitments-pending"
    coop.ok(commit(coop, event.id, tie_breaker, honest))
    assert coop.refused(reveal(coop, event.id, b, honest)) == "reveal-mismatch"
    assert coop.refused(reveal(coop, event.id, a, honest, salt="cd" * 16)) == "reveal-mismatch"
    assert coop.refused(reveal(coop, event.id, a, honest, b"other")) == "reveal-mismatch"
    coop.ok(reveal(coop, event.id, a, honest))
    assert coop.refused(reveal(coop, event.id, a, honest)) == "already-revealed"
    outsider = next(n for n in EXECUTORS if n not in (a, b, tie_breaker))
    assert coop.refused(commit(coop, event.id, outsider, honest)) == "not-assigned"


def test_commit_reveal_stops_a_copying_executor_the_tie_breaker_included(coop: Coop) -> None:
    """The tie-breaker decides a disagreement, but committed before either answer was
    revealed: seeing them changes nothing, and nobody else is placed to copy one."""
    event = submit(coop)
    coop.ok(event)
    a, b, tie_breaker = (name_of(coop, n) for n in record(coop, event.id).assigned)
    right, wrong = answer(b"out"), answer(b"lie")
    coop.ok(commit(coop, event.id, a, right))
    coop.ok(commit(coop, event.id, b, wrong))
    assert coop.refused(reveal(coop, event.id, b, wrong, b"lie")) == "commitments-pending"
    coop.ok(commit(coop, event.id, tie_breaker, right))
    coop.ok(reveal(coop, event.id, a, right))
    coop.ok(reveal(coop, event.id, b, wrong, b"lie"))
    # both answers are public now: the tie-breaker cannot switch to b's, nor commit again
    assert coop.refused(reveal(coop, event.id, tie_breaker, wrong, b"lie")) == "reveal-mismatch"
    assert coop.refused(commit(coop, event.id, tie_breaker, wrong)) == "already-committed"
    outsider = next(n for n in EXECUTORS if n not in (a, b, tie_breaker))
    assert coop.refused(commit(coop, event.id, outsider, wrong)) == "not-assigned"
    assert len(record(coop, event.id).assigned) == 3  # nobody placed after the reveals
    coop.ok(reveal(coop, event.id, tie_breaker, right))
    t = record(coop, event.id)
    assert (t.state, t.output_hash, t.dissenting) == ("agreed", right.output_hash, (coop.s.did(b),))


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"module": "ef" * 32}, "unknown-module"),
        ({"currency": "bread"}, "unknown-currency"),
        ({"input": base64.b64encode(b"x" * (MAX_INPUT_BYTES + 1)).decode()}, "input-too-large"),
        ({"input": base64.b64encode(b"x" * (MAX_INPUT_BYTES + 3)).decode()}, "invalid-body"),
        ({"input": "not base64!"}, "invalid-body"),
        ({"input": base64.b64encode(b"x" * 32_767).decode() + "=="}, "invalid-body"),
        ({"replicas": 4}, "invalid-body"),
        ({"max_fee": -1}, "invalid-body"),
        ({"fuel_limit": 0}, "invalid-body"),
        ({"max_fee": 10_001}, "credit-limit-exceeded"),
    ],
)
def test_a_bad_task_is_refused(coop: Coop, body: dict[str, object], code: str) -> None:
    assert coop.refused(submit(coop, advance=False, **body)) == code
    assert held(coop, "bob") == 0


def test_too_few_executors_is_refused() -> None:
    c = compute_coop()
    c.ok(submit(c, replicas=3))
    for n in ["node-1", "node-2", "node-3"]:
        c.ok(c.s.event("alice", "coop.MemberSuspended", {"member": c.s.did(n), "reason": "x"}))
    assert c.refused(submit(c, advance=False, replicas=2)) == "no-executors"


def test_only_the_coop_settles_and_only_with_the_right_payment(coop: Coop) -> None:
    event = submit(coop)
    coop.ok(event)
    run_all(coop, event.id)
    by_member = coop.s.event("alice", "compute.TaskSettled", {"task": event.id}, advance=False)
    assert coop.refused(by_member) == "not-authorized"
    short = coop.s.event("coop", "compute.TaskSettled", {"task": event.id}, advance=False)
    assert coop.refused(short) == "task-payment-mismatch"
    t = record(coop, event.id)
    wrong = {
        "transactions": [
            {"from": t.submitter, "to": n, "amount": 4, "currency": "hours"} for n in t.agreeing
        ]
    }
    entry = coop.s.event("coop", "ledger.EntryRecorded", wrong)
    coop.ok(entry)
    body = {"task": event.id, "effects": [entry.id]}
    bad = coop.s.event("coop", "compute.TaskSettled", body, advance=False)
    assert coop.refused(bad) == "task-payment-mismatch"


def test_a_frozen_member_cannot_submit_a_task(coop: Coop) -> None:
    freeze = {"member": coop.s.did("bob"), "reason": "audit"}
    coop.ok(coop.s.event("alice", "ledger.AccountFrozen", freeze))
    assert coop.refused(submit(coop, advance=False)) == "account-frozen"
    assert held(coop, "bob") == 0
