"""Amounts as people type and read them, converted exactly to smallest units.

``2.5`` hours with 2 decimals is 250 units; ``2.555`` is refused rather than
rounded, because a payment must move exactly what its payer typed. No floats
anywhere.
"""

from __future__ import annotations

import re

from icn.domain.coop.records import format_amount
from icn.domain.events.canonical import MAX_SAFE_INT

__all__ = ["AmountError", "format_amount", "parse_amount"]

_AMOUNT = re.compile(r"^(?P<int>[0-9]{1,16})(?:\.(?P<frac>[0-9]{1,18}))?$")


class AmountError(ValueError):
    """A typed amount that cannot be paid as given."""


def parse_amount(text: str, decimals: int) -> int:
    """Smallest units for ``text`` (``"2.5"`` with 2 decimals → 250); exact or an error."""
    m = _AMOUNT.match(text.strip())
    if m is None:
        raise AmountError(f"{text!r} is not an amount (digits, optionally a point and decimals)")
    frac = (m.group("frac") or "").rstrip("0")
    if len(frac) > decimals:
        raise AmountError(f"{text!r} has more than {decimals} decimal place(s) for this currency")
    units: int = int(m.group("int")) * 10**decimals + (
        int(frac.ljust(decimals, "0")) if decimals else 0
    )
    if units <= 0:
        raise AmountError("an amount must be greater than zero")
    if units > MAX_SAFE_INT:
        raise AmountError(f"{text!r} is above the largest amount ({MAX_SAFE_INT} units)")
    return units
