"""docs/spec/trust-standing-v1.md transcribed into plain Python, section by section.

An independent implementation of the spec (no NumPy, no code shared with
``icn.domain.trust``): the tests hold the node's implementation to it bit for
bit. If the two ever differ, one of them misreads the spec. Names follow the
spec's (M, P, w, W, t, s, kept), so a reader can check it line by line.
"""

from __future__ import annotations

import json
from typing import Any

from blake3 import blake3

# 1. Constants
PPM = 1_000_000
MASS = 2**40
ONE = 2**20
DAY = 86_400_000


# 2. Inputs
def members_of(members: list[dict[str, str]]) -> list[str]:
    """M: active members in byte order of their UTF-8 DIDs."""
    active = {m["did"] for m in members if m["status"] == "active"}
    return sorted(active, key=lambda d: d.encode())


def pretrusted_of(policy_pretrusted: list[str] | None, founders: list[str]) -> list[str]:
    """The pre-trusted set before it meets M (section 2.2 keeps only members)."""
    return policy_pretrusted if policy_pretrusted is not None else founders


def counted(
    attestations: list[dict[str, Any]], now: int, half_life_days: int
) -> list[tuple[str, str, int]]:
    """(truster, subject, weight) of the unrevoked, unexpired attestations; the member
    and self-edge conditions and weight > 0 are applied in :func:`standing`."""
    out = []
    for a in attestations:
        if a["revoked"]:
            continue
        if a["expires_ts"] is not None and not now < a["expires_ts"]:
            continue
        out.append(
            (
                a["truster"],
                a["subject"],
                weight(a["score_ppm"], now - a["recorded_ms"], half_life_days * DAY),
            )
        )
    return out


# 3. Decay and weight
def decay(age: int, H: int) -> int:
    if H == 0 or age <= 0:
        return ONE
    k = age // H
    r = age - k * H
    if k >= 20:
        return 0
    d = ONE // 2**k
    return d - (d * r) // (2 * H)


def weight(score_ppm: int, age: int, H: int) -> int:
    return score_ppm * decay(age, H) // ONE


# 4. The rounds
def standing(
    members: list[str],
    pretrusted: list[str],
    attestations: list[tuple[str, str, int]],
    alpha_ppm: int,
    rounds: int,
) -> list[int]:
    """Mass per member in the order of M; ``attestations``: (truster, subject, weight)."""
    M = sorted(set(members), key=lambda d: d.encode())
    n = len(M)
    if n == 0:
        return []
    pos = {d: i for i, d in enumerate(M)}
    P = sorted(pos[d] for d in set(pretrusted) if d in pos) or list(range(n))
    q = len(P)
    w: dict[tuple[int, int], int] = {}
    for a, b, x in attestations:
        if a in pos and b in pos and a != b and x > 0:
            w[(pos[a], pos[b])] = max(w.get((pos[a], pos[b]), 0), x)
    W = [0] * n
    for (i, _), x in w.items():
        W[i] += x

    def share(amount: int, t: list[int]) -> None:
        e = amount // q
        x = amount - e * q
        for k, i in enumerate(P):
            t[i] += e + (1 if k < x else 0)

    t = [0] * n
    share(MASS, t)
    for _ in range(rounds):
        s = [0] * n
        for (i, j), x in w.items():
            s[j] += t[i] * x // W[i]
        kept = [s[j] * (PPM - alpha_ppm) // PPM for j in range(n)]
        t = kept
        share(MASS - sum(kept), t)
    return t


# 5. Standing in ppm and the digest
def standing_ppm(mass: list[int]) -> list[int]:
    return [v * PPM // MASS for v in mass]


def digest(members: list[str], mass: list[int]) -> str:
    M = sorted(set(members), key=lambda d: d.encode())
    pairs = [[d, s] for d, s in zip(M, standing_ppm(mass), strict=True)]
    canonical = json.dumps(pairs, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return blake3(canonical.encode()).hexdigest()


# 6. Normalised standing
def typical(mass: list[int]) -> int:
    return max(1, sum(v * v for v in mass) // MASS)


def normalised(mass: list[int]) -> list[int]:
    return [min(PPM, v * PPM // typical(mass)) for v in mass]


# 7. Classes
def klass(normalised_ppm: int, policy: dict[str, Any]) -> str:
    if normalised_ppm >= policy["federated_ppm"]:
        return "federated"
    if normalised_ppm >= policy["partner_ppm"]:
        return "partner"
    if normalised_ppm >= policy["known_ppm"]:
        return "known"
    return "isolated"
