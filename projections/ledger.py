"""The ledger's read models: balances, history and coop totals, from ``ledger.EntryRecorded``.

Spec section 6: every change of a balance is a transaction of a
``ledger.EntryRecorded``, so these three projections read nothing else. Each
is pure (event in, row changes out) and has its own tracking position.
"""

from __future__ import annotations

from typing import Any

from icn.domain.events.bodies import ENTRY_RECORDED
from icn.projections.ports import AppendTable, Changes, Fact, Projection, SumTable

MAX_TRANSACTIONS = 64
"""Spec section 6: an entry holds 1 to 64 transactions, so a row's cursor is
leaf × 64 + transaction index: one integer, in log order."""

BALANCES = SumTable(
    "ledger_balances",
    key=("coop", "did", "currency"),
    values=("balance", "cleared_volume", "debited_volume", "entries"),
)
HISTORY = AppendTable(
    "ledger_history",
    key=("coop", "did", "cursor"),
    values=("counterparty", "amount", "currency", "memo", "ts"),
)
"""A member's side of a transaction. No event id: the cursor names the entry's leaf,
whose id the log holds (the store reads it from there)."""
TOTALS = SumTable(
    "ledger_totals",
    key=("coop", "currency"),
    values=("volume", "transactions", "entries"),
)


def cursor_of(leaf: int, tx: int) -> int:
    """The history cursor of transaction ``tx`` of the entry at ``leaf``."""
    return leaf * MAX_TRANSACTIONS + tx


def leaf_of(cursor: int) -> tuple[int, int]:
    """(leaf index, transaction index) of a history cursor."""
    return divmod(cursor, MAX_TRANSACTIONS)


def _transactions(event: Fact) -> list[dict[str, Any]]:
    txs: list[dict[str, Any]] = event.body["transactions"]
    return txs


class Balances:
    """Balance, cleared volume (credited), debited volume and entry count per account."""

    name = "ledger.balances"
    tables = (BALANCES,)

    def apply(self, leaf: int, event: Fact, changes: Changes) -> None:
        if event.type != ENTRY_RECORDED:
            return
        coop = event.coop
        seen: set[tuple[str, str]] = set()  # the first touch of an account counts the entry
        for tx in _transactions(event):
            amount, currency, payer, payee = tx["amount"], tx["currency"], tx["from"], tx["to"]
            first = (payer, currency) not in seen
            seen.add((payer, currency))
            changes.add(BALANCES, (coop, payer, currency), (-amount, 0, amount, int(first)))
            first = (payee, currency) not in seen
            seen.add((payee, currency))
            changes.add(BALANCES, (coop, payee, currency), (amount, amount, 0, int(first)))


class History:
    """One row per (account, transaction): the payer's (negative) and the payee's."""

    name = "ledger.history"
    tables = (HISTORY,)

    def apply(self, leaf: int, event: Fact, changes: Changes) -> None:
        if event.type != ENTRY_RECORDED:
            return
        coop, ts = event.coop, event.ts
        for i, tx in enumerate(_transactions(event)):
            cursor = cursor_of(leaf, i)
            amount, currency, memo = tx["amount"], tx["currency"], tx.get("memo")
            payer, payee = tx["from"], tx["to"]
            changes.insert(HISTORY, (coop, payer, cursor, payee, -amount, currency, memo, ts))
            changes.insert(HISTORY, (coop, payee, cursor, payer, amount, currency, memo, ts))


class Totals:
    """Per coop and currency: units moved, transactions, entries."""

    name = "ledger.totals"
    tables = (TOTALS,)

    def apply(self, leaf: int, event: Fact, changes: Changes) -> None:
        if event.type != ENTRY_RECORDED:
            return
        per_currency: dict[str, list[int]] = {}
        for tx in _transactions(event):
            sums = per_currency.setdefault(tx["currency"], [0, 0])
            sums[0] += tx["amount"]
            sums[1] += 1
        for currency, (volume, count) in per_currency.items():
            changes.add(TOTALS, (event.coop, currency), (volume, count, 1))


LEDGER_PROJECTIONS: tuple[Projection, ...] = (Balances(), History(), Totals())
"""Every projection of the ledger, in the order a runner applies them."""
