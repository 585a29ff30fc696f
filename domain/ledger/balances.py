"""Balances from ``ledger.EntryRecorded`` events (spec section 6).

A balance is credits minus debits per (currency, DID); every transaction
moves the same amount out of one account and into another, so each
currency's balances sum to zero by construction.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

Balances = dict[str, dict[str, int]]
"""currency -> DID -> balance in the currency's smallest unit."""


class BalanceSheet:
    """Running balances, fed one accepted entry body at a time."""

    def __init__(self) -> None:
        self._by_currency: defaultdict[str, defaultdict[str, int]] = defaultdict(
            lambda: defaultdict(int)
        )

    def apply(self, body: dict[str, Any]) -> None:
        """Apply an accepted entry's transactions."""
        for tx in body["transactions"]:
            accounts = self._by_currency[tx["currency"]]
            accounts[tx["from"]] -= tx["amount"]
            accounts[tx["to"]] += tx["amount"]

    def merge(self, changes: Balances) -> None:
        """Add another sheet's balances (``as_dict`` of the entries after these), keeping
        the order of first appearance: how a log summed in parts is summed whole."""
        for currency, accounts in changes.items():
            mine = self._by_currency[currency]
            for did, amount in accounts.items():
                mine[did] += amount

    def as_dict(self) -> Balances:
        """Plain dicts, ordered by first appearance (as JSON output shows them)."""
        return {cur: dict(accounts) for cur, accounts in self._by_currency.items()}

    def totals(self) -> dict[str, int]:
        """Sum per currency: always zero for a log that only moves money."""
        return {cur: sum(accounts.values()) for cur, accounts in self._by_currency.items()}
