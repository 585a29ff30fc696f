"""Standing is EigenTrust that every replica and auditor computes bit for bit the same."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from icn.domain.trust.standing import (
    DAY_MS,
    DECAY_ONE,
    MASS,
    Edge,
    compute,
    decay_q20,
    edge_weight,
)

from .spec_reference import decay as spec_decay
from .spec_reference import digest as spec_digest
from .spec_reference import standing as spec_standing

DIDS = [f"did:key:z{i:04d}" for i in range(12)]


@st.composite
def graphs(draw: st.DrawFn) -> tuple[list[str], list[str], list[Edge], int, int]:
    members = draw(st.lists(st.sampled_from(DIDS), min_size=1, max_size=12, unique=True))
    pretrusted = draw(st.lists(st.sampled_from(DIDS), max_size=4))
    edges = draw(
        st.lists(
            st.builds(
                Edge,
                st.sampled_from(DIDS),
                st.sampled_from(DIDS),
                st.integers(0, 1_000_000),
            ),
            max_size=40,
        )
    )
    return members, pretrusted, edges, draw(st.integers(1, 999_999)), draw(st.integers(1, 60))


@settings(max_examples=150, deadline=None)
@given(graphs())
def test_the_node_computes_what_the_spec_says_bit_for_bit(
    g: tuple[list[str], list[str], list[Edge], int, int],
) -> None:
    members, pretrusted, edges, alpha, rounds = g
    got = compute(members, pretrusted, edges, alpha_ppm=alpha, iterations=rounds)
    want = spec_standing(
        members, pretrusted, [(e.truster, e.subject, e.weight) for e in edges], alpha, rounds
    )
    assert list(got.mass) == want
    assert sum(got.mass) == MASS  # rounding never loses or makes standing
    assert got.digest() == spec_digest(members, want)


@given(st.integers(-DAY_MS, 10**13), st.integers(0, 10**11))
def test_decay_is_the_spec_s_integer_chord_and_never_rises(age: int, half_life: int) -> None:
    d = decay_q20(age, half_life)
    assert d == spec_decay(age, half_life)
    assert 0 <= d <= DECAY_ONE
    assert decay_q20(age + 1, half_life) <= d


def test_decay_halves_every_half_life() -> None:
    hl = 180 * DAY_MS
    assert decay_q20(hl, hl) == DECAY_ONE // 2
    assert decay_q20(3 * hl, hl) == DECAY_ONE // 8
    assert decay_q20(20 * hl, hl) == 0
    assert edge_weight(800_000, 0, 180 * DAY_MS, 180) == 400_000
    assert edge_weight(800_000, 0, 10**15, 0) == 800_000  # half-life 0: no decay


def test_order_of_input_does_not_change_the_outcome() -> None:
    rng = random.Random(7)
    edges = [Edge(rng.choice(DIDS), rng.choice(DIDS), rng.randint(1, 10**6)) for _ in range(60)]
    a = compute(DIDS, DIDS[:2], edges, alpha_ppm=150_000, iterations=30)
    shuffled = edges[:]
    rng.shuffle(shuffled)
    b = compute(list(reversed(DIDS)), DIDS[1::-1], shuffled, alpha_ppm=150_000, iterations=30)
    assert a == b


def test_no_pretrusted_member_left_means_everyone_is_pretrusted() -> None:
    s = compute(DIDS[:4], ["did:key:zgone"], [], alpha_ppm=150_000, iterations=5)
    assert s.mass == (MASS // 4,) * 4


def test_a_member_nobody_trusts_has_no_standing_and_is_isolated() -> None:
    founders = DIDS[:2]
    edges = [Edge(DIDS[0], DIDS[2], 900_000), Edge(DIDS[2], DIDS[0], 500_000)]
    s = compute(DIDS[:4], founders, edges, alpha_ppm=150_000, iterations=50)
    by_did = dict(zip(s.members, s.normalised_ppm(), strict=True))
    assert by_did[DIDS[3]] == 0
    assert by_did[DIDS[2]] > 0
