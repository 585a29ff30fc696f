"""Bodies every implementation must know (spec sections 5-6), checked strictly.

Known bodies refuse unknown members: an old node must not accept money
movements it only half understands. A new field means a new type name.
Types this module does not know pass as any JSON object (section 6, last
paragraph); later capabilities register their own rules here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import msgspec

from icn.domain.events.canonical import MAX_SAFE_INT
from icn.domain.identity.did import is_valid_did

Currency = Annotated[str, msgspec.Meta(pattern="^[a-z0-9_-]{1,16}$")]
Amount = Annotated[int, msgspec.Meta(gt=0, le=MAX_SAFE_INT)]
Memo = Annotated[str, msgspec.Meta(max_length=1024)]

ENTRY_RECORDED = "ledger.EntryRecorded"
COOP_FOUNDED = "coop.Founded"
CHECKPOINT_ISSUED = "log.CheckpointIssued"


class Problem(str):
    """Why a body is not valid, with the stable ``code`` a node answers with.

    A plain string to everything that only reads the reason (audit reports),
    while the write path can tell a self-payment from a bad amount.
    """

    code: str

    def __new__(cls, reason: str, code: str = "malformed") -> Problem:
        problem = super().__new__(cls, reason)
        problem.code = code
        return problem


class Transaction(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One movement of ``amount`` smallest units of ``currency`` from one account to another."""

    from_: str = msgspec.field(name="from")
    to: str
    amount: Amount
    currency: Currency
    memo: Memo | None = None


class EntryRecordedBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``ledger.EntryRecorded``: the only body that moves money."""

    transactions: Annotated[list[Transaction], msgspec.Meta(min_length=1, max_length=64)]


class CheckpointIssuedBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``log.CheckpointIssued``: a node's signed statement of its tree at ``size``."""

    size: Annotated[int, msgspec.Meta(ge=0, le=MAX_SAFE_INT)]
    root: Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{64}$")]
    note: Annotated[str, msgspec.Meta(max_length=4096)]


def _entry_problem(body: dict[str, Any]) -> str | None:
    try:
        entry = msgspec.convert(body, EntryRecordedBody)
    except msgspec.ValidationError as exc:
        code = "invalid-amount" if str(exc).endswith("].amount`") else "malformed"
        return Problem(f"bad {ENTRY_RECORDED} body: {exc}", code)
    for i, tx in enumerate(entry.transactions):
        if not is_valid_did(tx.from_) or not is_valid_did(tx.to):
            return f"bad DID in transaction {i}"
        if tx.from_ == tx.to:
            return Problem(f"transaction {i} pays an account to itself", "self-payment")
    return None


def _checkpoint_problem(body: dict[str, Any]) -> str | None:
    try:
        msgspec.convert(body, CheckpointIssuedBody)
    except msgspec.ValidationError as exc:
        return f"bad {CHECKPOINT_ISSUED} body: {exc}"
    return None


BODY_RULES: dict[str, Callable[[dict[str, Any]], str | None]] = {
    ENTRY_RECORDED: _entry_problem,
    CHECKPOINT_ISSUED: _checkpoint_problem,
}


def body_problem(event_type: str, body: dict[str, Any]) -> str | None:
    """Why ``body`` is not a valid body of ``event_type``, or ``None``."""
    rule = BODY_RULES.get(event_type)
    return rule(body) if rule else None


def entry_transactions(body: dict[str, Any]) -> list[Transaction]:
    """The transactions of an already-checked ``ledger.EntryRecorded`` body."""
    return msgspec.convert(body, EntryRecordedBody).transactions


def debit_problem(author: str, body: dict[str, Any], coop_did: str | None) -> str | None:
    """Section 6: only the coop's own DID may debit an account other than its own."""
    if author == coop_did:
        return None
    for i, tx in enumerate(body["transactions"]):
        if tx["from"] != author:
            return Problem(
                f"transaction {i} debits {tx['from']}; only the author's account may be debited",
                "payer-not-signer",
            )
    return None
