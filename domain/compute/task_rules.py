"""Rules for compute tasks: submitted with a hold, placed, committed, revealed, settled.

Every step is judged at its stream position from the log alone. Submission
holds ``max_fee`` on the submitter's account (held credit is not spendable,
:mod:`icn.domain.ledger.holds`), takes the coop's compute policy as it stands
(price and deadlines, kept in the task) and places the replicas and, when one
is free, a tie-breaker (:mod:`icn.domain.compute.placement`,
:func:`icn.domain.compute.results.voters`). Executors commit before anyone
reveals: a reveal is refused until every placed executor has committed, and
nobody is placed after the first reveal, so no executor can copy an answer it
has seen. When every placed executor has revealed, the answers are judged
(:func:`icn.domain.compute.results.judge`): ``agreed`` or ``unresolved``. The
coop's DID then settles it once: the agreeing executors are paid from the hold
by a ledger entry signed in the same batch, the whole hold is released, and
each dissenter of a majority is paid nothing, disputed (a dispute record the
ledger's dispute rules carry on) and left out of placement for the coop's
``compute.dissent_exclusion_seconds``, unless that dispute is dismissed: placement
reads the dispute at its own stream position, so from the dismissal on the
executor is taken again.
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Any

import msgspec
from blake3 import blake3

from icn.domain.capability import EventType
from icn.domain.compute import deadlines, state
from icn.domain.compute import task_bodies as b
from icn.domain.compute.abi import MAX_INPUT_BYTES, MAX_OUTPUT_BYTES, Outcome
from icn.domain.compute.fees import charged_fuel, fee
from icn.domain.compute.placement import Candidate, place
from icn.domain.compute.results import Answer, judge, opens, output_hash, voters
from icn.domain.compute.task_records import (
    LoadRecord,
    Revealed,
    RunningRecord,
    SettlementsRecord,
    TaskRecord,
    TaskState,
)
from icn.domain.coop.records import CoopRecord, DisputeRecord, Record
from icn.domain.coop.state import CoopView, Effects, active_problem, founded_coop
from icn.domain.events.bodies import ENTRY_RECORDED
from icn.domain.events.canonical import canonical_bytes
from icn.domain.ledger import bodies as lb
from icn.domain.ledger import holds
from icn.domain.ledger.rules import entry_transactions
from icn.domain.refusals import Code, Refusal

DISSENT_TAG = "icn-compute-dissent-v1"

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


def candidates(view: CoopView, coop: str, taken: tuple[str, ...], now: int) -> list[Candidate]:
    """Registered executors that are active members, not in ``taken`` and not left out
    at ``now`` for a dissent, as placement reads them."""
    found = []
    for ex in state.executors(view, coop):
        if ex.node in taken or active_problem(view, coop, ex.node) is not None:
            continue
        ld = load(view, coop, ex.node)
        if excluded(view, coop, ld, now):
            continue
        found.append(Candidate(ex, view.trust_ppm(coop, ex.node), ld.open, ld.paid))
    return found


def excluded(view: CoopView, coop: str, ld: LoadRecord, now: int) -> bool:
    """Whether a dissent still keeps ``ld``'s executor out of placement at ``now``: one
    in force whose dispute was not dismissed (read from the log at this position)."""
    if ld.excluded_until_ms <= now:
        return False
    if not ld.exclusions:  # a record from before exclusions were kept one by one
        return True
    for dispute, until in ld.exclusions:
        if until > now:
            found = view.dispute(coop, dispute)
            if found is None or found.outcome != lb.Outcome.DISMISSED:
                return True
    return False


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
    free = candidates(view, coop.coop, (), now)
    chosen = place(event.id, free, voters(body.replicas, len(free)), body.region)
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
    policy = coop.policy.compute  # as it stands now: the task keeps it
    step_ms = policy.replace_after_seconds * 1000
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
        due_ms=now + step_ms,
        fuel_per_credit=policy.fuel_per_credit,
        step_ms=step_ms,
        final_ms=policy.expire_after_seconds * 1000,
        engine=policy.engine,
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
    return judged(view, event.coop, updated, now)


def _answer(r: Revealed) -> Answer:
    return Answer(Outcome(r.outcome), r.output_hash, r.fuel)


def judged(view: CoopView, coop: str, t: TaskRecord, now: int) -> Effects:
    """No more answers can come (every placed executor revealed, or the rest were dropped
    for stalling): agreed or unresolved, and waiting for the coop's settlement."""
    verdict = judge({n: _answer(r) for n, r in t.answers.items()}, t.replicas)
    effects: Effects = []
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
    return fee(charged, t.fuel_per_credit, t.max_fee // len(t.agreeing))


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
    outvoted = t.dissenting if t.state == TaskState.AGREED else ()
    judged_ms = t.judged_ms if t.judged_ms is not None else now  # when the vote was lost
    until = judged_ms + coop.policy.compute.dissent_exclusion_seconds * 1000
    loads: Effects = []
    for node in t.assigned:
        ld = load(view, coop.coop, node)
        ld = msgspec.structs.replace(
            ld,
            open=ld.open - 1,
            paid=ld.paid + (node in t.agreeing and fee_each(t) > 0),
            dissents=ld.dissents + (node in t.dissenting),
        )
        if node in outvoted and until > judged_ms:
            ld = _left_out(ld, (dispute_id(event.id, node), until), now)
        loads.append(ld)
    done = msgspec.structs.replace(
        t, state=TaskState.SETTLED, held=0, fee=fee_each(t), settlement=event.id
    )
    rest = msgspec.structs.replace(pending, ids=tuple(i for i in pending.ids if i != t.id))
    disputes = [_dispute(coop, t, node, event.id, judged_ms) for node in outvoted]
    return [done, released, rest, *loads, *disputes]


def _left_out(ld: LoadRecord, exclusion: tuple[str, int], now: int) -> LoadRecord:
    """``ld`` with one more dissent keeping it out; those run out by ``now`` are dropped,
    so the list holds only what can still matter."""
    kept = tuple(e for e in ld.exclusions if e[1] > now)
    return msgspec.structs.replace(
        ld,
        excluded_until_ms=max(ld.excluded_until_ms, exclusion[1]),
        exclusions=(*kept, exclusion),
    )


def dispute_id(settlement: str, node: str) -> str:
    """The id of the dispute a settlement opens about ``node``'s outvoted answer: BLAKE3
    of the tag, the settlement's event id and the node (one per dissenter, the same on
    every replica)."""
    return blake3(canonical_bytes([DISSENT_TAG, settlement, node])).hexdigest()


def _dispute(coop: CoopRecord, t: TaskRecord, node: str, settlement: str, at: int) -> Record:
    """A dispute the coop's DID files against a dissenter, in the ledger's vocabulary: the
    dissenter answers it, a mediator or a proposal (``escalated-dispute``) rules on it. It
    names the task (``entry`` and ``task``) and moves no money (amount 0)."""
    r = t.answers[node]
    return DisputeRecord(
        id=dispute_id(settlement, node),
        entry=t.id,
        transaction=t.assigned.index(node),
        filed_by=coop.did,
        counterparty=node,
        payer=t.submitter,
        payee=node,
        amount=0,
        currency=t.currency,
        reason=(
            f"compute task {t.id}: answer {r.outcome}/{r.output_hash}/{r.fuel} outvoted by "
            f"{len(t.agreeing)} executors answering {t.outcome}/{t.output_hash}/{t.fuel}"
        ),
        filed_ms=at,
        task=t.id,
    )


EVENT_TYPES = (
    EventType(b.TASK_SUBMITTED, b.TaskSubmitted, task_submitted),
    EventType(b.RESULT_COMMITTED, b.ResultCommitted, result_committed),
    EventType(b.RESULT_REVEALED, b.ResultRevealed, result_revealed),
    EventType(b.TASK_SETTLED, b.TaskSettled, task_settled),
)
"""The task event types."""
