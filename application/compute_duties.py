"""The compute duties: the coop's DID settles tasks whose answers are all in, and re-places
or expires tasks whose executors never answer.

As with the contract duties (:mod:`icn.application.contract_duties`), every
node keeping the coop's key may run this at once, so a settlement is computed
from the task's record alone and dated at the trusted time of the reveal that
judged it: two nodes racing sign the same bytes, and the slower finds the task
settled and leaves it. The entry paying the agreeing executors from the hold
and ``compute.TaskSettled`` (which releases the hold) go in one atomic batch,
so a hold is never released without its payment, nor paid twice.

A running task past its placement's deadline has its stalled executors
re-placed, or once answers are revealed dropped and the answers in judged
(``compute.TaskReplaced``, dated at that deadline); one past its
final deadline expires and its hold is released (``compute.TaskExpired``,
dated at the final deadline). Which one is due is read from the node's clock
(:func:`icn.domain.compute.deadlines.step`), but what is signed is computed
from the task's record alone, so two nodes keeping the key sign the same
bytes, and the rules judge it again at its stream position. A task too few
other executors can take waits for its expiry.
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
from icn.domain.compute import deadlines
from icn.domain.compute.task_bodies import TASK_EXPIRED, TASK_REPLACED, TASK_SETTLED
from icn.domain.compute.task_records import TaskState
from icn.domain.compute.task_rules import entries_of, running, settlements, task
from icn.domain.compute.task_timeouts import can_go_on, replacements
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

    def late(self, coop: str, now: int) -> list[str]:
        """Running tasks past a deadline at ``now`` (the node's clock), oldest first."""
        tasks = running(CommittedState(self._store), coop).tasks
        return [task_id for task_id, at in tasks.items() if at <= now]

    def time_out(self, coop: str, task_id: str, key: SigningKey, now: int) -> list[Event]:
        """Expire the task, or re-place its stalled executors, as its deadlines say at
        ``now``; nothing when no other executor can take their places (it waits to expire)."""
        view = CommittedState(self._store)
        t = task(view, coop, task_id)
        if t is None:
            return []
        what = deadlines.step(t, now)
        if what == deadlines.EXPIRE:
            item: tuple[str, BodyOf] = (TASK_EXPIRED, {"task": t.id})
            at = deadlines.expires_ms(t)
        elif what == deadlines.REPLACE:
            at = deadlines.due_ms(t)
            if not can_go_on(t, replacements(view, coop, t, at)):
                return []
            item = (TASK_REPLACED, {"task": t.id, "attempt": t.replacements})
        else:
            return []
        try:
            events, _ = self._author.submit(key, coop, [item], at=at)
        except BatchRefused as refused:
            if refused.code in (Code.TASK_NOT_RUNNING.value, Code.TASK_NOT_DUE.value):
                return []  # answered meanwhile, or another node keeping the key was first
            raise
        return events

    def duties(self, coop: str, key: SigningKey, now: int | None = None) -> list[Duty]:
        """One duty per task waiting for its settlement, then (given the node's clock
        ``now``) one per running task past a deadline."""
        found: list[Duty] = [
            (f"settle task {t}", partial(self.settle, coop, t, key)) for t in self.pending(coop)
        ]
        if now is not None:
            found += [
                (f"time out task {t}", partial(self.time_out, coop, t, key, now))
                for t in self.late(coop, now)
            ]
        return found
