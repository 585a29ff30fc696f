"""The three example contracts of examples/contracts, run by the interpreter, results by hand."""

from __future__ import annotations

import json
from typing import Any

import pytest
from support.contract_host import TREASURY, DictHost

from icn.domain.contract.compile import deploy_check, execute
from icn.domain.contract.runtime import ContractError, Outcome
from icn.domain.refusals import Code
from tests.conftest import REPO_ROOT

A, B, C, E = "did:key:zAlice", "did:key:zBob", "did:key:zCarol", "did:key:zEnvelope"


def example(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(
        (REPO_ROOT / "examples" / "contracts" / f"{name}.json").read_text()
    )
    return doc


def run(doc: dict[str, Any], rule: str, args: dict[str, Any], h: DictHost, caller: str) -> Outcome:
    program = deploy_check(doc["code"], doc["capabilities"])
    return execute(
        program,
        rule,
        args,
        host=h,
        granted=frozenset(doc["capabilities"]),
        caller=caller,
        treasury=TREASURY,
        now=0,
        fuel_limit=doc["fuel_limit"],
    )


def moves(out: Outcome) -> list[tuple[str, str, int, str]]:
    return [(t.from_, t.to, t.amount, t.currency) for t in out.transfers]


def test_timebank_record_service() -> None:
    doc = example("timebank")
    h = DictHost(roles_of={A: (), B: ()}, limits={A: 2000})
    out = run(doc, "record_service", {"sender": A, "recipient": B, "hours": 3}, h, A)
    assert moves(out) == [(A, B, 300, "hours")]
    # requires 4 + 4, the caller check 4, the transfer 1 + 6 nodes + 30
    assert out.fuel == 49
    for args, caller, code in [
        ({"sender": A, "recipient": B, "hours": 0}, A, Code.REQUIREMENT_FAILED),
        ({"sender": A, "recipient": B, "hours": 25}, A, Code.REQUIREMENT_FAILED),
        ({"sender": A, "recipient": B, "hours": 3}, B, Code.REQUIREMENT_FAILED),
        ({"sender": A, "recipient": B, "hours": 21}, A, Code.CREDIT_LIMIT_EXCEEDED),
        ({"sender": A, "recipient": A, "hours": 1}, A, Code.SELF_PAYMENT),
    ]:
        with pytest.raises(ContractError) as caught:
            run(doc, "record_service", args, h, caller)
        assert caught.value.code == code


def test_monthly_dues_charge_every_member_with_room() -> None:
    doc = example("dues")
    assert doc["code"]["schedules"] == [{"rule": "charge", "every": "month", "day": 1}]
    h = DictHost(
        roles_of={A: (), B: (), C: ()},
        limits={A: 500, B: 500, C: 0},
        balances={(A, "hours"): 100},
    )
    out = run(doc, "charge", {}, h, TREASURY)
    # Carol has no room (balance 0, limit 0): she is skipped, not refused.
    assert moves(out) == [(A, TREASURY, 50, "hours"), (B, TREASURY, 50, "hours")]
    # caller check 4; each-member 1 + 10; per member 5 + the if (6 + read 20); 2 transfers x 35
    assert out.fuel == 4 + 11 + 3 * (5 + 26) + 2 * 35
    with pytest.raises(ContractError) as caught:
        run(doc, "charge", {}, h, A)
    assert caught.value.code == Code.REQUIREMENT_FAILED


def test_budget_envelope_spent_by_the_committee() -> None:
    doc = example("budget")
    doc["code"]["consts"]["envelope"]["value"] = E
    h = DictHost(
        roles_of={A: ("committee",), B: (), E: ()},
        balances={(E, "hours"): 1000},
    )
    out = run(doc, "spend", {"to": B, "amount": 300}, h, A)
    assert moves(out) == [(E, B, 300, "hours")]
    # has-role 3 + 10, two bounds 4 + 4, the envelope's balance 6 + 10, the transfer 35
    assert out.fuel == 72
    for args, caller in [
        ({"to": B, "amount": 300}, B),  # not on the committee
        ({"to": B, "amount": 1001}, A),  # more than the envelope holds
        ({"to": B, "amount": 5001}, A),  # more than one spend may take
    ]:
        with pytest.raises(ContractError) as caught:
            run(doc, "spend", args, h, caller)
        assert caught.value.code == Code.REQUIREMENT_FAILED
