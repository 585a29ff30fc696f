"""When a coop takes sequenced writes, and a consumer waiting for this node's own commits.

A write is judged at the last stream position this node's store holds, so a coop
takes writes only once that position says it all: the consumer's position is known
(everything up to its ack floor is committed) and the relay has published whatever
the log held unpublished. A write to a coop this node does not serve yet asks for
it (:attr:`WriteGates.wanted_listeners`) and waits, in its store thread, until the
coop opens. And a batch the consumer reads back made only of this node's own
sequenced writes can arrive a moment before their commit (the stream's ack comes
first): the consumer waits for that commit briefly rather than judging them again
the long way.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable

from icn.application.sequencing import StreamPositions

OWN_COMMIT_WAIT_S = 1.0
"""How long the consumer waits, for a batch made only of this node's own sequenced writes,
for their commit (it normally follows the stream's ack within milliseconds) before it
takes the batch the long way."""
PARTS = frozenset({"consumer", "relay"})


class WriteGates:
    """Per coop: the parts that are ready, whether it takes writes, and how far this node
    itself put it in the stream. Thread-safe but for :meth:`committed_up_to` (a loop's)."""

    def __init__(self, positions: StreamPositions | None = None) -> None:
        self.positions = positions or StreamPositions()
        self.wanted_listeners: list[Callable[[str], None]] = []
        """Told, in the writing thread, of a coop a write asks for that is not open yet."""
        self._lock = threading.Lock()
        self._closed = False
        self._open: set[str] = set()
        self._opened: dict[str, threading.Event] = {}
        self._wanted: set[str] = set()
        self._parts: dict[str, set[str]] = {}
        self._published_to: dict[str, int] = {}
        self._advanced: dict[str, tuple[asyncio.AbstractEventLoop, asyncio.Event]] = {}
        self.positions.listeners.append(self._on_advance)

    # -- writers' side (store threads) ------------------------------------------------------

    def wait_open(self, coop: str, timeout: float) -> bool:
        """Until ``coop`` takes writes (asking for it once); False after ``timeout``, or at
        once while the node stops."""
        with self._lock:
            if coop in self._open:
                return True
            if self._closed:
                return False
            opened = self._opened.setdefault(coop, threading.Event())
            asked = coop in self._wanted
            self._wanted.add(coop)
        if not asked:
            for listener in self.wanted_listeners:
                listener(coop)
        return opened.wait(timeout) and self.is_open(coop)

    def is_open(self, coop: str) -> bool:
        """The coop takes writes now."""
        with self._lock:
            return coop in self._open

    def wanted(self) -> list[str]:
        """Coops writes asked for (the supervisor serves them once connected)."""
        with self._lock:
            return sorted(self._wanted)

    def published(self, coop: str, last: int) -> None:
        """A sequenced write of this node ends at stream sequence ``last``."""
        with self._lock:
            self._published_to[coop] = max(self._published_to.get(coop, 0), last)

    def published_to(self, coop: str) -> int:
        """The last stream sequence this node's sequenced writes put in ``coop``'s stream."""
        with self._lock:
            return self._published_to.get(coop, 0)

    # -- the supervisor's side ----------------------------------------------------------------

    def resume(self) -> None:
        """Take writes again as coops open (after :meth:`close`; a new gate starts so)."""
        with self._lock:
            self._closed = False

    def close(self) -> None:
        """Refuse every write from now on (the node is stopping); waiting writers give up."""
        with self._lock:
            self._closed = True
            self._open.clear()
            self._parts.clear()
            waiting, self._opened = self._opened, {}
        for event in waiting.values():
            event.set()

    def track(self, coop: str) -> None:
        """The coop is being served: none of its parts is ready yet."""
        with self._lock:
            self._parts[coop] = set()

    def part_ready(self, coop: str, part: str) -> None:
        """``consumer``: its position is known; ``relay``: the backlog went out once. With
        both, the coop's writes can be judged at a position that says it all."""
        with self._lock:
            parts = self._parts.setdefault(coop, set())
            parts.add(part)
            if parts < PARTS or self._closed:
                return
            self._open.add(coop)
            opened = self._opened.pop(coop, None)
        if opened is not None:
            opened.set()

    # -- the consumer's side (on its loop) ----------------------------------------------------

    def _on_advance(self, coop: str, _position: int) -> None:
        """In the advancing thread: wake whoever waits on the coop's position."""
        waiting = self._advanced.get(coop)
        if waiting is not None:
            loop, event = waiting
            with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits
                loop.call_soon_threadsafe(event.set)

    async def committed_up_to(self, coop: str, last: int) -> bool:
        """True when the store holds the coop's stream up to ``last``: then a batch ending
        there needs no work. A batch of this node's own sequenced writes may arrive
        before their commit: wait for it, briefly."""
        if self.positions.at(coop) >= last:
            return True
        if self.published_to(coop) < last:
            return False
        waiting = self._advanced.get(coop)
        loop = asyncio.get_running_loop()
        if waiting is None or waiting[0] is not loop:
            waiting = self._advanced[coop] = (loop, asyncio.Event())
        advanced = waiting[1]
        deadline = time.monotonic() + OWN_COMMIT_WAIT_S
        while self.positions.at(coop) < last:
            left = deadline - time.monotonic()
            if left <= 0:
                return False  # the write failed after its publish: the intake commits it
            advanced.clear()
            if self.positions.at(coop) >= last:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(advanced.wait(), left)
        return True
