"""Typed amounts are exact, and demurrage charges only what lies above the threshold."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from icn.domain.coop.records import DAY_MS, DemurragePolicy
from icn.domain.events.canonical import MAX_SAFE_INT
from icn.domain.ledger.amounts import AmountError, format_amount, parse_amount
from icn.domain.ledger.demurrage import Charge, charges, periods_due


@pytest.mark.parametrize(
    ("text", "decimals", "units"),
    [("2.5", 2, 250), ("2.50", 2, 250), ("0.01", 2, 1), ("7", 0, 7), ("3.000", 2, 300)],
)
def test_amounts_parse_exactly(text: str, decimals: int, units: int) -> None:
    assert parse_amount(text, decimals) == units


@pytest.mark.parametrize(
    ("text", "decimals"),
    [
        ("2.555", 2),
        ("0", 2),
        ("0.00", 2),
        ("-1", 2),
        ("1e3", 2),
        ("", 2),
        ("1.5", 0),
        ("9" * 17, 0),
    ],
)
def test_amounts_that_cannot_be_paid_exactly_are_refused(text: str, decimals: int) -> None:
    with pytest.raises(AmountError):
        parse_amount(text, decimals)


def test_the_largest_amount_is_2_53_minus_1_units() -> None:
    assert parse_amount(str(MAX_SAFE_INT), 0) == MAX_SAFE_INT
    with pytest.raises(AmountError):
        parse_amount(str(MAX_SAFE_INT + 1), 0)


@given(st.integers(1, MAX_SAFE_INT), st.integers(0, 8))
def test_format_and_parse_round_trip(units: int, decimals: int) -> None:
    assert parse_amount(format_amount(units, decimals), decimals) == units


def test_negative_balances_keep_their_sign() -> None:
    assert format_amount(-1_050, 2) == "-10.50"


def test_demurrage_charges_the_part_above_the_threshold_and_never_the_coop() -> None:
    policy = DemurragePolicy(rate_ppm=10_000, period_days=30, threshold=1_000)
    got = charges(policy, [("a", 11_000), ("b", 1_000), ("c", -500), ("coop", 50_000)], "coop")
    assert got == [Charge("a", 100)]


def test_only_whole_periods_that_have_passed_are_due() -> None:
    policy = DemurragePolicy(rate_ppm=1, period_days=7)
    start = 1_000
    assert periods_due(policy, None, start, start + 7 * DAY_MS - 1) == []
    assert periods_due(policy, None, start, start + 15 * DAY_MS) == [
        start + 7 * DAY_MS,
        start + 14 * DAY_MS,
    ]
    assert periods_due(policy, start + 14 * DAY_MS, start, start + 15 * DAY_MS) == []
