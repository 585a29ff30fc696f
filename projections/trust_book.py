"""Standing lookups from memory: what one member's standing is, without a query.

A standing changes only when an epoch is published (or the coop's policy, and
with it the class thresholds, changes), so each (coop, context) is read once,
whole, into a dictionary of ready documents, and every lookup after that is a
dictionary read. The copy is dropped as soon as this node commits a
``trust.StandingPublished`` or a ``coop.*`` event of that coop (the write
path's commit listener, which hears HTTP posts, replicated events and the
node's own duties); since other processes may append to the same store
(``icn log import``), a copy is also kept for :data:`TTL_S` seconds at most.
Decisions never read this: the rules read the standing records themselves.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from icn.application.append import CommittedEvent
from icn.domain.trust import bodies as b
from icn.projections.trust_views import (
    MemberStandings,
    MemberStandingView,
    TrustReads,
    standing,
)

TTL_S = 5.0

_Copy = tuple[float, dict[str, MemberStandingView]]
"""When it was read, and every member's standing document by DID."""


class StandingBook:
    """Member standings per (coop, context), read whole and then answered from memory."""

    def __init__(
        self,
        reads: TrustReads,
        *,
        ttl_s: float = TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._reads = reads
        self._ttl_s = ttl_s
        self._clock = clock
        self._copies: dict[tuple[str, str], _Copy] = {}
        self._lock = threading.Lock()

    def _copy(self, coop: str, context: str) -> dict[str, MemberStandingView]:
        now = self._clock()
        with self._lock:
            found = self._copies.get((coop, context))
        if found is not None and now - found[0] < self._ttl_s:
            return found[1]
        page = standing(self._reads, coop, context)  # NotFound for a coop never founded
        members = {m.did: m for m in page.members}
        with self._lock:
            self._copies[(coop, context)] = (now, members)
        return members

    def member(self, coop: str, did: str, context: str | None) -> MemberStandings:
        """:func:`~icn.projections.trust_views.member_standing`, from memory."""
        found = []
        for ctx in [context] if context else b.CONTEXTS:
            view = self._copy(coop, ctx).get(did)
            if view is not None:
                found.append(view)
        return MemberStandings(coop, did, found)

    def forget(self, events: Sequence[CommittedEvent]) -> None:
        """The commit listener: drop the copies of coops whose standing or policy changed."""
        stale = {
            e.coop
            for e in events
            if e.event_type == b.STANDING_PUBLISHED or e.event_type.startswith("coop.")
        }
        if not stale:
            return
        with self._lock:
            for key in [k for k in self._copies if k[0] in stale]:
                del self._copies[key]
