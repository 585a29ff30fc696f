"""Each coop's trust classes as the rate limiter reads them: one copy per coop, in memory.

The limiter asks for a class on every request that carries a token, before
routing and on the event loop, so the answer must come from memory: a coop's
``general`` standings are read whole (the class of every member at the last
epoch) and kept until this node commits an event that changes them (an
epoch, or a ``coop.*`` event: the thresholds and the coop's DID live in its
policy) or for :data:`TTL_S` seconds (another process may have appended, as
``icn log import`` does). A miss reads the store in a worker thread, one read
per coop at a time however many requests wait for it.

Only limits read this. Decisions read the rules' standing records at their
own log position; a class here may lag an epoch by a request or two.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import anyio

from icn.application.append import CommittedEvent
from icn.application.errors import NotFound
from icn.domain.trust import bodies as b
from icn.domain.trust.classes import TrustClass
from icn.projections.trust_views import TrustReads, founded, standing

TTL_S = 5.0
CONTEXT = "general"
"""The context whose class limits a caller: the one every member has."""


@dataclass(frozen=True)
class CoopClasses:
    """What the limiter needs of one coop."""

    coop_did: str
    epoch: int | None
    """The last ``general`` epoch; ``None`` before the first."""
    classes: Mapping[str, TrustClass]
    """Each member's class at that epoch (members admitted since are absent)."""


def read_classes(reads: TrustReads, coop: str) -> CoopClasses | None:
    """The coop's classes from the read models, or ``None`` if it is not founded here."""
    try:
        record = founded(reads, coop)
        page = standing(reads, coop, CONTEXT)
    except NotFound:
        return None
    epoch = page.epoch.epoch if page.epoch is not None else None
    return CoopClasses(record.did, epoch, {m.did: TrustClass(m.trust_class) for m in page.members})


class CallerClasses:
    """The coops' classes, from memory; hand :meth:`forget` to the write path's commits."""

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
        self._copies: dict[str, tuple[float, CoopClasses | None]] = {}
        self._generation: dict[str, int] = {}
        """Bumped by :meth:`forget`: a read that began before it is not kept."""
        self._lock = threading.Lock()  # forget runs in the writer's thread
        self._loading: dict[str, asyncio.Lock] = {}

    def held(self, coop: str) -> tuple[bool, CoopClasses | None]:
        """``(True, classes)`` when a fresh copy is in memory, else ``(False, None)``."""
        with self._lock:
            found = self._copies.get(coop)
        if found is not None and self._clock() - found[0] < self._ttl_s:
            return True, found[1]
        return False, None

    async def of(self, coop: str) -> CoopClasses | None:
        """The coop's classes, read in a worker thread when memory has no fresh copy."""
        fresh, value = self.held(coop)
        if fresh:
            return value
        lock = self._loading.setdefault(coop, asyncio.Lock())
        async with lock:  # the requests that missed together wait for one read
            fresh, value = self.held(coop)
            if fresh:
                return value
            return await anyio.to_thread.run_sync(self.load, coop)

    def load(self, coop: str) -> CoopClasses | None:
        """Read the coop's classes now and keep them (unless forgotten meanwhile)."""
        with self._lock:
            generation = self._generation.get(coop, 0)
        started = self._clock()
        value = read_classes(self._reads, coop)
        with self._lock:
            if self._generation.get(coop, 0) == generation:
                self._copies[coop] = (started, value)
        return value

    def forget(self, events: Sequence[CommittedEvent]) -> None:
        """The commit listener: drop the coops whose epoch or policy changed."""
        changed = {
            e.coop
            for e in events
            if e.event_type == b.STANDING_PUBLISHED or e.event_type.startswith("coop.")
        }
        if not changed:
            return
        with self._lock:
            for coop in changed:
                self._copies.pop(coop, None)
                self._generation[coop] = self._generation.get(coop, 0) + 1
