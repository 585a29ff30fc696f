"""docs/spec/trust-standing-v1.md transcribed into plain Python, line by line.

An independent implementation of the spec (no NumPy, no code shared with
``icn.domain.trust.standing``): the tests hold the node's implementation to
it bit for bit. If the two ever differ, one of them misreads the spec.
"""

from __future__ import annotations

from blake3 import blake3

PPM = 1_000_000
MASS = 2**40


def decay(age_ms: int, half_life_ms: int) -> int:
    if half_life_ms == 0 or age_ms <= 0:
        return 2**20
    k = age_ms // half_life_ms
    r = age_ms - k * half_life_ms
    if k >= 20:
        return 0
    d = 2**20 // 2**k
    return d - (d * r) // (2 * half_life_ms)


def standing(
    members: list[str],
    pretrusted: list[str],
    attestations: list[tuple[str, str, int]],
    alpha_ppm: int,
    rounds: int,
) -> list[int]:
    """Mass per member in DID order; ``attestations``: (truster, subject, weight)."""
    m = sorted(set(members))
    n = len(m)
    pos = {d: i for i, d in enumerate(m)}
    p = sorted(pos[d] for d in set(pretrusted) if d in pos) or list(range(n))
    w: dict[tuple[int, int], int] = {}
    for a, b, x in attestations:
        if a in pos and b in pos and a != b and x > 0:
            w[(pos[a], pos[b])] = max(w.get((pos[a], pos[b]), 0), x)
    out = [0] * n
    for (i, _), x in w.items():
        out[i] += x

    def teleport(t: list[int], amount: int) -> None:
        for k, i in enumerate(p):
            t[i] += amount // len(p) + (1 if k < amount % len(p) else 0)

    t = [0] * n
    teleport(t, MASS)
    for _ in range(rounds):
        s = [0] * n
        for (i, j), x in w.items():
            s[j] += t[i] * x // out[i]
        t = [v * (PPM - alpha_ppm) // PPM for v in s]
        teleport(t, MASS - sum(t))
    return t


def digest(members: list[str], mass: list[int]) -> str:
    ordered = zip(sorted(set(members)), mass, strict=True)
    pairs = ",".join(f'["{d}",{v * PPM // MASS}]' for d, v in ordered)
    return blake3(f"[{pairs}]".encode()).hexdigest()
