"""I-JSON shape rules every line must meet (spec section 2, RFC 7493).

Two parsers must never read two different events from one line, and no line
may make a reader recurse without bound. So an object with a repeated member
name, or nesting deeper than :data:`MAX_DEPTH` (objects and arrays; the
outermost value is level 1), is malformed, on every way in: HTTP bodies, NATS
messages and files.

How it is checked without a second full parse on the hot path: msgspec
decodes first (it stops deep input itself with ``RecursionError``, long before
the C stack is at risk); a walk of the decoded value measures the depth and
counts the members it kept. Every member name in the raw bytes ends in ``"``
followed by ``:``, and that pair can otherwise appear only inside a string,
so counting it in the raw bytes gives an upper bound on the members the line
holds. When the bound equals what msgspec kept, no name was repeated; only
when it does not (a repeat, or ``":`` inside some string) does the exact
check run, with the stdlib parser and a hook that sees every member.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_DEPTH = 64
_MEMBER_END = re.compile(rb'"[ \t\n\r]*:')


TOO_DEEP = f"nesting deeper than {MAX_DEPTH} levels"


def depth_and_members(value: Any, level: int = 1) -> tuple[int, int]:
    """The deepest level in ``value`` (``value`` itself at ``level``) and how many
    object members it holds in all. Iterative: the depth is what is being checked."""
    deepest, members = 0, 0
    level_items: list[Any] = [value]
    # Breadth first, one level at a time: only containers are kept, so a body
    # of plain fields costs one pass over its values.
    while level_items:
        below: list[Any] = []
        for item in level_items:
            kind = type(item)
            if kind is dict:
                members += len(item)
                below.extend(v for v in item.values() if type(v) is dict or type(v) is list)
            elif kind is list:
                below.extend(v for v in item if type(v) is dict or type(v) is list)
        deepest = level
        level += 1
        level_items = below
    return deepest, members


def member_names_upper_bound(raw: bytes) -> int:
    """How many member names ``raw`` can hold at most (see the module docstring)."""
    return len(_MEMBER_END.findall(raw))


def repeated_name(raw: bytes) -> str | None:
    """The first member name some object of ``raw`` repeats, or ``None``.

    Exact, and slower than the bound: call it only on a line whose depth was
    already checked (the stdlib parser recurses too).
    """
    repeats: list[str] = []

    def note_repeats(pairs: list[tuple[str, Any]]) -> None:
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen and not repeats:
                repeats.append(name)
            seen.add(name)

    try:
        json.loads(raw, object_pairs_hook=note_repeats)
    except (ValueError, RecursionError):
        return None  # not JSON at all: the caller's own decoder says why
    return repeats[0] if repeats else None


def shape_problem(raw: bytes, *, deepest: int, members: int) -> str | None:
    """Why ``raw`` breaks the I-JSON rules, or ``None``, given the depth and member
    count of what msgspec decoded from it (:func:`depth_and_members`)."""
    if deepest > MAX_DEPTH:
        return TOO_DEEP
    if member_names_upper_bound(raw) == members:
        return None
    name = repeated_name(raw)
    if name is not None:
        return f"an object repeats the member name {name!r}"
    return None


def value_shape_problem(raw: bytes, decoded: Any) -> str | None:
    """:func:`shape_problem` for any JSON value msgspec decoded from ``raw``."""
    deepest, members = depth_and_members(decoded)
    return shape_problem(raw, deepest=deepest, members=members)
