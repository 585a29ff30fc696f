"""Bodies of the ledger's event types: ``ledger.EntryRecorded`` (spec section 6) and the rest.

Freezes and the steps of a dispute are signed facts like any other; the money
a dispute moves back is always a separate ``ledger.EntryRecorded``, so
balances stay recomputable from entries alone. The entry's body is the one
every implementation must know: a bad one is ``malformed`` (spec), where a
bad freeze or dispute body is a node's ``invalid-body`` refusal.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from icn.domain.coop.bodies import Text
from icn.domain.coop.records import Currency, Did, Strict
from icn.domain.events.canonical import MAX_SAFE_INT
from icn.domain.identity.did import is_valid_did
from icn.domain.refusals import Code, Refusal

Amount = Annotated[int, msgspec.Meta(gt=0, le=MAX_SAFE_INT)]
Memo = Annotated[str, msgspec.Meta(max_length=1024)]


class Transaction(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One movement of ``amount`` smallest units of ``currency`` from one account to another."""

    from_: str = msgspec.field(name="from")
    to: str
    amount: Amount
    currency: Currency
    memo: Memo | None = None


class EntryRecorded(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``ledger.EntryRecorded``: the only body that moves money."""

    transactions: Annotated[list[Transaction], msgspec.Meta(min_length=1, max_length=64)]


def entry_problem(body: EntryRecorded) -> Refusal | None:
    """What the Struct cannot say about an entry: DIDs that parse, no self-payment."""
    for i, tx in enumerate(body.transactions):
        if not is_valid_did(tx.from_) or not is_valid_did(tx.to):
            return Refusal(Code.MALFORMED, f"bad DID in transaction {i}")
        if tx.from_ == tx.to:
            return Refusal(Code.SELF_PAYMENT, f"transaction {i} pays an account to itself")
    return None


def bad_amount(raw: dict[str, Any]) -> Refusal | None:
    """For an entry body its Struct refused: the first amount that is not 1 to 2^53-1 units.

    Runs only when decoding failed, so a bad amount gets its own code
    (``invalid-amount``) without reading msgspec's error text.
    """
    txs = raw.get("transactions")
    for i, tx in enumerate(txs if type(txs) is list else ()):
        if type(tx) is not dict or "amount" not in tx:
            continue
        amount = tx["amount"]
        if type(amount) is not int or not 0 < amount <= MAX_SAFE_INT:
            return Refusal(
                Code.INVALID_AMOUNT,
                f"transaction {i}: amount must be a whole number of units from 1 to 2^53-1,"
                f" got {amount!r}"[:200],
            )
    return None


EventId = Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{64}$")]
Evidence = Annotated[
    list[Annotated[str, msgspec.Meta(max_length=512)]], msgspec.Meta(max_length=16)
]

ACCOUNT_FROZEN = "ledger.AccountFrozen"
ACCOUNT_UNFROZEN = "ledger.AccountUnfrozen"
DISPUTE_FILED = "ledger.DisputeFiled"
DISPUTE_ANSWERED = "ledger.DisputeAnswered"
MEDIATOR_ASSIGNED = "ledger.MediatorAssigned"
DISPUTE_RESOLVED = "ledger.DisputeResolved"
DISPUTE_SETTLED = "ledger.DisputeSettled"
DEMURRAGE_CHARGED = "ledger.DemurrageCharged"


class AccountFrozen(Strict, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A frozen member can receive but not pay; ``until`` (ms) ends the freeze by itself."""

    member: Did
    reason: Text
    until: Annotated[int, msgspec.Meta(ge=0, le=MAX_SAFE_INT)] | None = None
    proposal: EventId | None = None
    """Set when the coop's DID freezes as an accepted proposal orders (a link back for
    readers; ``None`` otherwise)."""


class AccountUnfrozen(Strict, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Ends a freeze before its expiry (or one without expiry)."""

    member: Did
    proposal: EventId | None = None
    """Set when the coop's DID unfreezes as an accepted proposal orders (a link back for
    readers; ``None`` otherwise)."""


class DisputeFiled(Strict, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A party disputes one transaction of an entry; the filing event's id names the dispute."""

    entry: EventId
    transaction: Annotated[int, msgspec.Meta(ge=0, le=63)] = 0
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
    evidence: Evidence = msgspec.field(default_factory=list)


class DisputeAnswered(Strict, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The counterparty's side."""

    dispute: EventId
    response: Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
    evidence: Evidence = msgspec.field(default_factory=list)


class MediatorAssigned(Strict, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An admin names a member (not a party) to decide the dispute."""

    dispute: EventId
    mediator: Did


class Outcome:
    """How a dispute can end."""

    DISMISSED = "dismissed"
    REVERSED = "reversed"
    PARTIAL_REFUND = "partial-refund"
    WRITTEN_OFF = "written-off"
    ESCALATED = "escalated"
    ALL = (DISMISSED, REVERSED, PARTIAL_REFUND, WRITTEN_OFF, ESCALATED)
    MOVES_MONEY = (REVERSED, PARTIAL_REFUND, WRITTEN_OFF)


class DisputeResolved(Strict, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The decision. ``refund`` is required for a partial refund and must be below the amount."""

    dispute: EventId
    outcome: Annotated[
        str, msgspec.Meta(pattern="^(dismissed|reversed|partial-refund|written-off|escalated)$")
    ]
    refund: Annotated[int, msgspec.Meta(gt=0, le=MAX_SAFE_INT)] | None = None
    note: Text | None = None
    proposal: EventId | None = None
    """Set when the coop's DID carries out the ruling of an accepted ``escalated-dispute``
    proposal on a dispute its mediator escalated (the only way such a dispute is ruled)."""


class DisputeSettled(Strict, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """By the coop's DID: ``entry`` is the ``ledger.EntryRecorded`` that carried out a ruling."""

    dispute: EventId
    entry: EventId


class DemurrageCharged(Strict, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """By the coop's DID: the period charged and the entries that charged it."""

    currency: Currency
    period_end: Annotated[int, msgspec.Meta(ge=0, le=MAX_SAFE_INT)]
    entries: Annotated[list[EventId], msgspec.Meta(max_length=10_000)]


BODIES: dict[str, type[Strict]] = {
    ACCOUNT_FROZEN: AccountFrozen,
    ACCOUNT_UNFROZEN: AccountUnfrozen,
    DISPUTE_FILED: DisputeFiled,
    DISPUTE_ANSWERED: DisputeAnswered,
    MEDIATOR_ASSIGNED: MediatorAssigned,
    DISPUTE_RESOLVED: DisputeResolved,
    DISPUTE_SETTLED: DisputeSettled,
    DEMURRAGE_CHARGED: DemurrageCharged,
}
