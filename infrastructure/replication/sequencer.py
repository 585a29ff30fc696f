"""The application's :class:`~icn.application.sequencing.Sequencer` on a JetStream publisher.

Writes are decided in store threads; the NATS connection lives on the node's
event loop. :meth:`JetStreamSequencer.sequence` hands the publish to a
loop and waits for it, with the store transaction open: it must fail fast
(not connected, no ack within ``timeout``), since every other writer of the
store waits behind it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Coroutine, Iterable, Sequence
from typing import Any, TypeVar

import nats.errors

from icn.application.ports import Accepted
from icn.application.remembered_ids import RememberedIds
from icn.application.sequencing import StreamMoved, StreamPositions, StreamUnavailable
from icn.infrastructure.replication.publisher import (
    MAX_ATOMIC_BATCH,
    JetStreamPublisher,
    Outgoing,
    PublishFailed,
    WrongLastSequence,
)

TIMEOUT_S = 3.0
OPEN_TIMEOUT_S = 10.0
MAX_REMEMBERED = 100_000

T = TypeVar("T")

Opener = Callable[[str], Coroutine[Any, Any, bool]]
"""On the loop: start serving a coop if needed; True once its writes can be sequenced."""


class JetStreamSequencer:
    """Publishes a write's events right after a stream position, from any store thread."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        positions: StreamPositions | None = None,
        *,
        timeout: float = TIMEOUT_S,
        open_timeout: float = OPEN_TIMEOUT_S,
    ) -> None:
        self._loop = loop
        self.publish_loop = loop
        """Where the publisher's connection lives: a loop of its own in a running node, so a
        write does not queue behind the HTTP requests the main loop is serving."""
        self.positions = positions or StreamPositions()
        self.timeout = timeout
        self.open_timeout = open_timeout
        self.publisher: JetStreamPublisher | None = None
        """Set once connected; until then every write is refused as unavailable."""
        self.opener: Opener | None = None
        self.in_stream = RememberedIds(MAX_REMEMBERED)
        """Ids this sequencer put in the stream (the outbox relay need not publish them)."""
        self._open: set[str] = set()
        self._published_to: dict[str, int] = {}
        self._lock = threading.Lock()

    def prepare(self, coops: Iterable[str]) -> None:
        """Before a write's transaction: have these coops served and open, or refuse."""
        for coop in coops:
            with self._lock:
                if coop in self._open:
                    continue
            opener = self.opener
            if opener is None:
                raise StreamUnavailable("this node is not connected to NATS yet; try again shortly")
            _not_on(self._loop)
            future = asyncio.run_coroutine_threadsafe(opener(coop), self._loop)
            try:
                opened = future.result(self.open_timeout)
            except concurrent.futures.TimeoutError:
                future.cancel()
                opened = False
            if not opened:
                raise StreamUnavailable(
                    f"the stream of {coop} is not ready on this node yet; try again shortly"
                )

    def open(self, coop: str) -> None:
        """Take writes for ``coop`` (its positions are known, its outbox published)."""
        with self._lock:
            self._open.add(coop)

    def close(self) -> None:
        """Refuse every write from now on (the node is stopping)."""
        with self._lock:
            self._open.clear()

    def sequence(
        self, coop: str, after: int, events: Sequence[Accepted], *, atomic: bool = True
    ) -> int:
        with self._lock:
            is_open = coop in self._open
        publisher = self.publisher
        if not is_open or publisher is None:
            raise StreamUnavailable(
                f"replication of {coop} is starting or stopping on this node; try again shortly"
            )
        _not_on(self.publish_loop)
        items = [
            Outgoing(coop, a.event.id, a.event.type, a.event.author, a.wire, a.trusted_ms)
            for a in events
        ]
        future = asyncio.run_coroutine_threadsafe(
            self._publish(publisher, items, after, atomic), self.publish_loop
        )
        try:
            last = future.result(self.timeout)
        except WrongLastSequence as moved:
            stored = [a.event.id for a in events[: moved.stored]]
            self.in_stream.add(coop, stored)
            raise StreamMoved(coop, max(moved.last, after + 1), stored) from None
        except (PublishFailed, nats.errors.Error, concurrent.futures.TimeoutError) as exc:
            future.cancel()
            raise StreamUnavailable(
                f"the stream of {coop} cannot take writes now ({exc}); try again shortly"
            ) from None
        self.in_stream.add(coop, [a.event.id for a in events])
        with self._lock:
            self._published_to[coop] = max(self._published_to.get(coop, 0), last)
        return last

    def published_to(self, coop: str) -> int:
        """The last stream sequence this sequencer put in ``coop``'s stream (0: none)."""
        with self._lock:
            return self._published_to.get(coop, 0)

    @staticmethod
    async def _publish(
        publisher: JetStreamPublisher, items: list[Outgoing], after: int, atomic: bool
    ) -> int:
        """One atomic batch, or (a write of over 1,000 events) several in a row, each
        after the last: then a refusal can leave the first ones stored (the consumer
        brings them in; the write is judged again, and finds them there)."""
        for start in range(0, len(items), MAX_ATOMIC_BATCH):
            chunk = items[start : start + MAX_ATOMIC_BATCH]
            after = (await publisher.publish_after(chunk, after, atomic=atomic))[-1].seq
        return after


def _not_on(loop: asyncio.AbstractEventLoop) -> None:
    """Waiting for ``loop`` from its own thread would never end."""
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        return
    if running is loop:
        raise RuntimeError("a sequenced write must not run on the event loop it publishes on")


class LoopThread:
    """An event loop running in a daemon thread of its own (the sequencer's connection)."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on this loop and await its result from another loop."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    def stop(self) -> None:
        """Stop the loop and wait for its thread (what is still scheduled is dropped)."""
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self.loop.close()
