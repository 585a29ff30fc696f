"""The Sybil experiment of docs/trust.md: a ring of 1,000 Sybils stays under 1 % of standing.

An attacker fooled admins into admitting 1,000 DIDs that all vouch for each
other at full marks, and fooled 10 honest members into vouching for one Sybil
each. Path scores from those 10 members to any Sybil are then perfect; standing
leaks into the ring only through the 10 attack edges and drains out at every
round through α, so the ring's share stays small.
"""

from __future__ import annotations

import random

from icn.domain.coop.records import TrustPolicy
from icn.domain.trust.classes import TrustClass, classify
from icn.domain.trust.paths import best_path
from icn.domain.trust.standing import MASS, Edge, compute

HONEST, DEGREE, SYBILS, ATTACK_EDGES = 500, 15, 1_000, 10


def test_sybils_get_under_one_percent_of_standing_but_full_path_scores() -> None:
    rng = random.Random(2026)
    honest = [f"did:key:zHonest{i:04d}" for i in range(HONEST)]
    sybils = [f"did:key:zSybil{i:04d}" for i in range(SYBILS)]
    founders = honest[:5]
    edges = [
        Edge(a, b, rng.randint(500_000, 1_000_000))
        for a in honest
        for b in rng.sample(honest, DEGREE)
        if a != b
    ]
    edges += [Edge(a, b, 1_000_000) for a in sybils for b in sybils if a != b]
    fooled = rng.sample(honest[5:], ATTACK_EDGES)
    edges += [Edge(a, sybils[i], 1_000_000) for i, a in enumerate(fooled)]

    standing = compute(honest + sybils, founders, edges, alpha_ppm=150_000, iterations=100)

    mass = dict(zip(standing.members, standing.mass, strict=True))
    share = sum(mass[s] for s in sybils) / MASS
    assert share < 0.01, f"Sybils hold {share:.2%} of standing"
    policy = TrustPolicy()
    classes = dict(zip(standing.members, standing.normalised_ppm(), strict=True))
    assert all(classify(classes[s], policy) is TrustClass.ISOLATED for s in sybils)
    honest_known = sum(classify(classes[h], policy) is not TrustClass.ISOLATED for h in honest)
    assert honest_known > 0.95 * HONEST
    assert all(classify(classes[f], policy) is TrustClass.FEDERATED for f in founders)

    out: dict[str, dict[str, int]] = {}
    into: dict[str, dict[str, int]] = {}
    for e in edges:
        out.setdefault(e.truster, {})[e.subject] = e.weight
        into.setdefault(e.subject, {})[e.truster] = e.weight
    far_sybil = sybils[-1]  # two hops from every fooled member
    scores = [best_path(out, into, f, far_sybil, 3) for f in fooled]
    assert all(s is not None and s.score_ppm == 1_000_000 for s in scores)
