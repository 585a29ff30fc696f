"""One served coop on a running node: its stream, its outbox relay and its durable consumer.

The relay publishes what the coop's log holds and the stream does not (woken by
each local commit, and polling for appends by other processes). The consumer
hands each batch of the stream to :class:`~icn.application.intake.Intake` in a
worker thread and acks it only after that returned; a message whose handling
keeps failing is set aside as a dead letter (:mod:`.dead_letters`), so one
poison message cannot stop the coop. Once the consumer's position is known and
the relay has caught up, the coop takes sequenced writes (:mod:`.write_gates`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import nats.errors
from nats.aio.client import Client

from icn.application.intake import Intake, IntakeCounts
from icn.application.relay import OutboxRelay
from icn.infrastructure.replication.config import LINGER_S, PAUSE_MAX_S, ReplicationConfig
from icn.infrastructure.replication.consumer import Delivered, DurableCoopConsumer
from icn.infrastructure.replication.dead_letters import TRANSIENT_ERRORS, record_dead_letter
from icn.infrastructure.replication.streams import default_replicas, ensure_stream
from icn.infrastructure.replication.write_gates import WriteGates
from icn.infrastructure.store.parked import SqlReplicationState

log = logging.getLogger("icn.replication")


async def until_done(what: str, step: Callable[[], Awaitable[object]], stop: asyncio.Event) -> bool:
    """Run ``step`` until it succeeds (True) or ``stop`` is set (False), pausing longer
    after each failure (NATS away or electing a leader)."""
    pause = 0.1
    while not stop.is_set():
        try:
            await step()
            return True
        except (nats.errors.Error, TimeoutError) as exc:
            log.warning("%s not ready (%s); retrying", what, exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), pause)
            pause = min(pause * 2, PAUSE_MAX_S)
    return False


@dataclass(frozen=True, kw_only=True)
class Shared:
    """What the workers of every served coop work with, from their supervisor."""

    nc: Client
    durable: str
    """The node's consumer name."""
    relay: OutboxRelay
    intake: Intake
    gates: WriteGates
    state: SqlReplicationState
    config: ReplicationConfig
    clock_ms: Callable[[], int]
    stop: asyncio.Event
    on_appended: Callable[[str], None] | None
    """Called on the loop after the consumer appended events of a coop."""


class CoopWorker:
    """The relay loop and the consumer of one coop, as two tasks on the caller's loop."""

    def __init__(self, coop: str, shared: Shared) -> None:
        self.coop = coop
        self._s = shared
        self.totals = IntakeCounts()
        """What the consumer did since the node started."""
        self._waker = asyncio.Event()
        shared.gates.track(coop)
        self.relaying = asyncio.create_task(self._relay_loop(), name=f"icn-relay-{coop}")
        self.consuming = asyncio.create_task(self._consume(), name=f"icn-consume-{coop}")

    def wake(self) -> None:
        """The coop's log grew here: publish now rather than at the next poll (loop thread)."""
        self._waker.set()

    async def _ensure_stream(self) -> bool:
        nc = self._s.nc
        return await until_done(
            f"stream for {self.coop}",
            lambda: ensure_stream(nc.jetstream(), self.coop, default_replicas(nc)),
            self._s.stop,
        )

    async def _relay_loop(self) -> None:
        if not await self._ensure_stream():
            return
        coop, relay, poll_s = self.coop, self._s.relay, self._s.config.poll_s
        pause = poll_s
        while not self._s.stop.is_set():
            self._waker.clear()
            try:
                result = await relay.pump(coop)
                pause = poll_s if result.caught_up else min(pause * 2, PAUSE_MAX_S)
                if result.caught_up:
                    self._s.gates.part_ready(coop, "relay")
            except Exception as exc:  # NATS refused, store busy …: publish again later
                log.warning("outbox relay of %s: %s; retrying", coop, exc)
                pause = min(max(pause, 0.1) * 2, PAUSE_MAX_S)
            try:
                await asyncio.wait_for(self._waker.wait(), pause)
            except TimeoutError:  # idle: store the cursor the pumps moved
                with contextlib.suppress(Exception):
                    await relay.flush(coop)

    async def _consume(self) -> None:
        if not await self._ensure_stream():
            return
        c = self._s.config
        consumer = DurableCoopConsumer(
            self._s.nc, self._s.durable, self.coop, ack_wait=c.ack_wait_s, linger_s=LINGER_S,
            dead_letter=self._dead_letter, max_attempts=c.dead_letter_after,
            transient=TRANSIENT_ERRORS, pause_min=c.retry_pause_s[0], pause_max=c.retry_pause_s[1],
        )  # fmt: skip
        if not await self._known_position(consumer):
            return
        await consumer.run(self._handle, self._s.stop)

    async def _dead_letter(self, delivered: Delivered, attempts: int, exc: BaseException) -> None:
        """Set a message aside that kept failing; the stream position moves past it, so the
        coop's writes (judged at that position) go on."""
        await asyncio.to_thread(
            record_dead_letter, self._s.state, self.coop, delivered, attempts, exc,
            self._s.config.rejected_max, self._s.clock_ms(),
        )  # fmt: skip
        self._s.gates.positions.advance(self.coop, delivered.stream_seq)

    async def _known_position(self, consumer: DurableCoopConsumer) -> bool:
        """Bind the consumer and learn how far the store holds the stream: everything up to
        the consumer's ack floor was committed before it was acked."""
        js = self._s.nc.jetstream()

        async def learn() -> None:
            await consumer.ensure()
            info = await js.consumer_info(consumer.stream, consumer.durable)
            self._s.gates.positions.advance(self.coop, int(info.ack_floor.stream_seq or 0))

        if not await until_done(f"consumer for {self.coop}", learn, self._s.stop):
            return False
        self._s.gates.part_ready(self.coop, "consumer")
        return True

    async def _handle(self, batch: list[Delivered]) -> None:
        coop, intake, relay = self.coop, self._s.intake, self._s.relay
        messages = [d.data for d in batch]
        # The consumer hands batches over in stream order; a message handled before may come
        # again among them (a lost ack), so the batch ends at its highest sequence.
        last = max(d.stream_seq for d in batch)
        parked = intake.may_have_parked(coop)
        own = not parked and await self._s.gates.committed_up_to(coop, last)
        if own or intake.skip_own(coop, messages, functools.partial(relay.published_here, coop)):
            # Our own events read back, sequenced or relayed: no thread hop, no query.
            counts = IntakeCounts(received=len(messages), duplicates=len(messages))
        else:
            skew_ms = self._s.config.max_skew_s * 1000
            times = [d.trusted_ms(skew_ms) for d in batch]
            receive = functools.partial(intake.receive, stream_seq=lambda i: batch[i].stream_seq)
            counts = await asyncio.to_thread(receive, coop, messages, times)
        self.totals.add(counts)
        self._s.gates.positions.advance(coop, last)  # committed, in stream order
        if counts.accepted and self._s.on_appended is not None:
            self._s.on_appended(coop)
        if counts.rejected or counts.forks or counts.evicted:
            log.warning(
                "%s: stream seq %d..%d: %d rejected %s, %d forks quarantined, %d parked evicted",
                coop, batch[0].stream_seq, last, counts.rejected,
                dict(counts.rejected_codes), counts.forks, counts.evicted,
            )  # fmt: skip
