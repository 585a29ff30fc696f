"""Reading compute tasks as clients and executors see them, from the rules' own records.

A task's record is what the rules judged by, so a read of it is current the
moment the event that changed it is committed: an executor polling for its
placements sees them as soon as the submission is in the log.
"""

from __future__ import annotations

import msgspec

from icn.application.coop_view import decode_record
from icn.application.errors import NotFound
from icn.application.ports import EventStore
from icn.application.trust_epochs import CommittedState
from icn.domain.compute import deadlines
from icn.domain.compute.fees import FUEL_PER_CREDIT
from icn.domain.compute.task_records import TaskRecord, TaskState
from icn.domain.compute.task_rules import dispute_id, task
from icn.domain.coop.records import DEFAULT_ENGINE

MAX_LISTED = 200
"""Tasks one list returns at most, newest first."""
STATES = (
    TaskState.RUNNING,
    TaskState.AGREED,
    TaskState.UNRESOLVED,
    TaskState.SETTLED,
    TaskState.EXPIRED,
)


class TaskView(msgspec.Struct, frozen=True, kw_only=True):
    """A task: what was asked, who runs it, where the answers stand, what it cost.

    ``output`` (base64) is set once the answers agreed; ``fee`` is what each agreeing
    executor was paid; ``committed`` and ``revealed`` name the executors that did."""

    id: str
    state: str
    submitter: str
    module: str
    input: str
    fuel_limit: int
    max_fee: int
    currency: str
    replicas: int
    submitted_ms: int
    held: int
    executors: list[str]
    committed: list[str]
    revealed: list[str]
    outcome: str | None
    output: str | None
    output_hash: str | None
    fuel: int | None
    fee: int
    agreeing: list[str]
    dissenting: list[str]
    settlement: str | None
    due_ms: int
    """When the executors placed last must have revealed, else the coop re-places them."""
    expires_ms: int
    """When the task expires if still running (nobody paid, the hold released)."""
    dropped: list[str]
    """Executors dropped for stalling."""
    expiry: str | None
    """The ``compute.TaskExpired`` event's id."""
    fuel_per_credit: int = FUEL_PER_CREDIT
    """The coop's price when the task was submitted: what its fee is computed at (a default,
    so a client still reads a node that does not send it)."""
    disputes: list[str] = msgspec.field(default_factory=list)
    """The disputes its settlement opened, one per executor outvoted (``…/disputes``)."""
    engine: str = DEFAULT_ENGINE
    """The wasmtime version it runs on (the coop's ``compute.engine`` at its submission):
    an executor with another one does not answer it."""


class TaskList(msgspec.Struct, frozen=True, kw_only=True):
    """Tasks, newest first (at most :data:`MAX_LISTED`)."""

    tasks: list[TaskView]


def view_of(t: TaskRecord) -> TaskView:
    """The client's view of a task record."""
    output = t.outputs.get(t.output_hash) if t.output_hash is not None else None
    return TaskView(
        id=t.id,
        state=t.state,
        submitter=t.submitter,
        module=t.module,
        input=t.input,
        fuel_limit=t.fuel_limit,
        max_fee=t.max_fee,
        currency=t.currency,
        replicas=t.replicas,
        submitted_ms=t.submitted_ms,
        held=t.held,
        executors=list(t.assigned),
        committed=[n for n in t.assigned if n in t.commitments],
        revealed=[n for n in t.assigned if n in t.answers],
        outcome=t.outcome,
        output=output,
        output_hash=t.output_hash,
        fuel=t.fuel,
        fee=t.fee,
        agreeing=list(t.agreeing),
        dissenting=list(t.dissenting),
        settlement=t.settlement,
        due_ms=deadlines.due_ms(t),
        expires_ms=deadlines.expires_ms(t),
        dropped=list(t.dropped),
        expiry=t.expiry,
        fuel_per_credit=t.fuel_per_credit,
        disputes=disputes_of(t),
        engine=t.engine,
    )


def disputes_of(t: TaskRecord) -> list[str]:
    """The ids of the disputes ``t``'s settlement opened: its dissenters, when a majority
    settled it (an unresolved task names no liar, so it opens none)."""
    if t.settlement is None or t.outcome is None:
        return []
    return [dispute_id(t.settlement, n) for n in t.dissenting]


def task_view(store: EventStore, coop: str, task_id: str) -> TaskView:
    """One task; :class:`NotFound` when the coop has no such task."""
    found = task(CommittedState(store), coop, task_id)
    if found is None:
        raise NotFound(f"no task {task_id} in {coop}")
    return view_of(found)


def task_list(
    store: EventStore, coop: str, state: str | None = None, executor: str | None = None
) -> TaskList:
    """The coop's tasks in ``state`` and placed on ``executor`` (each when given)."""
    found: list[TaskRecord] = []
    for _, raw in store.state_records(coop, TaskRecord.kind):
        t = decode_record(TaskRecord.kind, raw)
        if not isinstance(t, TaskRecord):
            continue
        if (state is None or t.state == state) and (executor is None or executor in t.assigned):
            found.append(t)
    found.sort(key=lambda t: (t.submitted_ms, t.id), reverse=True)
    return TaskList(tasks=[view_of(t) for t in found[:MAX_LISTED]])
