"""A message whose handling keeps failing is dead-lettered and the stream goes on (real NATS).

Before this, one such message (a ``RecursionError`` on a 10,000-deep body) was
negatively acknowledged and redelivered for ever, and every message behind it
waited: the coop's stream stopped for good on that node.
"""

from __future__ import annotations

import asyncio

from nats.aio.client import Client
from support.nats import run_bounded, sample_events, wait_for_no_lag, wait_until

from icn.application.errors import StoreBusy
from icn.infrastructure.replication.connection import close, connect
from icn.infrastructure.replication.consumer import Delivered, DurableCoopConsumer
from icn.infrastructure.replication.nats_server import LocalNatsServer
from icn.infrastructure.replication.publisher import JetStreamPublisher
from icn.infrastructure.replication.streams import ensure_stream

COOP = "test-coop"
FAST = {"ack_wait": 2.0, "pause_min": 0.01, "pause_max": 0.05}
"""Short pauses between redeliveries: the test takes well under a second."""


async def _ready(url: str) -> Client:
    nc = await connect(url)
    await ensure_stream(nc.jetstream(), COOP, 1)
    return nc


def test_a_message_that_always_fails_is_dead_lettered_after_n_deliveries(
    nats_server: LocalNatsServer,
) -> None:
    """The poison message sits in the middle of a batch: the messages before it are handled
    once, it is tried ``max_attempts`` times, then set aside, and the ones after it follow
    in stream order. The consumer's ack floor moves past it (nothing left pending)."""
    events = sample_events(7)
    poison = events[3].wire

    async def scenario() -> None:
        nc = await _ready(nats_server.url)
        await JetStreamPublisher(nc).publish_many(events)
        handled: list[bytes] = []
        calls: dict[bytes, int] = {}
        dead: list[tuple[int, int, str]] = []

        def handle(batch: list[Delivered]) -> None:
            for d in batch:
                calls[d.data] = calls.get(d.data, 0) + 1
                if d.data == poison:
                    raise RecursionError("maximum recursion depth exceeded")
            handled.extend(d.data for d in batch)

        async def dead_letter(d: Delivered, attempts: int, exc: BaseException) -> None:
            dead.append((d.stream_seq, attempts, type(exc).__name__))

        consumer = DurableCoopConsumer(
            nc, "node-a", COOP, dead_letter=dead_letter, max_attempts=4, **FAST
        )
        stop = asyncio.Event()
        task = asyncio.create_task(consumer.run(handle, stop))
        await wait_until(lambda: len(handled) == 6)
        await wait_for_no_lag(consumer)
        assert dead == [(4, 4, "RecursionError")]
        assert handled == [e.wire for e in events if e.wire != poison]  # in stream order
        assert calls[poison] == 2 * 4  # in its batch, then alone, on each of 4 deliveries
        info = await nc.jetstream().consumer_info(consumer.stream, consumer.durable)
        assert info.ack_floor.stream_seq == 7
        stop.set()
        await task
        await close(nc)

    run_bounded(scenario())


def test_transient_failures_never_dead_letter_and_a_failed_record_keeps_the_message(
    nats_server: LocalNatsServer,
) -> None:
    """A store that is away (``StoreBusy``) is not the message's fault: however often it
    fails, nothing is set aside. And a dead letter that cannot be recorded is not lost:
    the message comes again until recording it works."""
    events = sample_events(2)

    async def scenario() -> None:
        nc = await _ready(nats_server.url)
        await JetStreamPublisher(nc).publish_many(events)
        state = {"busy": True, "record_fails": 2}
        handled: list[bytes] = []
        dead: list[int] = []

        def handle(batch: list[Delivered]) -> None:
            if state["busy"]:
                raise StoreBusy("database is locked")
            if any(d.data == events[0].wire for d in batch):
                raise ValueError("a bug")
            handled.extend(d.data for d in batch)

        async def dead_letter(d: Delivered, attempts: int, exc: BaseException) -> None:
            if state["record_fails"]:
                state["record_fails"] -= 1
                raise OSError("disk full")
            dead.append(d.stream_seq)

        consumer = DurableCoopConsumer(
            nc, "node-b", COOP, dead_letter=dead_letter, max_attempts=2,
            transient=(StoreBusy,), **FAST,
        )  # fmt: skip
        stop = asyncio.Event()
        task = asyncio.create_task(consumer.run(handle, stop))
        await asyncio.sleep(0.5)  # many deliveries, all StoreBusy
        assert dead == [] and handled == []
        state["busy"] = False
        await wait_until(lambda: handled == [events[1].wire])
        assert dead == [1]  # after two failed attempts to record it
        await wait_for_no_lag(consumer)
        stop.set()
        await task
        await close(nc)

    run_bounded(scenario())
