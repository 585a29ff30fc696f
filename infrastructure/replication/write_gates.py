"""When a coop takes sequenced writes, and a consumer waiting for this node's own commits.

A write is judged at the last stream position this node's store holds, so a coop
takes writes only once that position says it all: the consumer's position is known
(everything up to its ack floor is committed) and the relay has published whatever
the log held unpublished. And a batch the consumer reads back made only of this
node's own sequenced writes can arrive a moment before their commit (the stream's
ack comes first): the consumer waits for that commit briefly rather than judging
them again the long way.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from icn.application.sequencing import StreamPositions
from icn.infrastructure.replication.sequencer import JetStreamSequencer

OWN_COMMIT_WAIT_S = 1.0
"""How long the consumer waits, for a batch made only of this node's own sequenced writes,
for their commit (it normally follows the stream's ack within milliseconds) before it
takes the batch the long way."""
PARTS = frozenset({"consumer", "relay"})


class WriteGates:
    """Per coop: the parts that are ready, and an event set whenever its position moves."""

    def __init__(
        self,
        positions: StreamPositions,
        sequencer: JetStreamSequencer,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.positions = positions
        self.sequencer = sequencer
        self._loop = loop
        self._opened: dict[str, asyncio.Event] = {}
        self._parts: dict[str, set[str]] = {}
        self._advanced: dict[str, asyncio.Event] = {}
        positions.listeners.append(self._on_advance)

    def _on_advance(self, coop: str, _position: int) -> None:
        """In the advancing thread: wake whoever waits on the coop's position."""
        event = self._advanced.get(coop)
        if event is not None:
            self._loop.call_soon_threadsafe(event.set)

    def track(self, coop: str) -> None:
        """The coop is being served: none of its parts is ready yet."""
        self._opened.setdefault(coop, asyncio.Event())
        self._parts[coop] = set()

    def part_ready(self, coop: str, part: str) -> None:
        """``consumer``: its position is known; ``relay``: the backlog went out once. With
        both, the coop's writes can be judged at a position that says it all."""
        parts = self._parts[coop]
        parts.add(part)
        if parts >= PARTS:
            self.sequencer.open(coop)
            self._opened[coop].set()

    async def opened(self, coop: str) -> None:
        """Until the coop takes writes (:meth:`track` it first)."""
        await self._opened[coop].wait()

    async def committed_up_to(self, coop: str, last: int) -> bool:
        """True when the store holds the coop's stream up to ``last``: then a batch ending
        there needs no work. A batch of this node's own sequenced writes may arrive
        before their commit: wait for it, briefly."""
        if self.positions.at(coop) >= last:
            return True
        if self.sequencer.published_to(coop) < last:
            return False
        advanced = self._advanced.setdefault(coop, asyncio.Event())
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
