"""Trust reads from memory: a member's standing, and paths, without a query each time.

A standing changes only when an epoch is published (or the coop's policy, and
with it the class thresholds, changes), and the graph only when someone
vouches or revokes; so each (coop, context) is read once, whole, into ready
documents (standings by DID) or adjacency maps (the live graph, weights
decayed to the moment it was read), and every lookup after that reads memory.
A copy is dropped as soon as this node commits an event that changes it (the
write path's commit listener, which hears HTTP posts, replicated events and
the node's own duties); since other processes may append to the same store
(``icn log import``), and decay and expiry move on, a copy is also kept for
:data:`TTL_S` seconds at most. Decisions never read this: the rules read the
standing records themselves, and paths decide nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from icn.application.append import CommittedEvent
from icn.domain.trust import bodies as b
from icn.projections.trust_views import (
    LiveGraph,
    MemberStandings,
    MemberStandingView,
    PathView,
    TrustReads,
    live_graph,
    path_in,
    standing,
)

TTL_S = 5.0
T = TypeVar("T")


class _Copies(Generic[T]):
    """One loaded value per (coop, context), kept for ``ttl_s`` or until dropped."""

    def __init__(
        self, load: Callable[[str, str], T], ttl_s: float, clock: Callable[[], float]
    ) -> None:
        self._load = load
        self._ttl_s = ttl_s
        self._clock = clock
        self._copies: dict[tuple[str, str], tuple[float, T]] = {}
        self._lock = threading.Lock()

    def get(self, coop: str, context: str) -> T:
        now = self._clock()
        with self._lock:
            found = self._copies.get((coop, context))
        if found is not None and now - found[0] < self._ttl_s:
            return found[1]
        value = self._load(coop, context)  # NotFound for a coop never founded: not kept
        with self._lock:
            self._copies[(coop, context)] = (now, value)
        return value

    def drop(self, coops: set[str]) -> None:
        if not coops:
            return
        with self._lock:
            for key in [k for k in self._copies if k[0] in coops]:
                del self._copies[key]


class TrustBook:
    """Member standings and live graphs per (coop, context), read whole, answered from memory."""

    def __init__(
        self,
        reads: TrustReads,
        now_ms: Callable[[], int],
        *,
        ttl_s: float = TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._standings: _Copies[dict[str, MemberStandingView]] = _Copies(
            lambda c, ctx: {m.did: m for m in standing(reads, c, ctx).members}, ttl_s, clock
        )
        self._graphs: _Copies[LiveGraph] = _Copies(
            lambda c, ctx: live_graph(reads, c, ctx, now_ms()), ttl_s, clock
        )

    def member(self, coop: str, did: str, context: str | None) -> MemberStandings:
        """:func:`~icn.projections.trust_views.member_standing`, from memory."""
        found = []
        for ctx in [context] if context else b.CONTEXTS:
            view = self._standings.get(coop, ctx).get(did)
            if view is not None:
                found.append(view)
        return MemberStandings(coop, did, found)

    def path(self, coop: str, source: str, target: str, context: str) -> PathView:
        """:func:`~icn.projections.trust_views.path` over the kept graph."""
        return path_in(self._graphs.get(coop, context), coop, source, target, context)

    def forget(self, events: Sequence[CommittedEvent]) -> None:
        """The commit listener: drop the copies of coops whose standing, graph or policy
        changed."""
        policy = {e.coop for e in events if e.event_type.startswith("coop.")}
        epochs = {e.coop for e in events if e.event_type == b.STANDING_PUBLISHED}
        said = {
            e.coop
            for e in events
            if e.event_type in (b.ATTESTATION_RECORDED, b.ATTESTATION_REVOKED)
        }
        self._standings.drop(policy | epochs)
        self._graphs.drop(policy | said)
