"""The contract language as data: a JSON AST decoded strictly into these Structs.

A contract is what the coop votes on, so it is plain data every node decodes
the same way: unknown fields are refused, every list and string is bounded,
integer literals fit the signed 64-bit range. Expressions are tagged by
``op``, statements by ``do``; nothing here evaluates anything (that is
:mod:`icn.domain.contract.compile`). The grammar is specified in
docs/spec/contracts-v1.md.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

I64_MIN = -(2**63)
I64_MAX = 2**63 - 1

I64 = Annotated[int, msgspec.Meta(ge=I64_MIN, le=I64_MAX)]
Name = Annotated[str, msgspec.Meta(pattern="^[a-z][a-z0-9_]{0,31}$")]
ContractName = Annotated[str, msgspec.Meta(pattern="^[a-z][a-z0-9_-]{0,63}$")]
DID_PATTERN = "^did:[a-z0-9]+:[A-Za-z0-9._:-]{1,120}$"
CURRENCY_PATTERN = "^[a-z0-9_-]{1,16}$"
DidText = Annotated[str, msgspec.Meta(pattern=DID_PATTERN)]
CurrencyText = Annotated[str, msgspec.Meta(pattern=CURRENCY_PATTERN)]
RoleText = Annotated[str, msgspec.Meta(pattern="^[a-z][a-z0-9_-]{0,31}$")]
Words = Annotated[str, msgspec.Meta(max_length=200)]
ArgText = Annotated[str, msgspec.Meta(max_length=128)]
"""A DID or currency argument (checked against its parameter's type when the rule runs)."""
Type = Literal["int", "bool", "did", "currency"]
Capability = Literal["read-ledger", "write-ledger", "read-trust", "propose"]
CAPABILITIES: tuple[Capability, ...] = ("read-ledger", "write-ledger", "read-trust", "propose")

MAX_STATEMENTS = 64
"""Statements in one block."""
MAX_RULES = 32
MAX_PARAMS = 16
MAX_DEPTH = 32
"""How deeply expressions and blocks nest."""
MAX_REPEAT = 256
"""Iterations of one ``repeat`` (its bounds are literals)."""
MAX_CODE_BYTES = 65_536
"""The canonical JSON of a contract's code."""


class _Node(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Every node: strict, immutable."""


class _Expr(_Node, frozen=True, kw_only=True, tag_field="op"):
    """An expression; its variant is its ``op``."""


class IntLit(_Expr, frozen=True, kw_only=True, tag="int"):
    value: I64


class BoolLit(_Expr, frozen=True, kw_only=True, tag="bool"):
    value: bool


class DidLit(_Expr, frozen=True, kw_only=True, tag="did"):
    value: DidText


class CurrencyLit(_Expr, frozen=True, kw_only=True, tag="currency"):
    value: CurrencyText


class Var(_Expr, frozen=True, kw_only=True, tag="var"):
    """A parameter, constant or ``let``-bound local."""

    name: Name


class _Binary(_Expr, frozen=True, kw_only=True):
    a: Expr
    b: Expr


class Add(_Binary, frozen=True, kw_only=True, tag="add"):
    pass


class Sub(_Binary, frozen=True, kw_only=True, tag="sub"):
    pass


class Mul(_Binary, frozen=True, kw_only=True, tag="mul"):
    pass


class Div(_Binary, frozen=True, kw_only=True, tag="div"):
    """Truncates toward zero."""


class Mod(_Binary, frozen=True, kw_only=True, tag="mod"):
    """The remainder of :class:`Div`: it has the sign of ``a``."""


class Min(_Binary, frozen=True, kw_only=True, tag="min"):
    pass


class Max(_Binary, frozen=True, kw_only=True, tag="max"):
    pass


class Eq(_Binary, frozen=True, kw_only=True, tag="eq"):
    pass


class Ne(_Binary, frozen=True, kw_only=True, tag="ne"):
    pass


class Lt(_Binary, frozen=True, kw_only=True, tag="lt"):
    pass


class Le(_Binary, frozen=True, kw_only=True, tag="le"):
    pass


class Gt(_Binary, frozen=True, kw_only=True, tag="gt"):
    pass


class Ge(_Binary, frozen=True, kw_only=True, tag="ge"):
    pass


class And(_Binary, frozen=True, kw_only=True, tag="and"):
    pass


class Or(_Binary, frozen=True, kw_only=True, tag="or"):
    pass


class Neg(_Expr, frozen=True, kw_only=True, tag="neg"):
    a: Expr


class Not(_Expr, frozen=True, kw_only=True, tag="not"):
    a: Expr


class Caller(_Expr, frozen=True, kw_only=True, tag="caller"):
    """The invocation's author."""


class Treasury(_Expr, frozen=True, kw_only=True, tag="treasury"):
    """The coop's DID: its treasury account."""


class Now(_Expr, frozen=True, kw_only=True, tag="now"):
    """Trusted time at the invocation's stream position, in ms."""


class IsMember(_Expr, frozen=True, kw_only=True, tag="is-member"):
    """True for an active member."""

    member: Expr


class HasRole(_Expr, frozen=True, kw_only=True, tag="has-role"):
    """True for an active member holding ``role``."""

    member: Expr
    role: RoleText


class Balance(_Expr, frozen=True, kw_only=True, tag="balance"):
    """An account's balance in smallest units, the invocation's own transfers included."""

    account: Expr
    currency: Expr


class CreditRoom(_Expr, frozen=True, kw_only=True, tag="credit-room"):
    """How much the account may still pay: balance + its credit limit (the treasury: no bound)."""

    account: Expr
    currency: Expr


class Standing(_Expr, frozen=True, kw_only=True, tag="standing"):
    """The member's normalised trust standing for credit, in ppm."""

    member: Expr


Expr = (
    IntLit
    | BoolLit
    | DidLit
    | CurrencyLit
    | Var
    | Add
    | Sub
    | Mul
    | Div
    | Mod
    | Min
    | Max
    | Eq
    | Ne
    | Lt
    | Le
    | Gt
    | Ge
    | And
    | Or
    | Neg
    | Not
    | Caller
    | Treasury
    | Now
    | IsMember
    | HasRole
    | Balance
    | CreditRoom
    | Standing
)


class _Stmt(_Node, frozen=True, kw_only=True, tag_field="do"):
    """A statement; its variant is its ``do``."""


class Let(_Stmt, frozen=True, kw_only=True, tag="let"):
    """Bind a new local (a name is bound once per block path)."""

    name: Name
    value: Expr


class Set(_Stmt, frozen=True, kw_only=True, tag="set"):
    """Assign a ``let``-bound local again (same type)."""

    name: Name
    value: Expr


class Require(_Stmt, frozen=True, kw_only=True, tag="require"):
    """Stop with ``requirement-failed`` and ``reason`` unless ``cond`` holds."""

    cond: Expr
    reason: Words = ""


class Transfer(_Stmt, frozen=True, kw_only=True, tag="transfer"):
    """Buffer a ledger transaction, signed by the coop's DID when the invocation executes."""

    from_: Expr = msgspec.field(name="from")
    to: Expr
    amount: Expr
    currency: Expr
    memo: Words = ""


class Propose(_Stmt, frozen=True, kw_only=True, tag="propose"):
    """Buffer a proposal in words, opened by the coop's DID in ``domain``."""

    domain: Name
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    text: Annotated[str, msgspec.Meta(max_length=2_000)] = ""
    period_days: Annotated[int, msgspec.Meta(ge=1, le=30)] = 7


Block = Annotated[list["Stmt"], msgspec.Meta(max_length=MAX_STATEMENTS)]


class If(_Stmt, frozen=True, kw_only=True, tag="if"):
    cond: Expr
    then: Block
    else_: Block = msgspec.field(default_factory=list, name="else")


class Repeat(_Stmt, frozen=True, kw_only=True, tag="repeat"):
    """``body`` once for each ``var`` from ``start`` up to ``stop`` (excluded): literals."""

    var: Name
    start: Annotated[int, msgspec.Meta(ge=0, le=1_000_000)]
    stop: Annotated[int, msgspec.Meta(ge=0, le=1_000_000)]
    body: Block


class EachMember(_Stmt, frozen=True, kw_only=True, tag="each-member"):
    """``body`` once per active member, in DID order; bounded by the roll and by fuel."""

    var: Name
    body: Block


Stmt = Let | Set | Require | Transfer | Propose | If | Repeat | EachMember


class Param(_Node, frozen=True, kw_only=True):
    name: Name
    type: Type


class Rule(_Node, frozen=True, kw_only=True):
    """One entry point: typed parameters, requirements, then statements."""

    params: Annotated[list[Param], msgspec.Meta(max_length=MAX_PARAMS)] = msgspec.field(
        default_factory=list
    )
    requires: Annotated[list[Expr], msgspec.Meta(max_length=MAX_STATEMENTS)] = msgspec.field(
        default_factory=list
    )
    body: Block = msgspec.field(default_factory=list)


class Schedule(_Node, frozen=True, kw_only=True):
    """Run ``rule`` with ``args`` as a coop duty: every month on ``day`` (UTC), or every day."""

    rule: Name
    every: Literal["month", "day"]
    day: Annotated[int, msgspec.Meta(ge=1, le=28)] = 1
    args: Annotated[dict[Name, I64 | bool | ArgText], msgspec.Meta(max_length=MAX_PARAMS)] = (
        msgspec.field(default_factory=dict)
    )


class Code(_Node, frozen=True, kw_only=True):
    """A whole contract: named constants (fixed when it is deployed), rules and schedules."""

    language: Literal["icn-contract/1"] = "icn-contract/1"
    consts: Annotated[
        dict[Name, IntLit | BoolLit | DidLit | CurrencyLit], msgspec.Meta(max_length=32)
    ] = msgspec.field(default_factory=dict)
    rules: Annotated[dict[Name, Rule], msgspec.Meta(min_length=1, max_length=MAX_RULES)]
    schedules: Annotated[list[Schedule], msgspec.Meta(max_length=8)] = msgspec.field(
        default_factory=list
    )
