"""The contract interpreter on hand-computed cases: values, refusals and their codes, fuel."""

from __future__ import annotations

from typing import Any

import pytest
from support.contract_ast import J, code, cur, did, i, op, rule, transfer, v
from support.contract_host import TREASURY, DictHost

from icn.domain.contract.compile import compile_code, decode, deploy_check, execute
from icn.domain.contract.language import I64_MAX, I64_MIN
from icn.domain.contract.runtime import ContractError, Outcome, Run
from icn.domain.refusals import Code

A, B, C = "did:key:zA", "did:key:zB", "did:key:zC"
ALL = frozenset({"read-ledger", "write-ledger", "read-trust", "propose"})


def host() -> DictHost:
    return DictHost(
        roles_of={A: ("admin",), B: (), C: ("committee",)},
        limits={A: 500, B: 500, C: 0},
        balances={(A, "hours"): 100},
        standing={A: 250_000},
    )


def run(
    c: J,
    args: dict[str, Any] | None = None,
    *,
    h: DictHost | None = None,
    fuel: int = 10_000,
    granted: frozenset[str] = ALL,
    name: str = "r",
) -> Outcome:
    program = compile_code(decode(c))
    return execute(
        program,
        name,
        args or {},
        host=h or host(),
        granted=granted,
        caller=A,
        treasury=TREASURY,
        now=1_000,
        fuel_limit=fuel,
    )


def value_of(expr: J) -> Any:
    """An expression's value: the slot a ``let`` binds it to, after the rule ran."""
    program = compile_code(
        decode(code(r=rule({}, body=[{"do": "let", "name": "x", "value": expr}])))
    )
    r = Run(host=host(), granted=ALL, caller=A, treasury=TREASURY, now=0, fuel=10_000, slots=1)
    for step in program.rules["r"].steps:
        step(r)
    return r.slots[0]


def refused(c: J, args: dict[str, Any] | None = None, **kw: Any) -> Code:
    with pytest.raises(ContractError) as caught:
        run(c, args, **kw)
    return caught.value.code


@pytest.mark.parametrize(
    ("expr", "want"),
    [
        (op("add", i(2), i(3)), 5),
        (op("sub", i(2), i(3)), -1),
        (op("mul", i(-4), i(3)), -12),
        (op("div", i(7), i(2)), 3),
        (op("div", i(-7), i(2)), -3),  # truncates toward zero
        (op("mod", i(-7), i(2)), -1),  # the sign of the dividend
        (op("mod", i(7), i(-2)), 1),
        (op("min", i(7), i(-2)), -2),
        (op("max", i(7), i(-2)), 7),
        (op("neg", i(7)), -7),
    ],
)
def test_arithmetic(expr: J, want: int) -> None:
    assert value_of(expr) == want


@pytest.mark.parametrize(
    ("expr", "code_"),
    [
        (op("add", i(I64_MAX), i(1)), Code.CONTRACT_OVERFLOW),
        (op("sub", i(I64_MIN), i(1)), Code.CONTRACT_OVERFLOW),
        (op("mul", i(2**62), i(2)), Code.CONTRACT_OVERFLOW),
        (op("neg", i(I64_MIN)), Code.CONTRACT_OVERFLOW),
        (op("div", i(I64_MIN), i(-1)), Code.CONTRACT_OVERFLOW),
        (op("div", i(1), i(0)), Code.DIVISION_BY_ZERO),
        (op("mod", i(1), i(0)), Code.DIVISION_BY_ZERO),
    ],
)
def test_arithmetic_refusals(expr: J, code_: Code) -> None:
    assert refused(code(r=rule({}, body=[{"do": "let", "name": "x", "value": expr}]))) == code_


def test_min_int_mod_minus_one_is_zero() -> None:
    assert value_of(op("mod", i(I64_MIN), i(-1))) == 0


def test_record_service_moves_hours_and_counts_fuel() -> None:
    c = code(
        r=rule(
            {"n": "int", "to": "did"},
            requires=[op("gt", v("n"), i(0))],
            body=[transfer({"op": "caller"}, v("to"), op("mul", v("n"), i(100)), cur("hours"))],
        )
    )
    out = run(c, {"n": 3, "to": B})
    assert [(t.from_, t.to, t.amount) for t in out.transfers] == [(A, B, 300)]
    # requires: 1 + gt(3 nodes) = 4; transfer: 1 + caller 1 + var 1 + mul 3 + currency 1 + 30 = 37
    assert out.fuel == 4 + 37
    assert refused(c, {"n": 0, "to": B}) == Code.REQUIREMENT_FAILED


def test_reads_see_the_runs_own_writes() -> None:
    c = code(
        r=rule(
            {},
            body=[
                transfer({"op": "caller"}, did(B), i(40), cur("hours")),
                {
                    "do": "require",
                    "cond": op(
                        "eq", {"op": "balance", "account": did(B), "currency": cur("hours")}, i(40)
                    ),
                },
                {
                    "do": "require",
                    "cond": op(
                        "eq",
                        {
                            "op": "credit-room",
                            "account": {"op": "caller"},
                            "currency": cur("hours"),
                        },
                        i(100 + 500 - 40),
                    ),
                },
            ],
        )
    )
    assert len(run(c).transfers) == 1


def test_credit_limit_and_ledger_refusals() -> None:
    def pay(frm: str, to: str, amount: int, currency: str = "hours") -> J:
        return code(r=rule({}, body=[transfer(did(frm), did(to), i(amount), cur(currency))]))

    assert refused(pay(C, B, 1)) == Code.CREDIT_LIMIT_EXCEEDED
    assert len(run(pay(A, B, 600)).transfers) == 1  # 100 + a limit of 500
    assert refused(pay(A, B, 601)) == Code.CREDIT_LIMIT_EXCEEDED
    assert refused(pay(A, A, 1)) == Code.SELF_PAYMENT
    assert refused(pay(A, B, 0)) == Code.INVALID_AMOUNT
    assert refused(pay(A, B, 1, "gold")) == Code.UNKNOWN_CURRENCY
    assert refused(pay(A, "did:key:zStranger", 1)) == Code.NOT_A_MEMBER
    assert len(run(pay(TREASURY, B, 10**9)).transfers) == 1  # the treasury has no limit


def test_out_of_fuel() -> None:
    body = [
        {
            "do": "repeat",
            "var": "k",
            "start": 0,
            "stop": 200,
            "body": [{"do": "require", "cond": op("ge", v("k"), i(0))}],
        }
    ]
    c = code(r=rule({}, body=body))
    used = run(c).fuel
    assert used == 1 + 200 * (1 + 4)
    assert run(c, fuel=used).fuel == used
    assert refused(c, fuel=used - 1) == Code.OUT_OF_FUEL


def test_capabilities_checked_at_deploy_and_at_run_time() -> None:
    c = code(r=rule({}, requires=[op("ge", {"op": "standing", "member": {"op": "caller"}}, i(0))]))
    with pytest.raises(ContractError) as caught:
        deploy_check(c, ["read-ledger"])
    assert caught.value.code == Code.CAPABILITY_DENIED
    assert deploy_check(c, ["read-trust"]).uses == {"read-trust"}
    assert refused(c, granted=frozenset({"read-ledger"})) == Code.CAPABILITY_DENIED


@pytest.mark.parametrize(
    "bad",
    [
        code(r=rule({}, requires=[i(1)])),  # not a bool
        code(r=rule({}, body=[{"do": "let", "name": "x", "value": v("y")}])),  # unbound
        code(r=rule({"x": "int"}, body=[{"do": "let", "name": "x", "value": i(1)}])),  # shadow
        code(r=rule({"x": "int"}, body=[{"do": "set", "name": "x", "value": i(1)}])),  # param
        code(r=rule({}, requires=[op("eq", i(1), did(A))])),  # mixed types
        code(
            r=rule({}, body=[{"do": "repeat", "var": "k", "start": 0, "stop": 10_000, "body": []}])
        ),
        code(r={**rule({}), "extra": 1}),  # unknown field
        {"rules": {}},  # no rule
        {"rules": {"r": rule({})}, "schedules": [{"rule": "nope", "every": "month"}]},
    ],
)
def test_invalid_code_refused_at_deploy(bad: J) -> None:
    with pytest.raises(ContractError) as caught:
        deploy_check(bad, sorted(ALL))
    assert caught.value.code == Code.INVALID_CONTRACT


@pytest.mark.parametrize("depth", [40, 5_000])
def test_deep_nesting_refused(depth: int) -> None:
    expr = i(1)
    for _ in range(depth):
        expr = op("neg", expr)
    c = code(r=rule({}, body=[{"do": "let", "name": "x", "value": expr}]))
    with pytest.raises(ContractError) as caught:
        deploy_check(c, [])
    assert caught.value.code == Code.INVALID_CONTRACT
    assert "deeper than 32" in caught.value.reason


def test_args_are_typed() -> None:
    c = code(r=rule({"n": "int", "who": "did", "ok": "bool"}))
    assert run(c, {"n": 1, "who": B, "ok": True}).fuel == 0
    assert refused(c, {"n": True, "who": B, "ok": True}) == Code.INVALID_ARGS
    assert refused(c, {"n": 1, "who": "bob", "ok": True}) == Code.INVALID_ARGS
    assert refused(c, {"n": 2**63, "who": B, "ok": True}) == Code.INVALID_ARGS
    assert refused(c, {"n": 1, "who": B}) == Code.INVALID_ARGS
    assert refused(c, {"n": 1, "who": B, "ok": True, "x": 1}) == Code.INVALID_ARGS
    assert refused(c, {}, name="nope") == Code.UNKNOWN_RULE


def test_each_member_and_roles() -> None:
    c = code(
        r=rule(
            {},
            body=[
                {"do": "let", "name": "n", "value": i(0)},
                {
                    "do": "each-member",
                    "var": "m",
                    "body": [
                        {
                            "do": "if",
                            "cond": {"op": "has-role", "member": v("m"), "role": "committee"},
                            "then": [{"do": "set", "name": "n", "value": op("add", v("n"), i(1))}],
                        }
                    ],
                },
                {"do": "require", "cond": op("eq", v("n"), i(1))},
                {"do": "propose", "domain": "root", "title": "counted"},
            ],
        )
    )
    out = run(c)
    assert [p.title for p in out.proposals] == ["counted"]
