"""Short builders for contract ASTs in tests: the JSON shapes of docs/spec/contracts-v1.md."""

from __future__ import annotations

from typing import Any

J = dict[str, Any]


def i(value: int) -> J:
    return {"op": "int", "value": value}


def v(name: str) -> J:
    return {"op": "var", "name": name}


def did(value: str) -> J:
    return {"op": "did", "value": value}


def cur(value: str) -> J:
    return {"op": "currency", "value": value}


def op(name: str, a: J, b: J | None = None) -> J:
    return {"op": name, "a": a} if b is None else {"op": name, "a": a, "b": b}


def transfer(frm: J, to: J, amount: J, currency: J, memo: str = "") -> J:
    return {
        "do": "transfer",
        "from": frm,
        "to": to,
        "amount": amount,
        "currency": currency,
        "memo": memo,
    }


def rule(params: dict[str, str], requires: list[J] | None = None, body: list[J] | None = None) -> J:
    return {
        "params": [{"name": n, "type": t} for n, t in params.items()],
        "requires": requires or [],
        "body": body or [],
    }


def code(**rules: J) -> J:
    return {"rules": rules}
