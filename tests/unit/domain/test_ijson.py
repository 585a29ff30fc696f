"""I-JSON shape rules (spec section 2): depth and repeated member names, fast path and exact."""

from __future__ import annotations

import json
from typing import Any

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from icn.domain.events.ijson import MAX_DEPTH, TOO_DEEP, value_shape_problem

Scalar = st.one_of(st.none(), st.booleans(), st.integers(-(2**53), 2**53), st.text(max_size=8))
Names = st.text(alphabet='ab":\\ ', max_size=4)  # names that may hold '":' themselves
Json = st.recursive(
    Scalar,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(Names, inner, max_size=4),
    max_leaves=20,
)


def problem(raw: bytes) -> str | None:
    return value_shape_problem(raw, msgspec.json.decode(raw))


@given(Json)
def test_what_an_encoder_writes_has_no_shape_problem(value: Any) -> None:
    raw = json.dumps(value, ensure_ascii=False).encode()
    assert problem(raw) is None  # at most 20 leaves: never deeper than 64


@given(st.dictionaries(Names, Scalar, min_size=1, max_size=5), st.data())
def test_any_repeated_name_is_found(members: dict[str, Any], data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(sorted(members)))
    repeat = json.dumps({name: "first"})[1:-1].encode()
    raw = b"{" + repeat + b"," + json.dumps(members).encode()[1:]
    assert problem(raw) == f"an object repeats the member name {name!r}"


def test_depth_counts_objects_and_arrays_from_one() -> None:
    at_limit = b"[" * (MAX_DEPTH - 1) + b'{"a":1}' + b"]" * (MAX_DEPTH - 1)
    assert problem(at_limit) is None
    assert problem(b"[" + at_limit + b"]") == TOO_DEEP
