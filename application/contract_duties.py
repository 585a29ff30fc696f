"""The contract duties: the coop's DID carries out judged invocations and runs schedules.

As with the governance duties (:mod:`icn.application.governance_duties`),
every node keeping the coop's key may run these at once, so each batch is
computed from its trigger alone: an execution from the invocation's record
(its computed transfers and fuel), dated at the invocation's trusted time; a
schedule's run from the contract's record (the next period after the last
one run), dated at the period's start. ``ts`` never goes back along the coop
chain, so it is the later of that moment and the chain head's. Two nodes
racing sign the same bytes; the slower finds the work done and leaves it.

An execution appends the ``ledger.EntryRecorded``, the ``governance.ProposalSubmitted``
a ``propose`` statement asked for (by the coop's DID, naming the invocation:
:mod:`icn.domain.contract.proposing`) and the ``contract.Executed`` that lists
them in one atomic batch. If the ledger or the execution's own
check of the payers refuses it (the payer spent their room in between), the
refusal's code is recorded instead (``failed``), never dropped silently.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from nacl.signing import SigningKey

from icn.application.append import REFUSED
from icn.application.authoring import BodyOf, EventAuthor
from icn.application.errors import BatchRefused
from icn.application.ports import EventStore
from icn.application.trust_epochs import CommittedState
from icn.domain.contract import bodies as b
from icn.domain.contract.compile import decode
from icn.domain.contract.deploy import contract
from icn.domain.contract.proposing import proposal_body
from icn.domain.contract.records import ContractRecord, InvocationRecord, InvocationState
from icn.domain.contract.rules import entries_of, pending_of
from icn.domain.contract.schedule import MAX_CATCH_UP, next_period
from icn.domain.events.bodies import ENTRY_RECORDED
from icn.domain.events.envelope import Event
from icn.domain.governance import bodies as gb
from icn.domain.refusals import Code

NOT_AN_EFFECT = {
    Code.EXECUTION_MISMATCH.value,
    Code.UNKNOWN_INVOCATION.value,
    Code.NOT_AUTHORIZED.value,
}
"""Refusals of the execution itself, not of its effects: raised, never recorded as failed."""

Duty = tuple[str, Callable[[], list[Event]]]


def _executed(invocation: str, fuel: int, entries: int, before: list[Event]) -> dict[str, Any]:
    """The ``contract.Executed`` body listing the effects signed before it in its batch: the
    ``entries`` ledger entries first, then the proposals opened (the field only when any)."""
    body: dict[str, Any] = {
        "invocation": invocation,
        "effects": [e.id for e in before[:entries]],
        "fuel": fuel,
    }
    if len(before) > entries:
        body["proposals"] = [e.id for e in before[entries:]]
    return body


class ContractDuties:
    """Use case: execute judged invocations and run the schedules that are due."""

    def __init__(self, store: EventStore, author: EventAuthor):
        self._store = store
        self._author = author

    def _invocation(self, coop: str, invocation: str) -> InvocationRecord | None:
        found = CommittedState(self._store).record(coop, InvocationRecord.kind, invocation)
        return found if isinstance(found, InvocationRecord) else None

    def pending(self, coop: str) -> list[str]:
        """Invocations judged and waiting for their effects, oldest first."""
        return list(pending_of(CommittedState(self._store), coop).ids)

    def execute(self, coop: str, invocation: str, key: SigningKey) -> list[Event]:
        """Sign the invocation's entry and its ``contract.Executed``, or record why not."""
        failed: list[str] = []
        for _ in range(2):
            inv = self._invocation(coop, invocation)
            if inv is None or inv.state != InvocationState.JUDGED:
                return []
            items: list[tuple[str, BodyOf]] = []
            if failed:
                done: dict[str, Any] = {"invocation": inv.id, "fuel": inv.fuel}
                items.append((b.EXECUTED, {**done, "failed": failed[0]}))
            else:
                entries = entries_of(inv)
                items += [(ENTRY_RECORDED, entry) for entry in entries]
                items += [(gb.PROPOSAL_SUBMITTED, proposal_body(inv, p)) for p in inv.proposals]
                items.append((b.EXECUTED, partial(_executed, invocation, inv.fuel, len(entries))))
            try:
                events, _ = self._author.submit(key, coop, items, at=inv.invoked_ms)
            except BatchRefused as refused:
                if refused.code == Code.ALREADY_EXECUTED.value:
                    return []  # another node keeping the coop's key did it first
                if failed or refused.verdict != REFUSED or refused.code in NOT_AN_EFFECT:
                    raise
                failed.append(refused.code)
                continue
            return events
        return []

    def _schedules(self, coop: str) -> list[tuple[ContractRecord, int]]:
        view = CommittedState(self._store)
        found = view.scan(coop, ContractRecord.kind, "")
        return [
            (c, i)
            for c in found
            if isinstance(c, ContractRecord)
            for i in range(len(c.schedules_done))
        ]

    def due_schedules(self, coop: str, now: int) -> list[tuple[str, int]]:
        """(contract, schedule index) whose next period has started by ``now`` (trusted time)."""
        due: list[tuple[str, int]] = []
        for c, i in self._schedules(coop):
            s = decode(c.code).schedules[i]
            if next_period(s, c.schedules_done[i]) <= now:
                due.append((c.name, i))
        return due

    def run_schedule(
        self, coop: str, name: str, index: int, key: SigningKey, now: int
    ) -> list[Event]:
        """Every period of one schedule due now (at most :data:`MAX_CATCH_UP`), each an
        invocation by the coop's DID dated at its period's start, then its execution."""
        signed: list[Event] = []
        for _ in range(MAX_CATCH_UP):
            c = contract(CommittedState(self._store), coop, name)
            if c is None or index >= len(c.schedules_done):
                break
            s = decode(c.code).schedules[index]
            period = next_period(s, c.schedules_done[index])
            if period > now:
                break
            body = {
                "contract": name,
                "rule": s.rule,
                "args": dict(s.args),
                "schedule": index,
                "period": period,
            }
            try:
                events, _ = self._author.submit(key, coop, [(b.INVOKED, body)], at=period)
            except BatchRefused as refused:
                if refused.code == Code.INVALID_PERIOD.value:
                    break  # another node keeping the coop's key ran this period first
                raise
            signed += events + self.execute(coop, events[0].id, key)
        return signed

    def duties(self, coop: str, key: SigningKey, now: int) -> list[Duty]:
        """Each pending execution, then each schedule due by ``now`` (trusted time)."""
        found: list[Duty] = [
            (f"execute invocation {i}", partial(self.execute, coop, i, key))
            for i in self.pending(coop)
        ]
        found += [
            (
                f"run schedule {i} of contract {name}",
                partial(self.run_schedule, coop, name, i, key, now),
            )
            for name, i in self.due_schedules(coop, now)
        ]
        return found
