"""Placement's integer score: each term moves the ranking, the tie-break decides equals."""

from __future__ import annotations

from icn.domain.compute.placement import Candidate, place, score, tie_break
from icn.domain.compute.records import ExecutorRecord

TASK = "ab" * 32


def cand(
    node: str, *, trust: int = 0, cpu: int = 1000, open: int = 0, paid: int = 0, region: str = "eu"
) -> Candidate:
    ex = ExecutorRecord(node=node, cpu_millis=cpu, memory_mib=64, region=region, event="e")
    return Candidate(ex, trust, open, paid)


def test_each_term_counts_by_its_weight() -> None:
    trusted = cand("a", trust=1_000_000, region="us")
    local = cand("b", region="eu")
    assert place(TASK, [local, trusted], 1, "eu") == ["a"]  # standing 40 beats locality 20
    busy = cand("c", trust=1_000_000, open=1, paid=9, region="us")
    assert score(busy, "eu", 1000) == 40 * 1_000_000 + 0 + 0 + 10 * 100_000
    assert place(TASK, [busy, cand("d", region="eu")], 1, "eu") == ["d"]  # 30 + 20 + 10 > 41


def test_free_capacity_then_locality_then_economics_decide() -> None:
    assert place(TASK, [cand("a", open=1), cand("b")], 1, None) == ["b"]
    assert place(TASK, [cand("a", region="us"), cand("b")], 1, "eu") == ["b"]
    assert place(TASK, [cand("a", paid=1), cand("b")], 1, None) == ["b"]


def test_equal_scores_fall_to_the_hash_of_task_and_node_and_replicas_differ() -> None:
    nodes = [cand(n) for n in ("a", "b", "c")]
    chosen = place(TASK, nodes, 2, None)
    assert chosen == sorted(["a", "b", "c"], key=lambda n: tie_break(TASK, n))[:2]
    assert len(set(chosen)) == 2
    assert place(TASK, nodes, 5, None) == sorted(["a", "b", "c"], key=lambda n: tie_break(TASK, n))
