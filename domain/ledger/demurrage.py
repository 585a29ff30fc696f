"""Demurrage: a periodic charge on balances above a threshold, paid to the coop account.

It is computed, never stored as a rate on balances: the charge is an
ordinary ``ledger.EntryRecorded`` signed by the coop's DID, so Σ balances
stays 0 and anyone can recount it from the log.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from icn.domain.coop.records import DAY_MS, PPM, DemurragePolicy


class Charge(msgspec.Struct, frozen=True):
    """What one account pays for one period."""

    did: str
    amount: int


def periods_due(
    policy: DemurragePolicy, charged_until: int | None, founded_ms: int, now_ms: int
) -> list[int]:
    """Ends of the whole periods that have passed and not been charged, oldest first."""
    period = policy.period_days * DAY_MS
    start = charged_until if charged_until is not None else founded_ms
    ends: list[int] = []
    end = start + period
    while end <= now_ms and len(ends) < 1000:
        ends.append(end)
        end += period
    return ends


def charges(
    policy: DemurragePolicy, balances: Iterable[tuple[str, int]], coop_did: str
) -> list[Charge]:
    """One period's charges: ``rate_ppm`` of each positive balance's part above the threshold."""
    out: list[Charge] = []
    for did, balance in balances:
        if did == coop_did or balance <= policy.threshold:
            continue
        amount = (balance - policy.threshold) * policy.rate_ppm // PPM
        if amount > 0:
            out.append(Charge(did, amount))
    return out
