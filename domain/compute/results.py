"""Replicas' answers: commit–reveal, and when they settle a task.

An executor first commits to its answer, then reveals it, so no executor can
copy another's. The commitment binds the task and the executor (a copied
commitment does not open for its copier) and a random salt (so a small output
cannot be found by hashing guesses against someone else's commitment).

Replicas agree when every answer (outcome, output hash, fuel) is identical:
fuel is part of it, because it is what the task is charged and two honest runs
under the same wasmtime version and settings consume the same fuel. When the
first ``replicas`` answers differ, one more executor runs the task, up to
``2 × replicas + 1`` in all, and a strict majority of the answers settles it;
the others are the dissenters. No strict majority by then: the task is
unresolved.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from blake3 import blake3

from icn.domain.compute.abi import Outcome
from icn.domain.events.canonical import canonical_bytes

COMMITMENT_TAG = "icn-compute-commit-v1"


@dataclass(frozen=True)
class Answer:
    """What an executor revealed: the outcome, BLAKE3 of the output, the fuel."""

    outcome: Outcome
    output_hash: str
    fuel: int


def output_hash(output: bytes) -> str:
    """BLAKE3 of a run's output, lower-case hex."""
    return blake3(output).hexdigest()


def commitment_of(task: str, executor: str, answer: Answer, salt: str) -> str:
    """``compute.ResultCommitted``'s commitment: BLAKE3 of canonical
    ``[tag, task, executor, outcome, output_hash, fuel, salt]``."""
    row = [COMMITMENT_TAG, task, executor, str(answer.outcome), answer.output_hash, answer.fuel]
    return blake3(canonical_bytes([*row, salt])).hexdigest()


def opens(commitment: str, task: str, executor: str, answer: Answer, salt: str) -> bool:
    """True when a reveal of ``answer`` with ``salt`` by ``executor`` opens ``commitment``."""
    return commitment_of(task, executor, answer, salt) == commitment


@dataclass(frozen=True)
class Verdict:
    """Where a task's answers stand. ``answer`` is set once settled; ``dissenting`` are the
    executors whose answers lost; ``needs_another``: place one more executor."""

    answer: Answer | None = None
    agreeing: tuple[str, ...] = ()
    dissenting: tuple[str, ...] = ()
    needs_another: bool = False
    unresolved: bool = False


def max_executors(replicas: int) -> int:
    """How many executors a task may use in all before it is unresolved."""
    return 2 * replicas + 1


def judge(answers: Mapping[str, Answer], replicas: int) -> Verdict:
    """The verdict on the revealed ``answers`` (by executor) of a task run ``replicas`` times."""
    if replicas < 1:
        raise ValueError("replicas is at least 1")
    if len(answers) < replicas:
        return Verdict()
    counts = Counter(answers.values())
    top, votes = max(counts.items(), key=lambda item: (item[1], _order(item[0])))
    if len(counts) == 1 or (votes * 2 > len(answers) and len(answers) > replicas):
        return Verdict(
            answer=top,
            agreeing=tuple(sorted(e for e, a in answers.items() if a == top)),
            dissenting=tuple(sorted(e for e, a in answers.items() if a != top)),
        )
    if len(answers) < max_executors(replicas):
        return Verdict(needs_another=True)
    return Verdict(unresolved=True, dissenting=tuple(sorted(answers)))


def _order(answer: Answer) -> tuple[str, str, int]:
    """A total order on answers, so a tie never depends on dict order (ties never settle)."""
    return (str(answer.outcome), answer.output_hash, -answer.fuel)
