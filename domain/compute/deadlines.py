"""When a task that is not answered stops waiting: the coop's deadlines, in trusted time.

An executor that never commits or reveals must not hold the payer's credit for
ever. Each placement gives the placed executors the task's ``step_ms`` (from
the trusted time they were placed) to answer; past it, the coop's duty
re-places the ones that stalled on other executors, or, once answers are
revealed, drops them and judges the answers in (``compute.TaskReplaced``).
The task's ``final_ms`` after submission a task still running expires
(``compute.TaskExpired``): nobody is paid and the whole hold is released. Both
figures are the coop's policy (``compute.replace_after_seconds``,
``compute.expire_after_seconds``) as it stood when the task was submitted,
kept in the task's record; every replica computes the same deadlines from the
log (the task's trusted times), never from a clock.
"""

from __future__ import annotations

from icn.domain.compute.task_records import TaskRecord, TaskState
from icn.domain.coop.records import ComputePolicy

STEP_MS = ComputePolicy().replace_after_seconds * 1000
"""The default of how long the executors placed last have to answer: 10 minutes."""
FINAL_MS = ComputePolicy().expire_after_seconds * 1000
"""The default of how long a task may run in all: 1 hour from its submission."""

REPLACE = "replace"
EXPIRE = "expire"


def due_ms(t: TaskRecord) -> int:
    """When the executors placed last must have revealed."""
    return t.due_ms if t.due_ms is not None else t.submitted_ms + t.step_ms


def expires_ms(t: TaskRecord) -> int:
    """When a task still running expires."""
    return t.submitted_ms + t.final_ms


def next_ms(t: TaskRecord) -> int:
    """The earlier of the two deadlines: when the duty next has something to do about ``t``."""
    return min(due_ms(t), expires_ms(t))


def sealed(t: TaskRecord) -> bool:
    """True once an answer is revealed: from then on nobody is placed on the task, since a
    newcomer could copy what is revealed; only those placed before vote."""
    return bool(t.answers)


def stalled(t: TaskRecord) -> tuple[str, ...]:
    """The placed executors holding the task up: those that have not committed, or, once
    every one has, those that have not revealed (in placement order)."""
    waiting = tuple(n for n in t.assigned if n not in t.commitments)
    return waiting or tuple(n for n in t.assigned if n not in t.answers)


def step(t: TaskRecord, now: int) -> str | None:
    """What the coop does about ``t`` at ``now``: :data:`EXPIRE` at the final deadline,
    :data:`REPLACE` past the placement's, else nothing (also once the answers are in)."""
    if t.state != TaskState.RUNNING:
        return None
    if now >= expires_ms(t):
        return EXPIRE
    if now >= due_ms(t) and stalled(t):
        return REPLACE
    return None
