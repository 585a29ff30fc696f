"""Rules for contracts: deployed by proposal, invoked by members, executed by the coop's DID.

An invocation is judged at its stream position like every write: the rule
runs the interpreter against the coop as it stands there, in trusted time.
A refusal of the contract (a failed requirement, fuel, a capability, an
overflow, the ledger's own checks of a transfer) refuses the event with the
same code. An accepted invocation records what it computed; the coop's DID
then signs the effects and ``contract.Executed`` in one batch
(:mod:`icn.application.contract_duties`). That rule checks the effects are
exactly what the invocation computed, and checks the payers again where the
execution stands: an entry by the coop's DID is not limited by the ledger,
so the credit limits the contract was judged under are enforced here.

A schedule's run is an invocation by the coop's DID naming the schedule and
the period; it is accepted even when the contract refuses it (recorded as
``refused``), so the schedule moves on to the next period.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from icn.domain.capability import EventType
from icn.domain.contract import bodies as b
from icn.domain.contract.compile import Program, compile_code, decode, execute
from icn.domain.contract.deploy import contract, deploy_problem
from icn.domain.contract.host import ViewHost
from icn.domain.contract.proposing import check_proposals, proposals_problem, waiting
from icn.domain.contract.records import (
    ContractRecord,
    InvocationRecord,
    InvocationState,
    PendingRecord,
)
from icn.domain.contract.runtime import ContractError, Outcome
from icn.domain.contract.schedule import next_period
from icn.domain.coop.records import CoopRecord
from icn.domain.coop.state import CoopView, Effects, active_problem, founded_coop
from icn.domain.events.bodies import ENTRY_RECORDED
from icn.domain.governance import actions as a
from icn.domain.governance.links import follow_link, is_action
from icn.domain.ledger import bodies as lb
from icn.domain.ledger.holds import held
from icn.domain.ledger.rules import entry_transactions, limit_for
from icn.domain.refusals import Code, Refusal, lookup

if TYPE_CHECKING:
    from icn.domain.events.envelope import Event

_PROGRAMS: dict[str, Program] = {}
"""Compiled programs by the id of the ``contract.Deployed`` that deployed them."""
_PROGRAMS_MAX = 256


def program_of(record: ContractRecord) -> Program:
    """The record's program, compiled once per deployed version."""
    found = _PROGRAMS.get(record.deployed_by)
    if found is None:
        found = compile_code(decode(record.code))
        if len(_PROGRAMS) >= _PROGRAMS_MAX:
            _PROGRAMS.pop(next(iter(_PROGRAMS)))
        _PROGRAMS[record.deployed_by] = found
    return found


def deployed(body: b.Deployed, event: Event, view: CoopView, now: int) -> Refusal | Effects:
    """A version of a contract, deployed by the coop's DID as an accepted proposal orders."""
    coop = founded_coop(view, event)
    if event.author != coop.did:
        return Refusal(Code.NOT_AUTHORIZED, "only the coop's DID deploys a contract")
    caps = list(body.capabilities)
    problem = deploy_problem(view, coop.coop, body.name, body.version, body.code, caps)
    if problem is not None:
        return problem
    wanted = a.DeployContract(
        name=body.name,
        version=body.version,
        code=body.code,
        capabilities=caps,
        fuel_limit=body.fuel_limit,
    )
    link = follow_link(
        view,
        event,
        coop,
        body.proposal,
        is_action(wanted),
        required="a contract is deployed only by an accepted proposal",
    )
    if isinstance(link, Refusal):
        return link
    current = contract(view, coop.coop, body.name)
    schedules = len(decode(body.code).schedules)
    record = ContractRecord(
        name=body.name,
        version=body.version,
        code=body.code,
        capabilities=tuple(caps),
        fuel_limit=body.fuel_limit,
        deployed_ms=now,
        deployed_by=event.id,
        proposal=body.proposal,
        schedules_done=(now,) * schedules,
        invocations=current.invocations if current is not None else 0,
    )
    return [*link, record]


def _schedule_problem(c: ContractRecord, body: b.Invoked, now: int) -> Refusal | None:
    """A schedule's run must be the next period of one of the code's schedules, now due."""
    schedules = decode(c.code).schedules
    index = body.schedule
    if index is None or body.period is None or index >= len(schedules):
        return Refusal(Code.INVALID_BODY, "a schedule's run names its schedule and its period")
    s = schedules[index]
    if s.rule != body.rule or dict(s.args) != body.args:
        return Refusal(Code.INVALID_BODY, f"schedule {index} runs {s.rule} with its own args")
    due = next_period(s, c.schedules_done[index])
    if body.period != due or due > now:
        return Refusal(Code.INVALID_PERIOD, f"schedule {index}'s next period starts at {due}")
    return None


def invoked(body: b.Invoked, event: Event, view: CoopView, now: int) -> Refusal | Effects:
    """Run the rule where the invocation stands; refuse it with the contract's code, or record
    what it computed for the coop's DID to carry out."""
    coop = founded_coop(view, event)
    c = contract(view, coop.coop, body.contract)
    if c is None:
        return Refusal(Code.UNKNOWN_CONTRACT, f"no contract {body.contract} is deployed")
    scheduled = event.author == coop.did
    if scheduled:
        problem = _schedule_problem(c, body, now)
    elif body.schedule is not None or body.period is not None:
        problem = Refusal(Code.NOT_AUTHORIZED, "only the coop's DID runs a schedule")
    else:
        problem = active_problem(view, coop.coop, event.author, "caller")
    if problem is not None:
        return problem
    record = InvocationRecord(
        id=event.id,
        contract=c.name,
        version=c.version,
        rule=body.rule,
        caller=event.author,
        args=dict(body.args),
        invoked_ms=now,
        fuel=0,
    )
    try:
        outcome = run(view, coop, c, body.rule, dict(body.args), event.author, now)
        check_proposals(view, coop, outcome.proposals, event.author)
    except ContractError as exc:
        if not scheduled:
            return Refusal(exc.code, exc.reason)
        record = msgspec.structs.replace(record, state=InvocationState.REFUSED, code=exc.code)
    else:
        state = InvocationState.JUDGED
        if not outcome.transfers and not outcome.proposals:
            state = InvocationState.EXECUTED  # nothing to sign: done where it stands
        record = msgspec.structs.replace(
            record,
            fuel=outcome.fuel,
            transfers=outcome.transfers,
            proposals=outcome.proposals,
            state=state,
        )
    done = c.schedules_done
    if scheduled and body.schedule is not None and body.period is not None:
        done = (*done[: body.schedule], body.period, *done[body.schedule + 1 :])
    updated = msgspec.structs.replace(c, invocations=c.invocations + 1, schedules_done=done)
    effects: Effects = [record, updated]
    if record.state == InvocationState.JUDGED:
        pending = pending_of(view, coop.coop)
        effects.append(
            msgspec.structs.replace(
                pending, ids=(*pending.ids, event.id), reserved=_moved(pending, record, 1)
            )
        )
    return effects


def reserved(view: CoopView, coop: str) -> dict[tuple[str, str], int]:
    """Per (account, currency), what judged invocations not executed yet will move: a later
    invocation is judged as if they had been carried out, so two cannot both spend one room."""
    moves: dict[tuple[str, str], int] = {}
    for key, units in pending_of(view, coop).reserved.items():
        did, _, currency = key.rpartition(" ")
        moves[(did, currency)] = units
    return moves


def _moved(pending: PendingRecord, inv: InvocationRecord, sign: int) -> dict[str, int]:
    """``pending``'s reserved sums with ``inv``'s transfers added (``sign`` 1) or taken back."""
    sums = dict(pending.reserved)
    for t in inv.transfers:
        for did, units in ((t.from_, -t.amount), (t.to, t.amount)):
            key = f"{did} {t.currency}"
            total = sums.get(key, 0) + sign * units
            if total:
                sums[key] = total
            else:
                sums.pop(key, None)
    return sums


def pending_of(view: CoopView, coop: str) -> PendingRecord:
    """The invocations waiting for the coop's DID to carry them out."""
    found = view.record(coop, PendingRecord.kind, "")
    return found if isinstance(found, PendingRecord) else PendingRecord()


def _settled(view: CoopView, coop: str, inv: InvocationRecord) -> PendingRecord:
    pending = pending_of(view, coop)
    ids = tuple(i for i in pending.ids if i != inv.id)
    return msgspec.structs.replace(pending, ids=ids, reserved=_moved(pending, inv, -1))


def run(
    view: CoopView,
    coop: CoopRecord,
    c: ContractRecord,
    rule: str,
    args: dict[str, Any],
    caller: str,
    now: int,
) -> Outcome:
    """The interpreter on ``c``'s latest version, reading the coop through ``view``, with the
    transfers of invocations judged before it and not executed yet already counted."""
    return execute(
        program_of(c),
        rule,
        args,
        host=ViewHost(view, coop, now, reserved(view, coop.coop)),
        granted=frozenset(c.capabilities),
        caller=caller,
        treasury=coop.did,
        now=now,
        fuel_limit=c.fuel_limit,
    )


ENTRY_MAX = 64
"""Transactions per entry (spec section 6): a longer list of transfers takes several entries."""


def entries_of(inv: InvocationRecord) -> list[dict[str, Any]]:
    """The ``ledger.EntryRecorded`` bodies that carry out ``inv``'s transfers, in order, 64
    transactions each: memos name the contract and the invocation (an entry's body is the
    spec's, it has no link)."""
    tag = f"contract {inv.contract} {inv.id[:16]}"
    txs = [
        {
            "from": t.from_,
            "to": t.to,
            "amount": t.amount,
            "currency": t.currency,
            "memo": f"{tag}: {t.memo}"[:256] if t.memo else tag,
        }
        for t in inv.transfers
    ]
    return [{"transactions": txs[i : i + ENTRY_MAX]} for i in range(0, len(txs), ENTRY_MAX)]


def _payers_problem(
    view: CoopView, coop: CoopRecord, inv: InvocationRecord, now: int
) -> Refusal | None:
    """The payers where the execution stands (after its entry): active, not frozen, within
    their credit limits, as the ledger judges a member's own payment."""
    for t in inv.transfers:
        if t.from_ == coop.did:
            continue
        problem = active_problem(view, coop.coop, t.from_, "payer")
        if problem is not None:
            return problem
        member = view.member(coop.coop, t.from_)
        assert member is not None
        if member.is_frozen_at(now):
            return Refusal(Code.ACCOUNT_FROZEN, f"{t.from_}'s account is frozen")
        account = view.account(coop.coop, t.from_, t.currency)
        balance = account.balance if account is not None else 0
        balance -= held(view, coop.coop, t.from_, t.currency)
        if balance < -limit_for(view, coop, member, t.currency, now):
            return Refusal(
                Code.CREDIT_LIMIT_EXCEEDED, f"{t.from_} would go below their credit limit"
            )
    return None


def executed(body: b.Executed, event: Event, view: CoopView, now: int) -> Refusal | Effects:
    """The coop's DID carried an invocation out with exactly its effects, or says why not."""
    coop = founded_coop(view, event)
    if event.author != coop.did:
        return Refusal(Code.NOT_AUTHORIZED, "only the coop's DID executes an invocation")
    inv = waiting(view, coop.coop, body.invocation)
    if isinstance(inv, Refusal):
        return inv
    if body.fuel != inv.fuel:
        return Refusal(Code.EXECUTION_MISMATCH, f"the invocation burnt {inv.fuel} fuel")
    if body.failed is not None:
        if body.effects or lookup(body.failed) is None:
            return Refusal(Code.EXECUTION_MISMATCH, "failed names a refusal code, with no effects")
        failed = msgspec.structs.replace(
            inv, state=InvocationState.FAILED, code=body.failed, execution=event.id
        )
        return [failed, _settled(view, coop.coop, inv)]
    want = entries_of(inv)
    if len(body.effects) != len(want):
        return Refusal(
            Code.EXECUTION_MISMATCH, f"the invocation is carried out by {len(want)} entries"
        )
    for entry_id, body_wanted in zip(body.effects, want, strict=True):
        entry = view.event(coop.coop, entry_id)
        if entry is None or entry.type != ENTRY_RECORDED or entry.author != coop.did:
            return Refusal(Code.EXECUTION_MISMATCH, f"{entry_id} is no entry by the coop's DID")
        wanted = msgspec.convert(body_wanted, lb.EntryRecorded).transactions
        if entry_transactions(entry) != wanted:
            return Refusal(Code.EXECUTION_MISMATCH, "an entry does not move what was computed")
    problem = proposals_problem(inv, body.proposals)
    if problem is None and want:
        problem = _payers_problem(view, coop, inv, now)
    if problem is not None:
        return problem
    done = msgspec.structs.replace(
        inv, state=InvocationState.EXECUTED, effects=tuple(body.effects), execution=event.id
    )
    return [done, _settled(view, coop.coop, inv)]


EVENT_TYPES = (
    EventType(b.DEPLOYED, b.Deployed, deployed),
    EventType(b.INVOKED, b.Invoked, invoked),
    EventType(b.EXECUTED, b.Executed, executed),
)
"""The contract capability's event types."""
