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

from icn.application.log_rejudge import fresh_layer, rejudge
from icn.application.ports import EventStore
from icn.domain.refusals import Refusal
from icn.domain.trust import bodies as b


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


def verify_epochs(store: EventStore, coop: str) -> TrustVerification:
    """Judge ``coop``'s whole log again and check every ``trust.StandingPublished``."""
    checks: list[EpochCheck] = []
    others = events = 0
    for judged in rejudge(store, coop, fresh_layer(store)):
        event, result = judged.event, judged.result
        events += 1
        refused = isinstance(result, Refusal)
        if event.type == b.STANDING_PUBLISHED:
            reason = f"{result.code}: {result.reason}" if isinstance(result, Refusal) else None
            body = event.body
            checks.append(
                EpochCheck(
                    str(body.get("context")), int(body.get("epoch", 0)), judged.entry.leaf_index,
                    event.id, str(body.get("digest")), not refused, reason,
                )
            )  # fmt: skip
        elif refused:
            others += 1
    bad = sum(1 for c in checks if not c.ok)
    return TrustVerification(coop, bad == 0 and others == 0, events, checks, bad, others)
