"""Standing: EigenTrust with a pre-trusted set, in integer fixed point.

Decisions read standing, so it must come out bit for bit the same on every
node and for every auditor: every quantity is an integer, every division a
floor, the members are in DID order, and the number of rounds is fixed by
policy rather than by a convergence test. Rounding never loses mass: what a
floor leaves over returns to the pre-trusted set, so the total is exactly
:data:`MASS` after every round. docs/spec/trust-standing-v1.md states the
same algorithm for an independent implementation; the unit tests hold this
one to a plain-Python transcription of the spec.

NumPy runs the rounds: products stay below 2^61 (mass < 2^41 times weights
<= 10^6 < 2^20), so int64 arithmetic is exact and its sums are associative.
It is imported when standing is computed, not with the domain: verifying an
event needs only msgspec, PyNaCl and BLAKE3.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from blake3 import blake3

from icn.domain.coop.records import PPM
from icn.domain.events.canonical import canonical_bytes

if TYPE_CHECKING:
    import numpy as np

MASS = 1 << 40
"""The total standing, in units; about 10^12, so one member of 10,000 holds ~10^8."""
DECAY_ONE = 1 << 20
"""Fixed-point 1.0 of the decay factor."""
DAY_MS = 86_400_000


def decay_q20(age_ms: int, half_life_ms: int) -> int:
    """``2^(-age / half_life)`` in units of 2^-20, exactly as the spec states it.

    Whole half-lives halve by shifting; within one, the factor falls linearly to
    the next halving (a chord of the exponential, at most 6 % above it), so the
    result is an integer function of two integers. Zero after 20 half-lives.
    """
    if half_life_ms == 0 or age_ms <= 0:
        return DECAY_ONE
    halvings, rest = divmod(age_ms, half_life_ms)
    if halvings >= 20:
        return 0
    start = DECAY_ONE >> halvings
    return start - (start * rest) // (2 * half_life_ms)


def edge_weight(score_ppm: int, recorded_ms: int, now_ms: int, half_life_days: int) -> int:
    """An attestation's weight at ``now_ms``: its score times its decay, floored."""
    return (score_ppm * decay_q20(now_ms - recorded_ms, half_life_days * DAY_MS)) >> 20


class Edge(NamedTuple):
    """One live attestation as the computation sees it (a tuple: an epoch builds 100,000
    of them, and a frozen dataclass took 250 ms of it)."""

    truster: str
    subject: str
    weight: int
    """Score × decay (:func:`edge_weight`), 0 to 1,000,000."""


@dataclass(frozen=True)
class Standing:
    """The outcome of one computation: every member's mass, in DID order."""

    members: tuple[str, ...]
    mass: tuple[int, ...]
    """Sums to exactly :data:`MASS`."""

    def standing_ppm(self) -> list[int]:
        """Each member's share of the total, in ppm (floored): what the digest covers."""
        return [m * PPM // MASS for m in self.mass]

    def typical(self) -> int:
        """The standing of a typical member: the mean weighted by standing, Σt² / Σt.

        Not the plain mean (MASS / n): a crowd that nobody trusts (newcomers, or
        a thousand Sybils) would drag that down and lift everyone else's class,
        the attackers' accomplices first. Members holding no standing add
        nothing to this mean.
        """
        return max(1, sum(m * m for m in self.mass) // MASS)

    def normalised_ppm(self) -> list[int]:
        """Each member's standing against a typical member's (:meth:`typical`), capped at 1.0."""
        ref = self.typical()
        return [min(PPM, m * PPM // ref) for m in self.mass]

    def pairs(self) -> list[list[str | int]]:
        """``[did, standing_ppm]`` for every member, sorted by DID."""
        return [[d, s] for d, s in zip(self.members, self.standing_ppm(), strict=True)]

    def digest(self) -> str:
        """BLAKE3 of the canonical JSON of :meth:`pairs`: what an epoch publishes."""
        return blake3(canonical_bytes(self.pairs())).hexdigest()


def share_out(amount: int, among: int) -> list[int]:
    """``amount`` split over ``among`` takers in order; the first ``amount % among`` get 1 more."""
    each, extra = divmod(amount, among)
    return [each + 1 if i < extra else each for i in range(among)]


def compute(
    members: Iterable[str],
    pretrusted: Iterable[str],
    edges: Iterable[Edge],
    *,
    alpha_ppm: int,
    iterations: int,
) -> Standing:
    """Run the spec's rounds: ``t ← (1 − α)·Cᵀt + (what is left over) on p``.

    ``members``: who has a standing (the coop's active members); edges between
    anyone else, self-edges and zero weights are ignored. ``pretrusted`` outside
    ``members`` is ignored; if none is left, every member is pre-trusted.
    """
    import numpy as np

    dids = sorted(set(members))
    n = len(dids)
    if n == 0:
        return Standing((), ())
    index = {d: i for i, d in enumerate(dids)}
    trusted = sorted({index[d] for d in pretrusted if d in index}) or list(range(n))
    src, dst, weight = _edge_arrays(index, edges)
    out_sum = np.zeros(n, dtype=np.int64)
    np.add.at(out_sum, src, weight)
    starts = np.flatnonzero(np.r_[True, dst[1:] != dst[:-1]]) if len(dst) else dst
    receivers = dst[starts]
    p = np.array(trusted, dtype=np.int64)

    t = np.zeros(n, dtype=np.int64)
    t[p] = share_out(MASS, len(trusted))
    keep_ppm = PPM - alpha_ppm
    for _ in range(iterations):
        inflow = np.zeros(n, dtype=np.int64)
        if len(dst):
            flows = t[src] * weight // out_sum[src]
            inflow[receivers] = np.add.reduceat(flows, starts)
        kept = inflow * keep_ppm // PPM
        t = kept
        t[p] += share_out(MASS - int(kept.sum()), len(trusted))
    return Standing(tuple(dids), tuple(int(x) for x in t))


Arrays = tuple["np.ndarray", "np.ndarray", "np.ndarray"]


def _edge_arrays(index: dict[str, int], edges: Iterable[Edge]) -> Arrays:
    """(truster, subject, weight) columns sorted by subject then truster, one row per
    pair (the larger weight, should a caller pass a pair twice), members only."""
    import numpy as np

    src_l: list[int] = []
    dst_l: list[int] = []
    w_l: list[int] = []
    for e in edges:
        a, b = index.get(e.truster), index.get(e.subject)
        if a is not None and b is not None and a != b and e.weight > 0:
            src_l.append(a)
            dst_l.append(b)
            w_l.append(e.weight)
    src, dst, weight = (np.array(x, dtype=np.int64) for x in (src_l, dst_l, w_l))
    order = np.lexsort((weight, src, dst))
    src, dst, weight = src[order], dst[order], weight[order]
    last = np.r_[(dst[1:] != dst[:-1]) | (src[1:] != src[:-1]), True] if len(dst) else dst > 0
    return src[last], dst[last], weight[last]
