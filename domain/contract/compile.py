"""Deploy-time checking and compilation of a contract into Python closures.

Everything that can be decided without running is decided once, when the
contract is deployed: names resolve to slots, every expression has one type,
loops have literal bounds, and the capabilities the code uses are known, so
a contract that uses one it was not granted never deploys. What is left for
run time is arithmetic range checks, fuel, and the host's answers; each
compiled rule is a tree of closures, built once per contract version and
cached by the rules (:func:`icn.domain.contract.rules.program_of`).

Fuel: a statement costs 1 plus the size of its expressions (every node
counts, whether or not ``and``/``or`` short-circuits, so the charge is known
before the statement runs), plus the fixed charges of the host reads and
writes it performs (:class:`~icn.domain.contract.runtime.Fuel`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from icn.domain.contract import language as L
from icn.domain.contract.language import I64_MAX, I64_MIN
from icn.domain.contract.runtime import (
    MAX_PROPOSALS,
    MAX_SAFE_INT,
    MAX_TRANSFERS,
    ContractError,
    Fuel,
    Host,
    Outcome,
    ProposeEffect,
    Run,
    TransferEffect,
    Value,
    check_i64,
)
from icn.domain.refusals import Code

Fn = Callable[[Run], Any]
Step = Callable[[Run], None]


def invalid(reason: str) -> ContractError:
    return ContractError(Code.INVALID_CONTRACT, reason)


@dataclass(frozen=True)
class Compiled:
    """An expression: its closure, its type, its size in nodes."""

    fn: Fn
    type: str
    size: int


@dataclass(frozen=True)
class CompiledRule:
    """One rule ready to run: its typed parameters and its steps."""

    name: str
    params: tuple[tuple[str, str], ...]
    steps: tuple[Step, ...]
    slots: int


@dataclass(frozen=True)
class Program:
    """A whole contract, compiled: its rules and the capabilities its code uses."""

    code: L.Code
    rules: dict[str, CompiledRule]
    uses: frozenset[str]


class _Scope:
    """Names visible at one point: constants, parameters, locals (with their slots)."""

    def __init__(self, consts: dict[str, Compiled], counter: list[int]) -> None:
        self.consts = consts
        self.names: dict[str, tuple[int, str, bool]] = {}
        """name → (slot, type, assignable)."""
        self.counter = counter

    def child(self) -> _Scope:
        inner = _Scope(self.consts, self.counter)
        inner.names = dict(self.names)
        return inner

    def bind(self, name: str, type_: str, assignable: bool) -> int:
        if name in self.names or name in self.consts:
            raise invalid(f"{name} is bound already: names are never shadowed")
        slot = self.counter[0]
        self.counter[0] += 1
        self.names[name] = (slot, type_, assignable)
        return slot


class _Compiler:
    def __init__(self, uses: set[str]) -> None:
        self.uses = uses

    # -- expressions ---------------------------------------------------------------
    def expr(self, e: L.Expr, scope: _Scope, depth: int = 0) -> Compiled:
        if depth > L.MAX_DEPTH:
            raise invalid(f"expressions nest deeper than {L.MAX_DEPTH}")
        d = depth + 1
        if isinstance(e, L.IntLit | L.BoolLit | L.DidLit | L.CurrencyLit):
            v: Value = e.value
            return Compiled(lambda r: v, _LITERAL_TYPE[type(e)], 1)
        if isinstance(e, L.Var):
            if e.name in scope.consts:
                return scope.consts[e.name]
            found = scope.names.get(e.name)
            if found is None:
                raise invalid(f"{e.name} is not defined here")
            slot, type_, _ = found
            return Compiled(lambda r: r.slots[slot], type_, 1)
        if isinstance(e, L.Caller):
            return Compiled(lambda r: r.caller, "did", 1)
        if isinstance(e, L.Treasury):
            return Compiled(lambda r: r.treasury, "did", 1)
        if isinstance(e, L.Now):
            return Compiled(lambda r: r.now, "int", 1)
        if isinstance(e, L.Neg):
            a = self.typed(e.a, scope, d, "int", "neg")
            fa = a.fn
            return Compiled(lambda r: check_i64(-fa(r)), "int", 1 + a.size)
        if isinstance(e, L.Not):
            a = self.typed(e.a, scope, d, "bool", "not")
            fa = a.fn
            return Compiled(lambda r: not fa(r), "bool", 1 + a.size)
        if isinstance(e, L._Binary):
            return self.binary(e, scope, d)
        return self.host_read(e, scope, d)

    def typed(self, e: L.Expr, scope: _Scope, depth: int, want: str, where: str) -> Compiled:
        c = self.expr(e, scope, depth)
        if c.type != want:
            raise invalid(f"{where} needs {want}, got {c.type}")
        return c

    def binary(self, e: L._Binary, scope: _Scope, d: int) -> Compiled:
        op = type(e).__struct_config__.tag
        if isinstance(e, L.Eq | L.Ne):
            a, b = self.expr(e.a, scope, d), self.expr(e.b, scope, d)
            if a.type != b.type:
                raise invalid(f"{op} compares {a.type} with {b.type}")
        else:
            want = "bool" if isinstance(e, L.And | L.Or) else "int"
            a = self.typed(e.a, scope, d, want, str(op))
            b = self.typed(e.b, scope, d, want, str(op))
        fa, fb, size = a.fn, b.fn, 1 + a.size + b.size
        make, type_ = _BINARY[type(e)]
        return Compiled(make(fa, fb), type_, size)

    def host_read(self, e: L.Expr, scope: _Scope, d: int) -> Compiled:
        if isinstance(e, L.Balance | L.CreditRoom):
            acc = self.typed(e.account, scope, d, "did", "account")
            cur = self.typed(e.currency, scope, d, "currency", "currency")
            self.uses.add("read-ledger")
            fa, fc = acc.fn, cur.fn
            size = 1 + acc.size + cur.size
            if isinstance(e, L.Balance):

                def balance(r: Run) -> int:
                    r.spend(Fuel.READ)
                    r.need("read-ledger")
                    did, currency = fa(r), fc(r)
                    base = r.host.balance(did, currency)
                    return check_i64(base + r.deltas.get((did, currency), 0))

                return Compiled(balance, "int", size)

            def room(r: Run) -> int:
                r.spend(Fuel.READ_COMPUTED)
                r.need("read-ledger")
                did, currency = fa(r), fc(r)
                if did == r.treasury:
                    return I64_MAX
                base = r.host.credit_room(did, currency)
                return check_i64(base + r.deltas.get((did, currency), 0))

            return Compiled(room, "int", size)
        if isinstance(e, L.Standing):
            m = self.typed(e.member, scope, d, "did", "standing")
            self.uses.add("read-trust")
            fm = m.fn

            def standing(r: Run) -> int:
                r.spend(Fuel.READ_COMPUTED)
                r.need("read-trust")
                return r.host.standing_ppm(fm(r))

            return Compiled(standing, "int", 1 + m.size)
        if isinstance(e, L.IsMember):
            m = self.typed(e.member, scope, d, "did", "is-member")
            fm = m.fn

            def is_member(r: Run) -> bool:
                r.spend(Fuel.READ)
                return r.host.roles(fm(r)) is not None

            return Compiled(is_member, "bool", 1 + m.size)
        if isinstance(e, L.HasRole):
            m = self.typed(e.member, scope, d, "did", "has-role")
            fm, role = m.fn, e.role

            def has_role(r: Run) -> bool:
                r.spend(Fuel.READ)
                roles = r.host.roles(fm(r))
                return roles is not None and role in roles

            return Compiled(has_role, "bool", 1 + m.size)
        raise invalid(f"unknown expression {type(e).__name__}")  # pragma: no cover

    # -- statements ----------------------------------------------------------------
    def block(self, stmts: list[L.Stmt], scope: _Scope, depth: int) -> tuple[Step, ...]:
        if depth > L.MAX_DEPTH:
            raise invalid(f"blocks nest deeper than {L.MAX_DEPTH}")
        return tuple(self.stmt(s, scope, depth) for s in stmts)

    def stmt(self, s: L.Stmt, scope: _Scope, depth: int) -> Step:
        d = depth + 1
        if isinstance(s, L.Let | L.Set):
            v = self.expr(s.value, scope, d)
            if isinstance(s, L.Let):
                slot = scope.bind(s.name, v.type, True)
            else:
                found = scope.names.get(s.name)
                if found is None or not found[2]:
                    raise invalid(f"set {s.name}: only a let-bound local may be set")
                slot, type_, _ = found
                if type_ != v.type:
                    raise invalid(f"set {s.name}: {type_} cannot hold {v.type}")
            fv, cost = v.fn, 1 + v.size

            def assign(r: Run) -> None:
                r.spend(cost)
                r.slots[slot] = fv(r)

            return assign
        if isinstance(s, L.Require):
            c = self.typed(s.cond, scope, d, "bool", "require")
            return _require(c, s.reason or "a requirement failed")
        if isinstance(s, L.Transfer):
            return self.transfer(s, scope, d)
        if isinstance(s, L.Propose):
            self.uses.add("propose")
            effect = ProposeEffect(
                domain=s.domain, title=s.title, text=s.text, period_days=s.period_days
            )

            def propose(r: Run) -> None:
                r.spend(1 + Fuel.WRITE)
                r.need("propose")
                if len(r.proposals) >= MAX_PROPOSALS:
                    raise ContractError(
                        Code.TOO_MANY_EFFECTS, f"more than {MAX_PROPOSALS} proposals"
                    )
                r.proposals.append(effect)

            return propose
        if isinstance(s, L.If):
            c = self.typed(s.cond, scope, d, "bool", "if")
            then = self.block(s.then, scope.child(), d)
            other = self.block(s.else_, scope.child(), d)
            fc, cost = c.fn, 1 + c.size

            def branch(r: Run) -> None:
                r.spend(cost)
                for step in then if fc(r) else other:
                    step(r)

            return branch
        if isinstance(s, L.Repeat):
            if s.stop - s.start > L.MAX_REPEAT:
                raise invalid(f"repeat runs at most {L.MAX_REPEAT} times")
            inner = scope.child()
            slot = inner.bind(s.var, "int", False)
            body = self.block(s.body, inner, d)
            start, stop = s.start, s.stop

            def repeat(r: Run) -> None:
                r.spend(1)
                for i in range(start, stop):
                    r.spend(1)
                    r.slots[slot] = i
                    for step in body:
                        step(r)

            return repeat
        if isinstance(s, L.EachMember):
            inner = scope.child()
            slot = inner.bind(s.var, "did", False)
            body = self.block(s.body, inner, d)

            def each(r: Run) -> None:
                r.spend(1 + Fuel.READ)
                for did in r.host.members():
                    r.spend(Fuel.MEMBER)
                    r.slots[slot] = did
                    for step in body:
                        step(r)

            return each
        raise invalid(f"unknown statement {type(s).__name__}")  # pragma: no cover

    def transfer(self, s: L.Transfer, scope: _Scope, d: int) -> Step:
        frm = self.typed(s.from_, scope, d, "did", "transfer from")
        to = self.typed(s.to, scope, d, "did", "transfer to")
        amount = self.typed(s.amount, scope, d, "int", "transfer amount")
        cur = self.typed(s.currency, scope, d, "currency", "transfer currency")
        self.uses.add("write-ledger")
        ff, ft, fa, fc, memo = frm.fn, to.fn, amount.fn, cur.fn, s.memo
        cost = 1 + frm.size + to.size + amount.size + cur.size + Fuel.WRITE

        def transfer(r: Run) -> None:
            r.spend(cost)
            r.need("write-ledger")
            src, dst, units, currency = ff(r), ft(r), fa(r), fc(r)
            if len(r.transfers) >= MAX_TRANSFERS:
                raise ContractError(Code.TOO_MANY_EFFECTS, f"more than {MAX_TRANSFERS} transfers")
            if units < 1 or units > MAX_SAFE_INT:
                raise ContractError(Code.INVALID_AMOUNT, f"a transfer of {units} units")
            if src == dst:
                raise ContractError(Code.SELF_PAYMENT, f"a transfer from {src} to itself")
            problem = r.host.transfer_problem(src, dst, currency)
            if problem is not None:
                raise problem
            debit = r.deltas.get((src, currency), 0)
            if src != r.treasury and r.host.credit_room(src, currency) + debit < units:
                raise ContractError(
                    Code.CREDIT_LIMIT_EXCEEDED,
                    f"{src} would go below their credit limit in {currency}",
                )
            r.deltas[(src, currency)] = debit - units
            r.deltas[(dst, currency)] = r.deltas.get((dst, currency), 0) + units
            r.transfers.append(
                TransferEffect(from_=src, to=dst, amount=units, currency=currency, memo=memo)
            )

        return transfer


def _require(c: Compiled, reason: str) -> Step:
    fc, cost = c.fn, 1 + c.size

    def require(r: Run) -> None:
        r.spend(cost)
        if not fc(r):
            raise ContractError(Code.REQUIREMENT_FAILED, reason)

    return require


def _div(a: int, b: int) -> int:
    if b == 0:
        raise ContractError(Code.DIVISION_BY_ZERO, "division by zero")
    q = abs(a) // abs(b)
    return check_i64(-q if (a < 0) != (b < 0) else q)


def _mod(a: int, b: int) -> int:
    if b == 0:
        raise ContractError(Code.DIVISION_BY_ZERO, "remainder of a division by zero")
    rest = abs(a) % abs(b)
    return -rest if a < 0 else rest


def _arith(op: Callable[[int, int], int]) -> Callable[[Fn, Fn], Fn]:
    def make(fa: Fn, fb: Fn) -> Fn:
        def run(r: Run) -> int:
            v = op(fa(r), fb(r))
            if v > I64_MAX or v < I64_MIN:
                raise ContractError(
                    Code.CONTRACT_OVERFLOW, f"{v} is outside the signed 64-bit range"
                )
            return v

        return run

    return make


def _plain(op: Callable[[Any, Any], Any]) -> Callable[[Fn, Fn], Fn]:
    def make(fa: Fn, fb: Fn) -> Fn:
        return lambda r: op(fa(r), fb(r))

    return make


def _and(fa: Fn, fb: Fn) -> Fn:
    return lambda r: fa(r) and fb(r)


def _or(fa: Fn, fb: Fn) -> Fn:
    return lambda r: fa(r) or fb(r)


_LITERAL_TYPE: dict[type, str] = {
    L.IntLit: "int",
    L.BoolLit: "bool",
    L.DidLit: "did",
    L.CurrencyLit: "currency",
}
_BINARY: dict[type, tuple[Callable[[Fn, Fn], Fn], str]] = {
    L.Add: (_arith(lambda a, b: a + b), "int"),
    L.Sub: (_arith(lambda a, b: a - b), "int"),
    L.Mul: (_arith(lambda a, b: a * b), "int"),
    L.Div: (_plain(_div), "int"),
    L.Mod: (_plain(_mod), "int"),
    L.Min: (_plain(min), "int"),
    L.Max: (_plain(max), "int"),
    L.Eq: (_plain(lambda a, b: a == b), "bool"),
    L.Ne: (_plain(lambda a, b: a != b), "bool"),
    L.Lt: (_plain(lambda a, b: a < b), "bool"),
    L.Le: (_plain(lambda a, b: a <= b), "bool"),
    L.Gt: (_plain(lambda a, b: a > b), "bool"),
    L.Ge: (_plain(lambda a, b: a >= b), "bool"),
    L.And: (_and, "bool"),
    L.Or: (_or, "bool"),
}


def decode(raw: Any) -> L.Code:
    """The contract's code from its JSON value, strictly; ``invalid-contract`` otherwise."""
    try:
        size = len(msgspec.json.encode(raw))
    except RecursionError:
        raise invalid(f"the code nests deeper than {L.MAX_DEPTH}") from None
    except TypeError as exc:
        raise invalid(f"the code is not JSON: {exc}") from None
    if size > L.MAX_CODE_BYTES:
        raise invalid(f"the code is {size} bytes, over {L.MAX_CODE_BYTES}")
    try:
        return msgspec.convert(raw, L.Code)
    except (msgspec.ValidationError, RecursionError) as exc:
        raise invalid(f"bad contract code: {exc}") from None


def compile_code(code: L.Code) -> Program:
    """Check and compile every rule; ``invalid-contract`` names the first problem."""
    uses: set[str] = set()
    compiler = _Compiler(uses)
    consts: dict[str, Compiled] = {}
    for name, lit in code.consts.items():
        consts[name] = compiler.expr(lit, _Scope({}, [0]))
    rules: dict[str, CompiledRule] = {}
    for name, rule in code.rules.items():
        counter = [0]
        scope = _Scope(consts, counter)
        params = []
        for p in rule.params:
            scope.bind(p.name, p.type, False)
            params.append((p.name, p.type))
        try:
            steps = tuple(
                _require(compiler.typed(e, scope, 1, "bool", "requires"), "a requirement failed")
                for e in rule.requires
            ) + compiler.block(rule.body, scope, 1)
        except ContractError as exc:
            raise invalid(f"rule {name}: {exc.reason}") from None
        rules[name] = CompiledRule(name, tuple(params), steps, counter[0])
    for i, schedule in enumerate(code.schedules):
        target = rules.get(schedule.rule)
        if target is None:
            raise invalid(f"schedule {i} names no rule {schedule.rule}")
        try:
            bind_args(target, dict(schedule.args))
        except ContractError as exc:
            raise invalid(f"schedule {i}: {exc.reason}") from None
    return Program(code, rules, frozenset(uses))


def deploy_check(raw: Any, granted: Sequence[str]) -> Program:
    """The static checks of a deploy: the code compiles and uses only what was granted."""
    program = compile_code(decode(raw))
    missing = sorted(program.uses - set(granted))
    if missing:
        raise ContractError(
            Code.CAPABILITY_DENIED, f"the code uses {', '.join(missing)}, which was not granted"
        )
    return program


def bind_args(rule: CompiledRule, args: dict[str, Any]) -> list[Value]:
    """The rule's parameters from ``args``, each of its declared type; ``invalid-args``."""
    extra = sorted(set(args) - {n for n, _ in rule.params})
    if extra:
        raise ContractError(Code.INVALID_ARGS, f"{rule.name} takes no {', '.join(extra)}")
    values: list[Value] = []
    for name, type_ in rule.params:
        if name not in args:
            raise ContractError(Code.INVALID_ARGS, f"{rule.name} needs {name}")
        values.append(_arg(name, type_, args[name]))
    return values


_DID = re.compile(L.DID_PATTERN)
_CURRENCY = re.compile(L.CURRENCY_PATTERN)


def _arg(name: str, type_: str, value: Any) -> Value:
    """``value`` when it is of ``type_`` (the same bounds the language's literals have)."""
    if type_ == "int":
        ok = type(value) is int and I64_MIN <= value <= I64_MAX
    elif type_ == "bool":
        ok = type(value) is bool
    else:
        pattern = _DID if type_ == "did" else _CURRENCY
        ok = type(value) is str and pattern.fullmatch(value) is not None
    if not ok:
        raise ContractError(Code.INVALID_ARGS, f"{name} must be a {type_}")
    got: Value = value
    return got


def execute(
    program: Program,
    rule_name: str,
    args: dict[str, Any],
    *,
    host: Host,
    granted: frozenset[str],
    caller: str,
    treasury: str,
    now: int,
    fuel_limit: int,
) -> Outcome:
    """Run one rule to its end, or raise the :class:`ContractError` that refuses it."""
    rule = program.rules.get(rule_name)
    if rule is None:
        raise ContractError(Code.UNKNOWN_RULE, f"the contract has no rule {rule_name}")
    values = bind_args(rule, args)
    r = Run(
        host=host,
        granted=granted,
        caller=caller,
        treasury=treasury,
        now=now,
        fuel=fuel_limit,
        slots=rule.slots,
    )
    r.slots[: len(values)] = values
    for step in rule.steps:
        step(r)
    return Outcome(transfers=r.transfers, proposals=r.proposals, fuel=fuel_limit - r.fuel)
