"""Properties of the contract interpreter over generated programs.

Evaluation is a function of the code, the arguments and the host's answers;
fuel grows with the work done; no computed value leaves the signed 64-bit
range; and a refused invocation returns nothing, so nothing it buffered can
take effect.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from support.contract_ast import J, code, cur, did, i, op, rule, transfer, v
from support.contract_host import TREASURY, DictHost

from icn.domain.contract.compile import compile_code, decode, execute
from icn.domain.contract.language import I64_MAX, I64_MIN
from icn.domain.contract.runtime import ContractError, Outcome, Run
from icn.domain.refusals import Code

A, B = "did:key:zA", "did:key:zB"
ALL = frozenset({"read-ledger", "write-ledger", "read-trust", "propose"})
ARITH = ("add", "sub", "mul", "div", "mod", "min", "max")

ints = st.one_of(
    st.integers(min_value=-5, max_value=5),
    st.integers(min_value=I64_MIN, max_value=I64_MAX),
    st.sampled_from([I64_MIN, I64_MAX, -1, 0, 1, 2**32]),
)
exprs = st.recursive(
    st.one_of(ints.map(i), st.just(v("n"))),
    lambda inner: st.one_of(
        st.tuples(st.sampled_from(ARITH), inner, inner).map(lambda t: op(*t)),
        inner.map(lambda e: op("neg", e)),
    ),
    max_leaves=12,
)


def host() -> DictHost:
    return DictHost(roles_of={A: (), B: ()}, limits={A: 10**6}, balances={(A, "eur"): 5})


def attempt(c: J, args: dict[str, Any], fuel: int = 100_000) -> Outcome | ContractError:
    try:
        return execute(
            compile_code(decode(c)),
            "r",
            args,
            host=host(),
            granted=ALL,
            caller=A,
            treasury=TREASURY,
            now=0,
            fuel_limit=fuel,
        )
    except ContractError as exc:
        return exc


def bound(expr: J) -> J:
    """A rule that binds ``expr`` and pays its value's low bits, so the value is observable."""
    amount = op("add", op("mod", op("max", op("min", v("x"), i(1000)), i(-1000)), i(7)), i(8))
    return code(
        r=rule(
            {"n": "int"},
            body=[
                {"do": "let", "name": "x", "value": expr},
                transfer(did(A), did(B), amount, cur("eur")),
            ],
        )
    )


@settings(max_examples=300, deadline=None)
@given(exprs, ints)
def test_evaluation_is_deterministic(expr: J, n: int) -> None:
    first, second = attempt(bound(expr), {"n": n}), attempt(bound(expr), {"n": n})
    if isinstance(first, ContractError):
        assert isinstance(second, ContractError)
        assert (first.code, first.reason) == (second.code, second.reason)
    else:
        assert first == second


@settings(max_examples=300, deadline=None)
@given(exprs, ints)
def test_no_value_escapes_i64(expr: J, n: int) -> None:
    """Every bound value is in range, or the run stops with overflow or division by zero."""
    seen: list[int] = []
    c = code(r=rule({"n": "int"}, body=[{"do": "let", "name": "x", "value": expr}]))
    program = compile_code(decode(c))
    step = program.rules["r"].steps[0]
    r = Run(host=host(), granted=ALL, caller=A, treasury=TREASURY, now=0, fuel=10**6, slots=2)
    r.slots[0] = n
    try:
        step(r)
        seen.append(int(r.slots[1]))
    except ContractError as exc:
        assert exc.code in (Code.CONTRACT_OVERFLOW, Code.DIVISION_BY_ZERO)
    for value in seen:
        assert I64_MIN <= value <= I64_MAX


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=0, max_value=100), st.integers(min_value=0, max_value=100))
def test_fuel_is_monotonic_in_work(m: int, k: int) -> None:
    def loops(times: int) -> J:
        body = [{"do": "require", "cond": op("ge", v("j"), i(0))}]
        return code(
            r=rule({}, body=[{"do": "repeat", "var": "j", "start": 0, "stop": times, "body": body}])
        )

    small, large = sorted((m, k))
    a, b = attempt(loops(small), {}), attempt(loops(large), {})
    assert isinstance(a, Outcome) and isinstance(b, Outcome)
    assert (a.fuel < b.fuel) == (small < large)
    # Exactly the fuel used suffices, one unit less never does.
    assert attempt(loops(large), {}, fuel=b.fuel) == b
    short = attempt(loops(large), {}, fuel=b.fuel - 1)
    assert isinstance(short, ContractError) and short.code == Code.OUT_OF_FUEL


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(min_value=1, max_value=400_000), min_size=1, max_size=8),
    st.integers(min_value=0, max_value=9),
    st.sampled_from(["require", "overflow", "fuel"]),
)
def test_a_refused_invocation_has_no_effect(amounts: list[int], at: int, how: str) -> None:
    """Transfers buffered before the refusal are never returned: the refusal is all there is."""
    body = [transfer(did(A), did(B), i(a), cur("eur")) for a in amounts]
    fuel = 100_000
    if how == "require":
        body.insert(min(at, len(body)), {"do": "require", "cond": {"op": "bool", "value": False}})
    elif how == "overflow":
        boom = {"do": "let", "name": "boom", "value": op("add", i(I64_MAX), i(1))}
        body.insert(min(at, len(body)), boom)
    else:
        fuel = 35 * len(amounts) - 1  # each transfer of literals costs 35: the last one runs dry
    got = attempt(code(r=rule({}, body=body)), {}, fuel=fuel)
    assert isinstance(got, ContractError)
    if how == "fuel":
        assert got.code in (Code.OUT_OF_FUEL, Code.CREDIT_LIMIT_EXCEEDED)
