"""Signing the next events of one key's chain and appending them, all or nothing.

Used wherever this node (or a custodial key it holds) states something: the
CLI's ``pay`` and ``member`` commands, the demo seed, and the coop's own
duties (dispute settlements, demurrage). The head is read, the events are
signed on top of it and appended atomically; if another writer extended the
same chain in between, the spec verdict says so (fork, broken link) and the
events are signed again on the new head.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from nacl.signing import SigningKey

from icn.application.append import AppendEvents, Outcome
from icn.application.errors import BatchRefused
from icn.application.ports import EventStore
from icn.domain.events.envelope import Event, sign_event
from icn.domain.events.verdicts import Verdict
from icn.domain.identity.did import did_from_public_key

BodyOf = dict[str, Any] | Callable[[list[Event]], dict[str, Any]]
"""A body, or a function of the events signed before it in the same batch (to link them)."""

RACES = (Verdict.FORK.value, Verdict.BROKEN_LINK.value, Verdict.GAP.value)
ATTEMPTS = 3


class EventAuthor:
    """Use case: sign and append events of one key's chain."""

    def __init__(self, store: EventStore, append: AppendEvents, clock_ms: Callable[[], int]):
        self._store = store
        self._append = append
        self._clock_ms = clock_ms

    def sign_next(
        self,
        key: SigningKey,
        coop: str,
        items: Sequence[tuple[str, BodyOf]],
        *,
        at: int | None = None,
    ) -> list[Event]:
        """The next events of ``key``'s chain in ``coop``, on top of the stored head.

        Dated now, or at ``at`` (a duty's trigger, so that every node keeping the key signs
        the same bytes); never before the head's ``ts``, which never goes back along a chain.
        """
        author = did_from_public_key(bytes(key.verify_key))
        head = self._store.head(coop, author)
        seq, prev, ts = (head.seq, head.id, head.ts) if head else (0, None, 0)
        ts = max(ts, self._clock_ms() if at is None else at)
        events: list[Event] = []
        for event_type, body in items:
            event = sign_event(
                key,
                coop=coop,
                seq=seq + 1,
                prev=prev,
                ts=ts,
                type=event_type,
                body=body(events) if callable(body) else body,
            )
            events.append(event)
            seq, prev = event.seq, event.id
        return events

    def submit(
        self,
        key: SigningKey,
        coop: str,
        items: Sequence[tuple[str, BodyOf]],
        *,
        at: int | None = None,
    ) -> tuple[list[Event], list[Outcome]]:
        """Sign and append ``items`` in one transaction (dated as :meth:`sign_next` says);
        raise :class:`BatchRefused` if refused."""
        for attempt in range(ATTEMPTS):
            events = self.sign_next(key, coop, items, at=at)
            try:
                outcomes = self._append.append([e.wire_bytes() for e in events], atomic=True)
            except BatchRefused as refused:
                if refused.verdict in RACES and attempt < ATTEMPTS - 1:
                    continue  # another writer extended this chain: sign on the new head
                self._append.telemetry.refused(coop, refused.code)
                raise
            return events, outcomes
        raise AssertionError("unreachable")
