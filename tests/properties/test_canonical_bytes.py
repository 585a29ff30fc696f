"""msgspec's sorted encoding equals the spec's reference definition of canonical bytes."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from icn.domain.events.canonical import MAX_SAFE_INT, canonical_bytes, json_model_problem

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-MAX_SAFE_INT, max_value=MAX_SAFE_INT),
    st.text(alphabet=st.characters(exclude_categories=("Cs",))),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(
            st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=8),
            inner,
            max_size=5,
        ),
    ),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None)
@given(values)
def test_canonical_bytes_equal_sorted_compact_json(value: object) -> None:
    reference = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert canonical_bytes(value) == reference.encode()
    assert json_model_problem(value) is None


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_fractions_are_outside_the_model(x: float) -> None:
    assert json_model_problem({"score": x}) is not None


@given(st.integers(min_value=MAX_SAFE_INT + 1))
def test_integers_beyond_2_53_are_outside_the_model(n: int) -> None:
    assert json_model_problem([n]) is not None
    assert json_model_problem([-n]) is not None
