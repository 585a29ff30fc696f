"""Holds: credit set aside for a promise the coop has not settled yet.

A paid compute task holds its ``max_fee`` on the submitter's account while
executors run it. Held credit is not spendable: the ledger's credit check
judges ``balance − held`` against the limit, so a member cannot pay away
what a task may still be charged. A hold moves no money; the settlement
pays from it with ordinary ledger entries and releases the whole hold in
the same batch, so Σ balances stays zero and nothing is counted twice.

Each holder (a task) places its hold once and releases it once: the holder's
own record says whether it still holds, and :func:`release` refuses to take
back more than the account holds.
"""

from __future__ import annotations

from typing import ClassVar

from icn.domain.coop.records import CoopRecord, MemberRecord, Record, format_amount
from icn.domain.coop.state import CoopView, account_of
from icn.domain.refusals import Code, Refusal


class HeldRecord(Record, frozen=True, kw_only=True):
    """What one account has on hold in one currency, over every open holder (never < 0)."""

    kind: ClassVar[str] = "ledger-held"
    did: str
    currency: str
    amount: int = 0

    def key(self) -> str:
        return f"{self.did}/{self.currency}"


RECORD_TYPES = (HeldRecord,)
"""The holds' records, for :data:`icn.domain.registry.RECORD_TYPES`."""


def held(view: CoopView, coop: str, did: str, currency: str) -> int:
    """What ``did`` has on hold in ``currency`` (0 when nothing)."""
    found = view.record(coop, HeldRecord.kind, f"{did}/{currency}")
    return found.amount if isinstance(found, HeldRecord) else 0


def available(view: CoopView, coop: str, did: str, currency: str) -> int:
    """The balance less what is held: what the credit check judges against the limit."""
    return account_of(view, coop, did, currency).balance - held(view, coop, did, currency)


def place(
    view: CoopView,
    coop: CoopRecord,
    member: MemberRecord,
    currency: str,
    amount: int,
    limit: int,
) -> HeldRecord | Refusal:
    """Hold ``amount`` more on ``member``'s account, if ``available − amount`` stays within
    ``limit`` (the member's credit limit now); the account's new :class:`HeldRecord`."""
    if amount < 0:
        raise ValueError("a hold is never negative")
    now_held = held(view, coop.coop, member.did, currency)
    after = available(view, coop.coop, member.did, currency) - amount
    if after < -limit:
        spec = coop.currencies[currency]
        return Refusal(
            Code.CREDIT_LIMIT_EXCEEDED,
            f"holding {spec.show(amount)} would leave {spec.show(after)} available,"
            f" below the credit limit of {format_amount(-limit, spec.decimals)}",
        )
    return HeldRecord(did=member.did, currency=currency, amount=now_held + amount)


def release(view: CoopView, coop: str, did: str, currency: str, amount: int) -> HeldRecord:
    """Take ``amount`` back off hold: the account's new :class:`HeldRecord`. A holder releases
    exactly what it placed, once; more than the account holds is a bug, never a state."""
    now_held = held(view, coop, did, currency)
    if amount < 0 or amount > now_held:
        raise ValueError(f"releasing {amount} of a hold of {now_held}")
    return HeldRecord(did=did, currency=currency, amount=now_held - amount)
