"""``icn trust verify``: recompute every standing epoch of a coop from its log and compare.

The coop's log is judged again, in order, by the same rules the write path
used, in memory; the rule for ``trust.StandingPublished`` recomputes the
standing at the event's own position and trusted time and refuses it unless
``as_of``, ``count`` and ``digest`` match. So an epoch whose rule refuses it
here is a mismatch, whatever the reason, and the verdict is the same one any
node or auditor reaches, since the computation is exact integer arithmetic.
Other events the rules now refuse are counted too: an epoch after them is
judged on a state that lacks them.
"""

from __future__ import annotations

import msgspec

from icn.application.coop_view import NoRecords, StateLayer
from icn.application.ports import EventStore
from icn.domain.coop.evolve import evolve
from icn.domain.events.envelope import Event, decode_stored
from icn.domain.refusals import Refusal
from icn.domain.trust import bodies as b

KEEP_EVENTS = 10_000
"""Events kept in memory for the rules to look up; older ones are read back from the store."""


class EpochCheck(msgspec.Struct):
    """One published epoch and whether its recomputation matches."""

    context: str
    epoch: int
    position: int
    event_id: str
    digest: str
    ok: bool
    reason: str | None = None


class TrustVerification(msgspec.Struct):
    """Every epoch of the coop, checked; ``ok`` when all match and no other event was refused."""

    coop: str
    ok: bool
    events: int
    epochs: list[EpochCheck]
    mismatches: int
    other_refusals: int


class _StoredEvents(NoRecords):
    """Only events, read back from the store (every record is in the layer above)."""

    def __init__(self, store: EventStore) -> None:
        self._store = store

    def event(self, coop: str, event_id: str) -> Event | None:
        found = self._store.find(event_id)
        return decode_stored(found.wire) if found is not None and found.coop == coop else None


def verify_epochs(store: EventStore, coop: str) -> TrustVerification:
    """Judge ``coop``'s whole log again and check every ``trust.StandingPublished``."""
    layer = StateLayer(_StoredEvents(store))
    checks: list[EpochCheck] = []
    others = events = 0
    for entry in store.entries(coop):
        event = decode_stored(entry.wire)
        events += 1
        trusted = entry.trusted_ms if entry.trusted_ms is not None else event.ts
        result = evolve(event, layer, trusted)
        refused = isinstance(result, Refusal)
        if event.type == b.STANDING_PUBLISHED:
            reason = f"{result.code}: {result.reason}" if isinstance(result, Refusal) else None
            body = event.body
            checks.append(
                EpochCheck(
                    str(body.get("context")), int(body.get("epoch", 0)), entry.leaf_index,
                    event.id, str(body.get("digest")), not refused, reason,
                )
            )  # fmt: skip
        elif refused:
            others += 1
        if not isinstance(result, Refusal):
            layer.write(event, result)
        if len(layer.events) > KEEP_EVENTS:
            layer.events.clear()
    bad = sum(1 for c in checks if not c.ok)
    return TrustVerification(coop, bad == 0 and others == 0, events, checks, bad, others)
