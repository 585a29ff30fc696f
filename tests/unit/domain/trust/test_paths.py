"""The path score finds the best product path within the hop limit, from both ends."""

from __future__ import annotations

from fractions import Fraction
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from icn.domain.trust.paths import best_path

NODES = "abcdefg"


def _adjacency(edges: dict[tuple[str, str], int]) -> tuple[dict, dict]:
    out: dict[str, dict[str, int]] = {}
    into: dict[str, dict[str, int]] = {}
    for (a, b), w in edges.items():
        out.setdefault(a, {})[b] = w
        into.setdefault(b, {})[a] = w
    return out, into


def _brute(edges: dict[tuple[str, str], int], s: str, t: str, hops: int) -> Fraction:
    best = Fraction(0)
    stack: list[tuple[str, Fraction, int]] = [(s, Fraction(1), 0)]
    while stack:
        u, score, k = stack.pop()
        if u == t and k > 0:
            best = max(best, score)
        if k == hops:
            continue
        for (a, b), w in edges.items():
            if a == u:
                stack.append((b, score * Fraction(w, 10**6), k + 1))
    return best


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.tuples(st.sampled_from(NODES), st.sampled_from(NODES)).filter(lambda e: e[0] != e[1]),
        st.integers(1, 1_000_000),
        max_size=20,
    ),
    st.sampled_from(NODES),
    st.sampled_from(NODES),
    st.integers(1, 4),
)
def test_best_path_matches_brute_force(
    edges: dict[tuple[str, str], int], s: str, t: str, hops: int
) -> None:
    if s == t:
        return
    out, into = _adjacency(edges)
    got = best_path(out, into, s, t, hops)
    want = _brute(edges, s, t, hops)
    if want * 10**6 < 1:
        assert got is None or got.score_ppm == 0
        return
    assert got is not None
    assert abs(Fraction(got.score_ppm, 10**6) - want) <= Fraction(hops + 1, 10**6)
    assert 1 <= len(got.path) <= hops
    assert got.path[0].truster == s and got.path[-1].subject == t
    assert all(x.subject == y.truster for x, y in pairwise(got.path))
    assert all(edges[(e.truster, e.subject)] == e.weight_ppm for e in got.path)


def test_a_longer_path_wins_when_its_product_is_higher() -> None:
    out, into = _adjacency({("a", "d"): 300_000, ("a", "b"): 900_000, ("b", "d"): 900_000})
    found = best_path(out, into, "a", "d", 3)
    assert found is not None and found.score_ppm == 810_000
    assert [e.subject for e in found.path] == ["b", "d"]
    assert best_path(out, into, "a", "d", 1).score_ppm == 300_000  # type: ignore[union-attr]
    assert best_path(out, into, "d", "a", 3) is None
