"""Placement: which registered executors run a task, decided from the log alone.

Every node judging the task at its stream position ranks the same candidates
with the same integers: trust standing 40 %, free capacity 30 %, locality
20 %, economics 10 % (each term in ppm), ties broken by BLAKE3(task ‖ node),
so no author and no clock can steer the choice. A candidate is a registered
executor whose node is an active member (it is paid into its own account)
and that does not run the task already, so replicas come from different
executors.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from blake3 import blake3

from icn.domain.compute.records import ExecutorRecord
from icn.domain.coop.records import PPM

WEIGHTS = (40, 30, 20, 10)
"""Trust, free capacity, locality, economics: percent of the score."""
CORE_MILLIS = 1000
"""What one open task is counted to occupy of an executor's CPU."""


@dataclass(frozen=True)
class Candidate:
    """What placement reads about one executor."""

    executor: ExecutorRecord
    trust_ppm: int
    open: int
    """Tasks placed on it and not settled."""
    paid: int
    """Tasks it has been paid for: fewer ranks higher, spreading the coop's fees."""


def free_millis(c: Candidate) -> int:
    """CPU left on ``c`` once its open tasks are counted (never below 0)."""
    return max(0, c.executor.cpu_millis - CORE_MILLIS * c.open)


def score(c: Candidate, region: str | None, most_free: int) -> int:
    """The integer score of ``c`` for a task preferring ``region``; ``most_free``: the
    largest :func:`free_millis` among the candidates (capacity is relative to it)."""
    trust = max(0, min(PPM, c.trust_ppm))
    free = PPM * free_millis(c) // most_free if most_free else 0
    local = PPM if region is not None and c.executor.region == region else 0
    economics = PPM // (1 + c.paid)
    terms = (trust, free, local, economics)
    return sum(w * t for w, t in zip(WEIGHTS, terms, strict=True))


def tie_break(task: str, node: str) -> str:
    """BLAKE3(task ‖ node): the order among equal scores."""
    return blake3(f"{task}\n{node}".encode()).hexdigest()


def place(task: str, candidates: Iterable[Candidate], n: int, region: str | None) -> list[str]:
    """The ``n`` best candidates' nodes for ``task``, best first (fewer when there are fewer)."""
    found = list(candidates)
    most_free = max((free_millis(c) for c in found), default=0)
    ranked = sorted(
        found,
        key=lambda c: (-score(c, region, most_free), tie_break(task, c.executor.node)),
    )
    return [c.executor.node for c in ranked[:n]]
