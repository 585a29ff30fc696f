"""Rules for compute tasks: submitted with a hold, placed, committed, revealed, settled.

Every step is judged at its stream position from the log alone. Submission
holds ``max_fee`` on the submitter's account (held credit is not spendable,
:mod:`icn.domain.ledger.holds`) and places the replicas
(:mod:`icn.domain.compute.placement`). Executors commit before anyone
reveals: a reveal is refused until every placed executor has committed, so
no executor can copy an answer it has seen. When every placed executor has
revealed, the answers are judged (:func:`icn.domain.compute.results.judge`):
agreement, or a strict majority after one more executor per disagreement,
makes the task ``agreed``; no majority by ``2 × replicas + 1`` executors
makes it ``unresolved``. The coop's DID then settles it once: the agreeing
executors are paid from the hold by a ledger entry signed in the same batch,
the dissenters are paid nothing and recorded, the whole hold is released.
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Any

import msgspec

from icn.domain.capability import EventType
from icn.domain.compute import deadlines, state
from icn.domain.compute import task_bodies as b
from icn.domain.compute.abi import MAX_INPUT_BYTES, MAX_OUTPUT_BYTES, Outcome
from icn.domain.compute.fees import FUEL_PER_CREDIT, charged_fuel, fee
from icn.domain.compute.placement import Candidate, place
from icn.domain.compute.results import Answer, judge, max_executors, opens, output_hash
from icn.domain.compute.task_records import (
    LoadRecord,
    Revealed,
    RunningRecord,
    SettlementsRecord,
    TaskRecord,
    TaskState,
)
from icn.domain.coop.records import CoopRecord, Record
from icn.domain.coop.state import CoopView, Effects, active_problem, founded_coop
from icn.domain.events.bodies import ENTRY_RECORDED
from icn.domain.ledger import bodies as lb
from icn.domain.ledger import holds
from icn.domain.ledger.rules import entry_transactions
from icn.domain.refusals import Code, Refusal

if TYPE_CHECKING:
    from icn.domain.events.envelope import Event


def _decoded(text: str, limit: int, code: Code, what: str) -> bytes | Refusal:
    try:
        data = base64.b64decode(text, validate=True)
    except binascii.Error:
        return Refusal(Code.INVALID_BODY, f"{what} is not base64")
    if base64.b64encode(data).decode() != text:
        return Refusal(Code.INVALID_BODY, f"{what} is not in canonical base64")
    if len(data) > limit:
        return Refusal(code, f"{what} is {len(data)} bytes, over {limit}")
    return data


def task(view: CoopView, coop: str, task_id: str) -> TaskRecord | None:
    """The task ``task_id``, if it was submitted."""
    found = view.record(coop, TaskRecord.kind, task_id)
    return found if isinstance(found, TaskRecord) else None


def settlements(view: CoopView, coop: str) -> SettlementsRecord:
    """The tasks waiting for the coop's DID to settle them."""
    found = view.record(coop, SettlementsRecord.kind, "")
    return found if isinstance(found, SettlementsRecord) else SettlementsRecord()


def running(view: CoopView, coop: str) -> RunningRecord:
    """The tasks still running, oldest first, with their next deadlines."""
    found = view.record(coop, RunningRecord.kind, "")
    return found if isinstance(found, RunningRecord) else RunningRecord()


def tracked(view: CoopView, coop: str, t: TaskRecord) -> RunningRecord:
    """The running tasks with ``t`` at its next deadline, or without it once it is not
    running."""
    tasks = dict(running(view, coop).tasks)
    if t.state == TaskState.RUNNING:
        tasks[t.id] = deadlines.next_ms(t)
    else:
        tasks.pop(t.id, None)
    return RunningRecord(tasks=tasks)


def load(view: CoopView, coop: str, node: str) -> LoadRecord:
    """``node``'s share of the coop's tasks so far."""
    found = view.record(coop, LoadRecord.kind, node)
    return found if isinstance(found, LoadRecord) else LoadRecord(node=node)


def candidates(view: CoopView, coop: str, taken: tuple[str, ...]) -> list[Candidate]:
    """Registered executors that are active members and not in ``taken``, as placement
    reads them."""
    found = []
    for ex in state.executors(view, coop):
        if ex.node in taken or active_problem(view, coop, ex.node) is not None:
            continue
        ld = load(view, coop, ex.node)
        found.append(Candidate(ex, view.trust_ppm(coop, ex.node), ld.open, ld.paid))
    return found


def _opened(view: CoopView, coop: str, nodes: list[str]) -> list[Record]:
    return [
        msgspec.structs.replace(ld, open=ld.open + 1) for ld in (load(view, coop, n) for n in nodes)
    ]


def task_submitted(
    body: b.TaskSubmitted, event: Event, view: CoopView, now: int
) -> Refusal | Effects:
    """An active member submits a task on a stored module, within what it can hold."""
    coop = founded_coop(view, event)
    problem = active_problem(view, coop.coop, event.author, "submitter")
    if problem:
        return problem
    if state.module(view, coop.coop, body.module) is None:
        return Refusal(Code.UNKNOWN_MODULE, f"no module {body.module} is stored")
    if body.currency not in coop.currencies:
        return Refusal(Code.UNKNOWN_CURRENCY, f"{coop.coop} has no currency {body.currency!r}")
    data = _decoded(body.input, MAX_INPUT_BYTES, Code.INPUT_TOO_LARGE, "the input")
    if isinstance(data, Refusal):
        return data
    chosen = place(event.id, candidates(view, coop.coop, ()), body.replicas, body.region)
    if len(chosen) < body.replicas:
        return Refusal(
            Code.NO_EXECUTORS,
            f"{len(chosen)} executors can take the task, it asks for {body.replicas}",
        )
    member = view.member(coop.coop, event.author)
    assert member is not None
    if member.is_frozen_at(now):
        return Refusal(Code.ACCOUNT_FROZEN, f"{event.author}'s account is frozen: it cannot pay")
    room = holds.credit_room(view, coop, member, body.currency, now)
    hold = holds.place(coop, member, body.currency, body.max_fee, room)
    if isinstance(hold, Refusal):
        return hold
    record = TaskRecord(
        id=event.id,
        submitter=event.author,
        module=body.module,
        input=body.input,
        fuel_limit=body.fuel_limit,
        max_fee=body.max_fee,
        currency=body.currency,
        replicas=body.replicas,
        submitted_ms=now,
        held=body.max_fee,
        assigned=tuple(chosen),
        region=body.region,
        due_ms=now + deadlines.STEP_MS,
    )
    return [record, hold, tracked(view, coop.coop, record), *_opened(view, coop.coop, chosen)]


def _running(view: CoopView, event: Event, task_id: str) -> TaskRecord | Refusal:
    found = task(view, event.coop, task_id)
    if found is None:
        return Refusal(Code.UNKNOWN_TASK, f"no task {task_id}")
    if event.author not in found.assigned:
        return Refusal(Code.NOT_ASSIGNED, f"{event.author} is not placed on task {task_id}")
    if found.state != TaskState.RUNNING:
        return Refusal(Code.TASK_NOT_RUNNING, f"task {task_id} is {found.state}")
    return found


def result_committed(
    body: b.ResultCommitted, event: Event, view: CoopView, now: int
) -> Refusal | Effects:
    """A placed executor commits to its answer, once."""
    found = _running(view, event, body.task)
    if isinstance(found, Refusal):
        return found
    if event.author in found.commitments:
        return Refusal(Code.ALREADY_COMMITTED, f"{event.author} committed already")
    commitments = {**found.commitments, event.author: body.commitment}
    return [msgspec.structs.replace(found, commitments=commitments)]


def result_revealed(
    body: b.ResultRevealed, event: Event, view: CoopView, now: int
) -> Refusal | Effects:
    """A placed executor reveals the answer it committed to, once every one has committed;
    the last reveal judges the answers."""
    found = _running(view, event, body.task)
    if isinstance(found, Refusal):
        return found
    if event.author in found.answers:
        return Refusal(Code.ALREADY_REVEALED, f"{event.author} revealed already")
    waiting = [n for n in found.assigned if n not in found.commitments]
    if waiting:
        return Refusal(
            Code.COMMITMENTS_PENDING, f"{len(waiting)} placed executors have not committed"
        )
    output = _decoded(body.output, MAX_OUTPUT_BYTES, Code.REVEAL_MISMATCH, "the output")
    if isinstance(output, Refusal):
        return output
    if output_hash(output) != body.output_hash:
        return Refusal(Code.REVEAL_MISMATCH, "the output does not hash to output_hash")
    if body.outcome != "ok" and output:
        return Refusal(Code.REVEAL_MISMATCH, "only an ok run has an output")
    if body.fuel > found.fuel_limit:
        return Refusal(Code.REVEAL_MISMATCH, f"fuel {body.fuel} is over the task's limit")
    answer = Answer(Outcome(body.outcome), body.output_hash, body.fuel)
    if not opens(found.commitments[event.author], found.id, event.author, answer, body.salt):
        return Refusal(Code.REVEAL_MISMATCH, "the answer and salt do not open the commitment")
    revealed = Revealed(outcome=body.outcome, output_hash=body.output_hash, fuel=body.fuel)
    updated = msgspec.structs.replace(
        found,
        answers={**found.answers, event.author: revealed},
        outputs={**found.outputs, body.output_hash: body.output},
    )
    if len(updated.answers) < len(updated.assigned):
        return [updated]
    return _judged(view, event.coop, updated, now)


def _answer(r: Revealed) -> Answer:
    return Answer(Outcome(r.outcome), r.output_hash, r.fuel)


def _judged(view: CoopView, coop: str, t: TaskRecord, now: int) -> Effects:
    """Every placed executor has revealed: agreed, one more executor, or unresolved."""
    verdict = judge({n: _answer(r) for n, r in t.answers.items()}, t.replicas)
    effects: Effects = []
    if verdict.needs_another and len(t.assigned) < max_executors(t.replicas):
        more = place(t.id, candidates(view, coop, t.assigned), 1, None)
        if more:
            placed = msgspec.structs.replace(
                t, assigned=(*t.assigned, *more), due_ms=now + deadlines.STEP_MS
            )
            return [placed, tracked(view, coop, placed), *_opened(view, coop, more)]
    if verdict.answer is not None:
        a = verdict.answer
        t = msgspec.structs.replace(
            t,
            state=TaskState.AGREED,
            judged_ms=now,
            outcome=str(a.outcome),
            output_hash=a.output_hash,
            fuel=a.fuel,
            agreeing=verdict.agreeing,
            dissenting=verdict.dissenting,
            outputs={a.output_hash: t.outputs[a.output_hash]},
        )
    else:
        t = msgspec.structs.replace(
            t,
            state=TaskState.UNRESOLVED,
            judged_ms=now,
            dissenting=tuple(sorted(t.answers)),
            outputs={},
        )
    pending = settlements(view, coop)
    effects += [
        t,
        msgspec.structs.replace(pending, ids=(*pending.ids, t.id)),
        tracked(view, coop, t),
    ]
    return effects


def fee_each(t: TaskRecord) -> int:
    """What each agreeing executor is paid: ⌈charged fuel / fuel per credit⌉, the task's
    ``max_fee`` shared among them at most (so the payments never exceed the hold)."""
    if t.state == TaskState.UNRESOLVED or not t.agreeing or t.outcome is None or t.fuel is None:
        return 0
    charged = charged_fuel(Outcome(t.outcome), t.fuel, t.fuel_limit)
    return fee(charged, FUEL_PER_CREDIT, t.max_fee // len(t.agreeing))


def entries_of(t: TaskRecord) -> list[dict[str, Any]]:
    """The ``ledger.EntryRecorded`` body that pays ``t``'s agreeing executors (none if 0)."""
    each = fee_each(t)
    if each == 0:
        return []
    memo = f"compute task {t.id[:16]}"
    txs = [
        {"from": t.submitter, "to": n, "amount": each, "currency": t.currency, "memo": memo}
        for n in t.agreeing
    ]
    return [{"transactions": txs}]


def task_settled(body: b.TaskSettled, event: Event, view: CoopView, now: int) -> Refusal | Effects:
    """The coop's DID paid the agreeing executors exactly their fees and releases the hold."""
    coop: CoopRecord = founded_coop(view, event)
    if event.author != coop.did:
        return Refusal(Code.NOT_AUTHORIZED, "only the coop's DID settles a task")
    t = task(view, coop.coop, body.task)
    if t is None:
        return Refusal(Code.UNKNOWN_TASK, f"no task {body.task}")
    if t.state not in (TaskState.AGREED, TaskState.UNRESOLVED):
        return Refusal(Code.TASK_NOT_SETTLEABLE, f"task {t.id} is {t.state}")
    want = entries_of(t)
    if len(body.effects) != len(want):
        return Refusal(Code.TASK_PAYMENT_MISMATCH, f"the task is paid by {len(want)} entries")
    for entry_id, wanted in zip(body.effects, want, strict=True):
        entry = view.event(coop.coop, entry_id)
        if entry is None or entry.type != ENTRY_RECORDED or entry.author != coop.did:
            return Refusal(Code.TASK_PAYMENT_MISMATCH, f"{entry_id} is no entry by the coop's DID")
        if entry_transactions(entry) != msgspec.convert(wanted, lb.EntryRecorded).transactions:
            return Refusal(Code.TASK_PAYMENT_MISMATCH, "the entry does not pay the task's fees")
    released = holds.release(view, coop.coop, t.submitter, t.currency, t.held)
    pending = settlements(view, coop.coop)
    loads: Effects = []
    for node in t.assigned:
        ld = load(view, coop.coop, node)
        loads.append(
            msgspec.structs.replace(
                ld,
                open=ld.open - 1,
                paid=ld.paid + (node in t.agreeing and fee_each(t) > 0),
                dissents=ld.dissents + (node in t.dissenting),
            )
        )
    done = msgspec.structs.replace(
        t, state=TaskState.SETTLED, held=0, fee=fee_each(t), settlement=event.id
    )
    rest = msgspec.structs.replace(pending, ids=tuple(i for i in pending.ids if i != t.id))
    return [done, released, rest, *loads]


EVENT_TYPES = (
    EventType(b.TASK_SUBMITTED, b.TaskSubmitted, task_submitted),
    EventType(b.RESULT_COMMITTED, b.ResultCommitted, result_committed),
    EventType(b.RESULT_REVEALED, b.ResultRevealed, result_revealed),
    EventType(b.TASK_SETTLED, b.TaskSettled, task_settled),
)
"""The task event types."""
