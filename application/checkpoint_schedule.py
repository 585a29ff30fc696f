"""When to checkpoint: every N events or T seconds, whichever comes first."""

from __future__ import annotations

from collections.abc import Callable

from icn.application.checkpoints import CheckpointPolicy, IssueCheckpoint
from icn.application.ports import EventStore, StoredCheckpoint


class CheckpointSchedule:
    """Called periodically by the running node; issues the checkpoints that are due."""

    def __init__(
        self,
        store: EventStore,
        issuer: IssueCheckpoint,
        policy: CheckpointPolicy,
        clock_ms: Callable[[], int],
    ) -> None:
        self._store = store
        self._issuer = issuer
        self._policy = policy
        self._clock_ms = clock_ms
        self._since: dict[str, int] = {}

    def tick(self) -> list[StoredCheckpoint]:
        """Issue every due checkpoint; return them."""
        now = self._clock_ms()
        issued = []
        for coop in self._store.coops():
            new = self._issuer.new_events(coop)
            if new <= 0:
                self._since.pop(coop, None)
                continue
            first_seen = self._since.setdefault(coop, now)
            if self._policy.due(new, now - first_seen):
                issued.append(self._issuer.issue(coop))
                self._since.pop(coop, None)
        return issued
