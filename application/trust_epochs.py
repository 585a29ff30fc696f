"""The standing epoch duty: the coop's DID publishes ``trust.StandingPublished`` when one is due.

An epoch is due in a context once ``policy.trust.epoch_every_attestations``
attestations or revocations arrived since the last one, or once
``epoch_every_seconds`` passed since it (since the founding, for the first)
in a context that has ever had an attestation, so that expiry and decay
reach the classes even when nobody states anything new. ``icn trust
publish`` asks for one at once.

The body is computed from the trigger, the state as the log stands: the
standing of :func:`~icn.domain.trust.rules.standing_at` for the event's
``ts``, ``as_of`` the log's size. Every node recomputes it when it judges the
event, at the event's own position, so a write that slipped in between
refuses it with ``standing-mismatch``: it is computed again, a few times on
demand, else at the next tick. Two nodes that both hold the coop's
key and compute the same epoch sign the same bytes, so ``ts`` is a function
of the trigger, not of either node's clock: the trusted time of the log's
last event for a count trigger or a request (the newest fact the epoch
covers), the moment the period ran out for a time trigger; never before the
coop chain's head, since ``ts`` never goes back along a chain.

Decay and expiry make standing a function of time, so the body is computed
for the event's own ``ts`` and every node judges it for that instant (see
the rule in :mod:`icn.domain.trust.rules`): no race between the computation
and the trusted time its append gets.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import msgspec
from nacl.signing import SigningKey

from icn.application.append import AppendEvents
from icn.application.coop_view import CoopQueries, decode_record
from icn.application.errors import BatchRefused
from icn.application.ports import EventStore
from icn.domain.coop.records import CoopRecord, Record
from icn.domain.events.envelope import Event, decode_stored, sign_event
from icn.domain.identity.did import did_from_public_key
from icn.domain.refusals import Code
from icn.domain.trust import bodies as b
from icn.domain.trust import state
from icn.domain.trust.records import EpochRecord
from icn.domain.trust.rules import standing_at

ATTEMPTS = 3
"""Computations per request before giving up until the next tick."""
RETRIED = {Code.STANDING_MISMATCH.value, "fork", "broken-link", "gap"}
"""Refusals that mean "the log moved under this computation", not "this is wrong"."""


class CommittedState(CoopQueries):
    """The coop rules' records as the store's last commit left them (read-only)."""

    def __init__(self, store: EventStore) -> None:
        self._store = store

    def record(self, coop: str, kind: str, key: str) -> Record | None:
        raw = self._store.state_get(coop, kind, key)
        return decode_record(kind, raw) if raw is not None else None

    def event(self, coop: str, event_id: str) -> Event | None:
        entry = self._store.find(event_id)
        return decode_stored(entry.wire) if entry is not None and entry.coop == coop else None

    def scan(self, coop: str, kind: str, prefix: str) -> list[Record]:
        rows = self._store.state_records(coop, kind)
        return [decode_record(kind, v) for k, v in sorted(rows) if k.startswith(prefix)]

    def log_size(self, coop: str) -> int:
        return self._store.tree_size(coop)


class Trigger(msgspec.Struct, frozen=True):
    """Why an epoch is due, and the ``ts`` that follows from it."""

    reason: str
    """``attestations``, ``period`` or ``requested``."""
    ts: int


def trigger(
    coop: CoopRecord, last: EpochRecord | None, now_ms: int, last_event_ms: int
) -> Trigger | None:
    """Whether the context whose last epoch record is ``last`` is due at ``now_ms``."""
    if last is None:  # no attestation ever in this context
        return None
    policy = coop.policy.trust
    if last.attestations_since >= policy.epoch_every_attestations:
        return Trigger("attestations", last_event_ms)
    since = last.published_ms if last.epoch > 0 else coop.founded_ms
    deadline = since + policy.epoch_every_seconds * 1000
    if now_ms >= deadline:
        return Trigger("period", deadline)
    return None


class TrustEpochs:
    """Use case: publish the standing epochs that are due, signed with the coop's key."""

    def __init__(self, store: EventStore, append: AppendEvents, clock_ms: Callable[[], int]):
        self._store = store
        self._append = append
        self._clock_ms = clock_ms

    def _last_event_ms(self, coop: str, size: int) -> int:
        """Trusted time of the log's last event (its author's ts in stores older than that)."""
        for entry in self._store.entries(coop, size - 1, size):
            return (
                entry.trusted_ms if entry.trusted_ms is not None else decode_stored(entry.wire).ts
            )
        return 0

    def due(self, coop: str) -> dict[str, Trigger]:
        """Every context of ``coop`` whose epoch is due now, with its trigger."""
        view = CommittedState(self._store)
        record = view.coop(coop)
        if record is None:
            return {}
        now = self._clock_ms()
        size = view.log_size(coop)
        found: dict[str, Trigger] = {}
        for context in b.CONTEXTS:
            t = trigger(record, state.epoch(view, coop, context), now, 0)
            if t is not None:
                if t.reason == "attestations":
                    t = Trigger(t.reason, self._last_event_ms(coop, size))
                found[context] = t
        return found

    def publish(
        self, coop: str, context: str, key: SigningKey, reason: Trigger | None = None
    ) -> Event:
        """Compute and append the next epoch of ``context`` now; :class:`BatchRefused` if the
        rules refuse it (``epoch-out-of-order``: another node published it first)."""
        for attempt in range(ATTEMPTS):
            event = self._sign(coop, context, key, reason)
            try:
                self._append.append([event.wire_bytes()], atomic=True)
            except BatchRefused as refused:
                if refused.code in RETRIED and attempt < ATTEMPTS - 1:
                    continue
                raise
            return event
        raise AssertionError("unreachable")

    def _sign(self, coop: str, context: str, key: SigningKey, reason: Trigger | None) -> Event:
        view = CommittedState(self._store)
        record = view.coop(coop)
        if record is None:
            raise BatchRefused(1, "rejected", f"coop {coop} is not founded", Code.UNKNOWN_COOP)
        size = view.log_size(coop)
        author = did_from_public_key(bytes(key.verify_key))
        head = self._store.head(coop, author)
        ts = reason.ts if reason is not None else self._last_event_ms(coop, size)
        ts = max(ts, head.ts if head else 0)
        result = standing_at(view, record, context, ts)
        last = state.epoch(view, coop, context)
        body = {
            "context": context,
            "epoch": (last.epoch if last else 0) + 1,
            "as_of": size,
            "count": len(result.members),
            "digest": result.digest(),
        }
        return sign_event(
            key,
            coop=coop,
            seq=head.seq + 1 if head else 1,
            prev=head.id if head else None,
            ts=ts,
            type=b.STANDING_PUBLISHED,
            body=body,
        )

    def publish_now(self, coop: str, key: SigningKey, context: str | None = None) -> list[Event]:
        """On demand (``icn trust publish``): the next epoch of ``context``, or of every
        context that has had an attestation, whether due or not."""
        view = CommittedState(self._store)
        contexts = [context] if context else b.CONTEXTS
        wanted = [c for c in contexts if context or state.epoch(view, coop, c) is not None]
        return [self.publish(coop, c, key) for c in wanted]

    def publish_due(self, coop: str, context: str, key: SigningKey) -> list[Event]:
        """The duty: the next epoch of ``context`` if it is still due, as the log stands
        when it runs. Another node keeping the coop's key may have published it since the
        round was planned (its epoch reached us meanwhile): then it is no longer due and
        nothing is signed, where publishing would add the epoch after it. A computation
        the log moved under is repeated from the trigger, which is looked at again too."""
        for attempt in range(ATTEMPTS):
            reason = self.due(coop).get(context)
            if reason is None:
                return []
            event = self._sign(coop, context, key, reason)
            try:
                self._append.append([event.wire_bytes()], atomic=True)
            except BatchRefused as refused:
                if refused.code in RETRIED and attempt < ATTEMPTS - 1:
                    continue
                raise
            return [event]
        raise AssertionError("unreachable")

    def duties(self, coop: str, key: SigningKey) -> list[tuple[str, Callable[[], list[Event]]]]:
        """One duty per context of ``coop`` whose epoch is due, for the node's duty round
        (each stands alone: a refused one keeps neither the others nor other coops)."""
        return [
            (f"publish {ctx} standing", partial(self.publish_due, coop, ctx, key))
            for ctx in sorted(self.due(coop))
        ]
