"""The compute duty: the coop's DID settles tasks whose answers are all in.

As with the contract duties (:mod:`icn.application.contract_duties`), every
node keeping the coop's key may run this at once, so a settlement is computed
from the task's record alone and dated at the trusted time of the reveal that
judged it: two nodes racing sign the same bytes, and the slower finds the task
settled and leaves it. The entry paying the agreeing executors from the hold
and ``compute.TaskSettled`` (which releases the hold) go in one atomic batch,
so a hold is never released without its payment, nor paid twice.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from nacl.signing import SigningKey

from icn.application.authoring import BodyOf, EventAuthor
from icn.application.errors import BatchRefused
from icn.application.ports import EventStore
from icn.application.trust_epochs import CommittedState
from icn.domain.compute.task_bodies import TASK_SETTLED
from icn.domain.compute.task_records import TaskState
from icn.domain.compute.task_rules import entries_of, settlements, task
from icn.domain.events.bodies import ENTRY_RECORDED
from icn.domain.events.envelope import Event
from icn.domain.refusals import Code

Duty = tuple[str, Callable[[], list[Event]]]


def _settled(task_id: str, before: list[Event]) -> dict[str, Any]:
    return {"task": task_id, "effects": [e.id for e in before]}


class ComputeDuties:
    """Use case: settle every task whose answers are judged."""

    def __init__(self, store: EventStore, author: EventAuthor):
        self._store = store
        self._author = author

    def pending(self, coop: str) -> list[str]:
        """Tasks judged and waiting for their settlement, oldest first."""
        return list(settlements(CommittedState(self._store), coop).ids)

    def settle(self, coop: str, task_id: str, key: SigningKey) -> list[Event]:
        """Sign the entry that pays the agreeing executors and ``compute.TaskSettled``."""
        t = task(CommittedState(self._store), coop, task_id)
        if t is None or t.state not in (TaskState.AGREED, TaskState.UNRESOLVED):
            return []
        items: list[tuple[str, BodyOf]] = [(ENTRY_RECORDED, e) for e in entries_of(t)]
        items.append((TASK_SETTLED, partial(_settled, t.id)))
        try:
            events, _ = self._author.submit(key, coop, items, at=t.judged_ms)
        except BatchRefused as refused:
            if refused.code == Code.TASK_NOT_SETTLEABLE.value:
                return []  # another node keeping the coop's key settled it first
            raise
        return events

    def duties(self, coop: str, key: SigningKey) -> list[Duty]:
        """One duty per task waiting for its settlement."""
        pending = self.pending(coop)
        return [(f"settle task {t}", partial(self.settle, coop, t, key)) for t in pending]
