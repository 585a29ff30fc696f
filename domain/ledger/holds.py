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

import msgspec

from icn.domain.coop.records import CoopRecord, MemberRecord, Record, format_amount
from icn.domain.coop.state import CoopView, account_of
from icn.domain.ledger.credit import LimitBreakdown, credit_limit
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


class CreditRoom(msgspec.Struct, frozen=True, kw_only=True):
    """One member's credit in one currency, as the write path judges the next payment.

    The write path (payments, holds, contracts) and the read side (the balances
    document, the limit's terms, ``icn balance``, the dashboard) both take it from
    :func:`credit_room` over the coop rules' records, so what a member is shown as
    left is what the next payment is judged against, to the unit.
    """

    balance: int
    held: int
    limit: int
    """The credit limit now (0 where the coop gives no credit in the currency)."""
    terms: LimitBreakdown | None
    """Every term of the limit's formula (None: no credit policy for the currency)."""

    @property
    def used(self) -> int:
        """Credit the balance and the holds take up: max(0, held − balance)."""
        return max(0, self.held - self.balance)

    @property
    def available(self) -> int:
        """Credit left: the limit less what is used (below 0 when a lowered limit is
        exceeded)."""
        return self.limit - self.used

    @property
    def spendable(self) -> int:
        """The largest payment the credit check accepts now: balance − held + limit."""
        return self.balance - self.held + self.limit

    def allows(self, balance: int, held: int | None = None) -> bool:
        """Whether an account left at ``balance`` with ``held`` on hold (now's when None)
        stays within the limit: the credit check of every write."""
        return balance - (self.held if held is None else held) >= -self.limit


def credit_room(
    view: CoopView, coop: CoopRecord, member: MemberRecord, currency: str, now: int
) -> CreditRoom:
    """``member``'s balance, holds and credit limit in ``currency`` at ``now`` (trusted time
    on the write path, the node's clock on the read side): the one place both compute it."""
    account = account_of(view, coop.coop, member.did, currency)
    policy = coop.policy.credit.get(currency)
    terms = None
    if policy is not None:
        terms = credit_limit(
            policy,
            cleared_volume=account.cleared_volume,
            trust_ppm=view.trust_ppm(coop.coop, member.did),
            joined_ms=member.joined_ms,
            now_ms=now,
        )
    return CreditRoom(
        balance=account.balance,
        held=held(view, coop.coop, member.did, currency),
        limit=terms.limit if terms is not None else 0,
        terms=terms,
    )


def place(
    coop: CoopRecord, member: MemberRecord, currency: str, amount: int, room: CreditRoom
) -> HeldRecord | Refusal:
    """Hold ``amount`` more on ``member``'s account, if the account stays within its limit
    (``room``: :func:`credit_room` now); the account's new :class:`HeldRecord`."""
    if amount < 0:
        raise ValueError("a hold is never negative")
    if not room.allows(room.balance, room.held + amount):
        spec = coop.currencies[currency]
        after = room.balance - room.held - amount
        return Refusal(
            Code.CREDIT_LIMIT_EXCEEDED,
            f"holding {spec.show(amount)} would leave {spec.show(after)} available,"
            f" below the credit limit of {format_amount(-room.limit, spec.decimals)}",
        )
    return HeldRecord(did=member.did, currency=currency, amount=room.held + amount)


def release(view: CoopView, coop: str, did: str, currency: str, amount: int) -> HeldRecord:
    """Take ``amount`` back off hold: the account's new :class:`HeldRecord`. A holder releases
    exactly what it placed, once; more than the account holds is a bug, never a state."""
    now_held = held(view, coop, did, currency)
    if amount < 0 or amount > now_held:
        raise ValueError(f"releasing {amount} of a hold of {now_held}")
    return HeldRecord(did=did, currency=currency, amount=now_held - amount)
