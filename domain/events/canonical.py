"""Canonical bytes (spec section 2): RFC 8785 restricted to safe integers.

For JSON made only of strings, integers, booleans, null, arrays and objects,
msgspec's sorted encoding *is* JCS, and it runs in C; so the rule here is
"check the value is in the restricted model, then let msgspec write it".
"""

from __future__ import annotations

from typing import Any

import msgspec

MAX_SAFE_INT = 2**53 - 1
_encoder = msgspec.json.Encoder(order="sorted")


def canonical_bytes(value: Any) -> bytes:
    """Canonical JSON bytes of a value already known to be in the model."""
    return _encoder.encode(value)


def json_model_problem(value: Any, path: str = "$") -> str | None:
    """Why ``value`` falls outside spec section 2's model, or ``None`` if it fits.

    Floats are refused (fractions are ppm integers), integers must satisfy
    |n| <= 2^53 - 1 so every language reads them exactly.
    """
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        kind = type(item)
        if kind is str or kind is bool or item is None:
            continue
        if kind is int:
            if -MAX_SAFE_INT <= item <= MAX_SAFE_INT:
                continue
            return f"integer out of range (|n| > 2^53-1) at `{where}`"
        if kind is dict:
            stack.extend((v, f"{where}.{k}") for k, v in item.items())
            continue
        if kind is list:
            stack.extend((v, f"{where}[{i}]") for i, v in enumerate(item))
            continue
        if kind is float:
            return f"numbers must be integers, got a fraction at `{where}`"
        return f"unsupported JSON value at `{where}`"
    return None
