"""The path score: how well a person knows another through the people they trust.

For people only. A ring of Sybils vouching for each other at full marks has
path scores of 1.0 among themselves, and a single fooled member hands those
marks on to everyone who trusts them; so no permission ever reads this score
(decisions read :mod:`.standing`).

The best product of edge weights over paths of at most ``max_hops``, found
from both ends (half the hops forward from the source, the rest backward from
the target) so a query touches about degree^(hops/2) edges rather than
degree^hops. Products are exact integers scaled by 10^(6·max_hops), so ties
and orderings do not depend on float rounding, and neighbours are visited in
DID order so every node answers with the same path.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import pairwise

import msgspec

from icn.domain.coop.records import PPM

Adjacency = Mapping[str, Mapping[str, int]]
"""did → {neighbour did → weight in ppm}: out-edges (truster → subject) or in-edges."""


class PathEdge(msgspec.Struct, frozen=True):
    """One attestation on a path."""

    truster: str
    subject: str
    weight_ppm: int


class PathScore(msgspec.Struct, frozen=True):
    """The best path found and its score (the product of its weights, in ppm)."""

    score_ppm: int
    path: list[PathEdge]


_Reached = dict[str, tuple[int, tuple[str, ...]]]


def _reach(adjacency: Adjacency, start: str, hops: int, scale: int) -> _Reached:
    """Best scaled product to every DID within ``hops`` steps, with the DIDs on the way."""
    best: _Reached = {start: (scale, (start,))}
    frontier = dict(best)
    for _ in range(hops):
        improved: _Reached = {}
        for u in sorted(frontier):
            num, way = frontier[u]
            for v, w in sorted(adjacency.get(u, {}).items()):
                cand = num * w // PPM
                if cand > 0 and cand > best.get(v, (0, ()))[0]:
                    best[v] = improved[v] = (cand, (*way, v))
        frontier = improved
        if not frontier:
            break
    return best


def best_path(
    out_edges: Adjacency, in_edges: Adjacency, source: str, target: str, max_hops: int
) -> PathScore | None:
    """The best path from ``source`` to ``target`` within ``max_hops``, or ``None``."""
    if source == target:
        return PathScore(PPM, [])
    scale = PPM**max_hops
    ahead = _reach(out_edges, source, (max_hops + 1) // 2, scale)
    behind = _reach(in_edges, target, max_hops // 2, scale)
    found: tuple[int, tuple[str, ...]] | None = None
    for meet in sorted(ahead.keys() & behind.keys()):
        (f, fw), (b, bw) = ahead[meet], behind[meet]
        num = f * b // scale
        if num > 0 and (found is None or num > found[0]):
            found = (num, fw + tuple(reversed(bw))[1:])
    if found is None:
        return None
    num, way = found
    edges = [PathEdge(a, b, out_edges[a][b]) for a, b in pairwise(way)]
    return PathScore(num // PPM ** (max_hops - 1), edges)
