"""The credit limit: how far below zero one member may go in one currency.

All integer arithmetic (fractions in ppm, floor division), so every node
that replays the same log computes the same limit, to the unit.
"""

from __future__ import annotations

import msgspec

from icn.domain.coop.records import DAY_MS, PPM, CreditPolicy


class LimitBreakdown(msgspec.Struct, frozen=True, kw_only=True):
    """Each term of the formula, so a member can see why the limit is what it is."""

    baseline: int
    trust_ppm: int
    trust_bonus: int
    cleared_volume: int
    history_bonus: int
    formula_limit: int
    max_limit: int
    full_limit: int
    """min(formula, max_limit): the limit once the new-member ramp is over."""
    ramp_days: int
    days_since_joining: int
    limit: int
    """What applies now: below ``full_limit`` while the ramp lasts."""


def credit_limit(
    policy: CreditPolicy,
    *,
    cleared_volume: int,
    trust_ppm: int,
    joined_ms: int | None,
    now_ms: int,
) -> LimitBreakdown:
    """The limit at ``now_ms`` with every term of the formula.

    ``trust_ppm`` is the member's trust score in ppm (0 until trust scores
    exist). The ramp grows linearly from ``initial_limit`` at admission to the
    full limit after ``ramp_days``; a ramp never raises a limit above the
    full one.
    """
    trust = max(0, min(PPM, trust_ppm))
    trust_bonus = policy.baseline * trust * policy.trust_multiplier_ppm // (PPM * PPM)
    history_bonus = cleared_volume * policy.history_rate_ppm // PPM
    formula = policy.baseline + trust_bonus + history_bonus
    full = min(formula, policy.max_limit)
    elapsed = max(0, now_ms - joined_ms) if joined_ms is not None else 0
    ramp_ms = policy.ramp_days * DAY_MS
    limit = full
    if ramp_ms and elapsed < ramp_ms:
        start = min(policy.initial_limit, full)
        limit = start + (full - start) * elapsed // ramp_ms
    return LimitBreakdown(
        baseline=policy.baseline,
        trust_ppm=trust,
        trust_bonus=trust_bonus,
        cleared_volume=cleared_volume,
        history_bonus=history_bonus,
        formula_limit=formula,
        max_limit=policy.max_limit,
        full_limit=full,
        ramp_days=policy.ramp_days,
        days_since_joining=elapsed // DAY_MS,
        limit=limit,
    )
