"""Replicas' answers: commit–reveal, who votes, and when they settle a task.

An executor first commits to its answer, then reveals it, so no executor can
copy another's. The commitment binds the task and the executor (a copied
commitment does not open for its copier) and a random salt (so a small output
cannot be found by hashing guesses against someone else's commitment).

Every answer that is judged was committed before any answer of the task was
revealed: reveals wait until every placed executor has committed, and from the
first reveal on nobody is placed on the task any more. An executor placed
after a reveal could copy what it sees (and alone decide between two revealed
answers), so the tie-breaker is not placed after a disagreement: it is placed
with the replicas at submission (:func:`voters`), when the coop has one more
executor free, and commits before anyone reveals.

Answers agree when they are identical (outcome, output hash, fuel): fuel is
part of it, because it is what the task is charged and two honest runs under
the same wasmtime version and settings consume the same fuel. An answer given
by ``replicas`` executors that are a strict majority of the answers revealed
settles the task; the others are the dissenters. Otherwise the task is
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
    """How a task's revealed answers settle: ``answer`` is set when they agree enough;
    ``dissenting`` are the executors whose answers lost (every one when unresolved)."""

    answer: Answer | None = None
    agreeing: tuple[str, ...] = ()
    dissenting: tuple[str, ...] = ()
    unresolved: bool = False


def voters(replicas: int, free: int) -> int:
    """How many executors a task asking for ``replicas`` is placed on when ``free``
    executors can take it: one more than asked (the tie-breaker, committed before any
    reveal) when it asks for two or more and one is free; else what it asks for."""
    if replicas < 1:
        raise ValueError("replicas is at least 1")
    return replicas + 1 if replicas >= 2 and free > replicas else replicas


def judge(answers: Mapping[str, Answer], replicas: int) -> Verdict:
    """The verdict on the revealed ``answers`` (by executor) of a task run ``replicas``
    times, once no more answers can come: an answer given by at least ``replicas``
    executors that are a strict majority of ``answers`` settles it, else it is unresolved."""
    if replicas < 1:
        raise ValueError("replicas is at least 1")
    if not answers:
        return Verdict(unresolved=True)
    counts = Counter(answers.values())
    top, votes = max(counts.items(), key=lambda item: (item[1], _order(item[0])))
    if votes >= replicas and votes * 2 > len(answers):
        return Verdict(
            answer=top,
            agreeing=tuple(sorted(e for e, a in answers.items() if a == top)),
            dissenting=tuple(sorted(e for e, a in answers.items() if a != top)),
        )
    return Verdict(unresolved=True, dissenting=tuple(sorted(answers)))


def _order(answer: Answer) -> tuple[str, str, int]:
    """A total order on answers, so a tie never depends on dict order (ties never settle)."""
    return (str(answer.outcome), answer.output_hash, -answer.fuel)
