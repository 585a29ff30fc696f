"""Rules for tasks that are not answered in time: re-placed, then expired.

Both events are the coop's DID's, signed by its duty
(:mod:`icn.application.compute_duties`) and dated at the deadline that
triggered them, so every node keeping the coop's key signs the same bytes;
each is judged at its stream position against the deadlines of
:mod:`icn.domain.compute.deadlines`, from the log alone. Before any answer is
revealed, stalled executors make way for others (or, when too few are free,
the task goes on with fewer, never fewer than its replicas); once one is
revealed nobody new is placed, since a newcomer could copy it: the stalled
are dropped and the answers in are judged. A reveal that lands
before the coop's event still counts: the coop's event is then refused
(``task-not-running`` once the answers are in, ``task-not-due`` once another
round re-placed the task) and the duty leaves it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from icn.domain.capability import EventType
from icn.domain.compute import deadlines
from icn.domain.compute import task_bodies as b
from icn.domain.compute.placement import place
from icn.domain.compute.task_records import TaskRecord, TaskState
from icn.domain.compute.task_rules import candidates, judged, load, task, tracked
from icn.domain.coop.records import CoopRecord
from icn.domain.coop.state import CoopView, Effects, founded_coop
from icn.domain.ledger import holds
from icn.domain.refusals import Code, Refusal

if TYPE_CHECKING:
    from icn.domain.events.envelope import Event


def replacements(view: CoopView, coop: str, t: TaskRecord, now: int) -> list[str]:
    """The executors that take the stalled ones' places at ``now`` (fewer when fewer are
    free, none once an answer is revealed): never one placed on the task before."""
    if deadlines.sealed(t):
        return []
    gone = (*t.assigned, *t.dropped)
    return place(t.id, candidates(view, coop, gone, now), len(deadlines.stalled(t)), t.region)


def can_go_on(t: TaskRecord, new: list[str]) -> bool:
    """True when, with ``new`` in the stalled executors' places, the task still has as many
    executors as it asks for (always, once answers are revealed: those in are judged)."""
    kept = len(t.assigned) - len(deadlines.stalled(t))
    return deadlines.sealed(t) or kept + len(new) >= t.replicas


def _running_task(
    view: CoopView, event: Event, task_id: str
) -> tuple[CoopRecord, TaskRecord] | Refusal:
    coop = founded_coop(view, event)
    if event.author != coop.did:
        return Refusal(Code.NOT_AUTHORIZED, "only the coop's DID re-places or expires a task")
    t = task(view, coop.coop, task_id)
    if t is None:
        return Refusal(Code.UNKNOWN_TASK, f"no task {task_id}")
    if t.state != TaskState.RUNNING:
        return Refusal(Code.TASK_NOT_RUNNING, f"task {t.id} is {t.state}")
    return coop, t


def _loads(view: CoopView, coop: str, nodes: tuple[str, ...], change: int) -> Effects:
    return [
        msgspec.structs.replace(ld, open=ld.open + change)
        for ld in (load(view, coop, n) for n in nodes)
    ]


def task_replaced(
    body: b.TaskReplaced, event: Event, view: CoopView, now: int
) -> Refusal | Effects:
    """Past the placement's deadline, the stalled executors make way for others."""
    found = _running_task(view, event, body.task)
    if isinstance(found, Refusal):
        return found
    coop, t = found
    if body.attempt != t.replacements:
        return Refusal(Code.TASK_NOT_DUE, f"task {t.id} was re-placed {t.replacements} times")
    if now < deadlines.due_ms(t):
        return Refusal(Code.TASK_NOT_DUE, f"task {t.id} is due at {deadlines.due_ms(t)}")
    if now >= deadlines.expires_ms(t):
        return Refusal(Code.TASK_NOT_DUE, f"task {t.id} expired at {deadlines.expires_ms(t)}")
    stalled = deadlines.stalled(t)
    if not stalled:
        return Refusal(Code.TASK_NOT_DUE, f"no executor of task {t.id} is late")
    new = replacements(view, coop.coop, t, now)
    if not can_go_on(t, new):
        return Refusal(
            Code.NO_EXECUTORS,
            f"{len(new)} executors can take the places of {len(stalled)} that stalled",
        )
    kept = tuple(n for n in t.assigned if n not in stalled)
    updated = msgspec.structs.replace(
        t,
        assigned=(*kept, *new),
        commitments={n: c for n, c in t.commitments.items() if n not in stalled},
        dropped=(*t.dropped, *stalled),
        replacements=t.replacements + 1,
        due_ms=now + t.step_ms,
    )
    loads = [*_loads(view, coop.coop, stalled, -1), *_loads(view, coop.coop, tuple(new), +1)]
    if deadlines.sealed(t):
        return [*judged(view, coop.coop, updated, now), *loads]
    return [updated, tracked(view, coop.coop, updated), *loads]


def task_expired(body: b.TaskExpired, event: Event, view: CoopView, now: int) -> Refusal | Effects:
    """At the final deadline a task still running ends: nobody paid, the hold released."""
    found = _running_task(view, event, body.task)
    if isinstance(found, Refusal):
        return found
    coop, t = found
    if now < deadlines.expires_ms(t):
        return Refusal(Code.TASK_NOT_DUE, f"task {t.id} expires at {deadlines.expires_ms(t)}")
    released = holds.release(view, coop.coop, t.submitter, t.currency, t.held)
    done = msgspec.structs.replace(t, state=TaskState.EXPIRED, held=0, expiry=event.id)
    rest = tracked(view, coop.coop, done)
    return [done, released, rest, *_loads(view, coop.coop, t.assigned, -1)]


EVENT_TYPES = (
    EventType(b.TASK_REPLACED, b.TaskReplaced, task_replaced),
    EventType(b.TASK_EXPIRED, b.TaskExpired, task_expired),
)
"""The deadline event types."""
