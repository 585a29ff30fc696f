"""Is a token's holder still an active member? Asked on every use of a token, answered from a cache.

A token is issued only to an active member, but it lives an hour; a member
suspended (or gone) in that hour must lose access at once, not when the
token expires. So every authorised request asks here. The answer is kept per
(coop, DID) and dropped as soon as this node commits any ``coop.*`` event of
that coop (membership, roles, founding): the commit listener of the write
path, which hears HTTP posts, replicated events and the node's own duties
alike. Other processes may append to the same store (``icn log import``), and
a commit listener cannot hear them, so an answer is also kept for
:data:`TTL_S` seconds at most.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable

from icn.application.append import CommittedEvent
from icn.application.ports import EventStore
from icn.application.queries import coop_of, member_of
from icn.domain.coop.records import MemberStatus
from icn.interfaces.http.problems import ApiProblem

TTL_S = 5.0
MAX_ENTRIES = 100_000
MEMBERSHIP_PREFIX = "coop."

Refusal = tuple[str, str] | None
"""``(code, detail)`` of a refusal, or ``None``: the holder stands."""


class MemberStanding:
    """The cache, and the check the gate (``gate.Gate``) runs for every token use."""

    def __init__(
        self,
        store: EventStore,
        node_did: str,
        *,
        ttl_s: float = TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._node_did = node_did
        self._ttl_s = ttl_s
        self._clock = clock
        self._answers: OrderedDict[tuple[str, str], tuple[Refusal, float]] = OrderedDict()
        self._generation: Counter[str] = Counter()
        self._lock = threading.Lock()

    def check(self, coop: str, did: str) -> None:
        """403 ``member-suspended`` / ``not-a-member`` unless ``did`` may act in ``coop``."""
        refusal = self.refusal(coop, did)
        if refusal is not None:
            raise ApiProblem(403, *refusal)

    def remembered(self, coop: str, did: str) -> bool:
        """Whether :meth:`refusal` can answer without reading the store (so a caller on
        the event loop knows when to move the check to a worker thread)."""
        if did == self._node_did:
            return True
        with self._lock:
            hit = self._answers.get((coop, did))
        return hit is not None and hit[1] > self._clock()

    def refusal(self, coop: str, did: str) -> Refusal:
        """Why ``did``'s token no longer works in ``coop``, or ``None``."""
        if did == self._node_did:
            return None
        key = (coop, did)
        now = self._clock()
        with self._lock:
            hit = self._answers.get(key)
            if hit is not None and hit[1] > now:
                return hit[0]
            generation = self._generation[coop]
        refusal = self._judge(coop, did)  # outside the lock: a store read
        with self._lock:
            if self._generation[coop] == generation:  # no membership commit meanwhile
                self._answers[key] = (refusal, now + self._ttl_s)
                self._answers.move_to_end(key)
                while len(self._answers) > MAX_ENTRIES:
                    self._answers.popitem(last=False)
        return refusal

    def forget(self, events: list[CommittedEvent]) -> None:
        """A commit listener: drop what is known of coops whose membership may have changed."""
        coops = {e.coop for e in events if e.event_type.startswith(MEMBERSHIP_PREFIX)}
        if not coops:
            return
        with self._lock:
            for coop in coops:
                self._generation[coop] += 1
            for key in [k for k in self._answers if k[0] in coops]:
                del self._answers[key]

    def _judge(self, coop: str, did: str) -> Refusal:
        record = coop_of(self._store, coop)
        if record is not None and record.did == did:
            return None  # the coop's own DID
        member = member_of(self._store, coop, did)
        if member is not None and member.status == MemberStatus.SUSPENDED:
            return "member-suspended", f"{did} is suspended in {coop}"
        if member is None or not member.is_active:
            return "not-a-member", f"{did} is no longer an active member of {coop}"
        return None
