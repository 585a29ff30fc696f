"""Streams, publishing and durable consuming against a real JetStream server."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from nats.aio.client import Client
from support.nats import (
    new_author,
    run_bounded,
    sample_events,
    wait_for_no_lag,
    wait_until,
)

from icn.infrastructure.replication.connection import close, connect
from icn.infrastructure.replication.consumer import Delivered, DurableCoopConsumer
from icn.infrastructure.replication.nats_server import LocalNatsServer
from icn.infrastructure.replication.publisher import JetStreamPublisher, PublishFailed
from icn.infrastructure.replication.streams import (
    DUPLICATE_WINDOW_S,
    default_replicas,
    ensure_stream,
)
from icn.infrastructure.replication.subjects import author_filter, stream_name, type_filter

COOP = "test-coop"


async def _ready(url: str, coop: str = COOP) -> Client:
    nc = await connect(url)
    await ensure_stream(nc.jetstream(), coop, default_replicas(nc))
    return nc


def test_the_stream_is_created_once_and_put_back_when_it_drifts(
    nats_server: LocalNatsServer,
) -> None:
    async def scenario() -> None:
        nc = await connect(nats_server.url)
        js = nc.jetstream()
        assert default_replicas(nc) == 1
        created = await ensure_stream(js, COOP, 1)
        bound = await ensure_stream(js, COOP, 1)
        assert bound.created == created.created
        config = bound.config
        assert config.name == "ICN_test-coop"
        assert config.subjects == ["icn.test-coop.>"]
        assert config.storage == "file" and config.num_replicas == 1
        assert config.duplicate_window == DUPLICATE_WINDOW_S >= 120
        assert (config.max_age, config.max_msgs, config.max_bytes) == (0, -1, -1)
        assert config.allow_atomic  # sequenced writes are atomic batches

        await js.update_stream(
            config.evolve(duplicate_window=10.0, description="kept", allow_atomic=False)
        )
        fixed = (await ensure_stream(js, COOP, 1)).config
        assert (fixed.duplicate_window, fixed.description) == (DUPLICATE_WINDOW_S, "kept")
        assert fixed.allow_atomic
        assert len(await js.streams_info()) == 1
        await nc.close()

    run_bounded(scenario())


def test_the_same_event_id_twice_is_stored_once(nats_server: LocalNatsServer) -> None:
    [e] = sample_events(1)

    async def scenario() -> None:
        nc = await _ready(nats_server.url)
        publisher = JetStreamPublisher(nc)
        first = await publisher.publish(e.coop, e.event_id, e.event_type, e.author, e.wire)
        second = await publisher.publish(e.coop, e.event_id, e.event_type, e.author, e.wire)
        assert (first.seq, first.duplicate) == (1, False)
        assert (second.seq, second.duplicate) == (1, True)
        info = await nc.jetstream().stream_info(stream_name(COOP))
        assert info.state.messages == 1
        stored = await nc.jetstream().get_msg(stream_name(COOP), 1)
        assert stored.data == e.wire
        assert stored.headers and stored.headers["Nats-Msg-Id"] == e.event_id
        await nc.close()

    run_bounded(scenario())


def test_publish_many_answers_in_input_order(nats_server: LocalNatsServer) -> None:
    events = sample_events(2000)

    async def scenario() -> None:
        nc = await _ready(nats_server.url)
        publisher = JetStreamPublisher(nc, max_in_flight=256)
        results = await publisher.publish_many(events[:1000])
        assert [r.seq for r in results] == list(range(1, 1001))
        # A batch that repeats some published events: those answer "duplicate", in place.
        again = await publisher.publish_many(events[990:2000])
        assert [r.duplicate for r in again[:10]] == [True] * 10
        assert [r.seq for r in again] == list(range(991, 2001))
        assert not any(r.duplicate for r in again[10:])
        js = nc.jetstream()
        for seq in (1, 500, 1000, 2000):
            assert (await js.get_msg(stream_name(COOP), seq)).data == events[seq - 1].wire
        await nc.close()

    run_bounded(scenario())


def test_subjects_select_a_type_or_an_author(nats_server: LocalNatsServer) -> None:
    alice, bob = new_author(), new_author()
    events = (
        sample_events(3, author=alice)
        + sample_events(4, author=bob)
        + sample_events(5, author=bob, event_type="governance.VoteCast")
    )

    async def count(nc: Client, node: str, subject: str, expected: int) -> int:
        seen: list[Delivered] = []
        stop = asyncio.Event()
        consumer = DurableCoopConsumer(nc, node, COOP, filter_subject=subject, fetch_timeout=0.2)

        async def handle(batch: list[Delivered]) -> None:
            seen.extend(batch)

        task = asyncio.create_task(consumer.run(handle, stop))
        await wait_until(lambda: len(seen) >= expected)
        await asyncio.sleep(0.3)  # room for anything the filter should not have let through
        stop.set()
        await task
        assert all(d.subject.startswith(f"icn.{COOP}.") for d in seen)
        return len(seen)

    async def scenario() -> None:
        nc = await _ready(nats_server.url)
        await JetStreamPublisher(nc).publish_many(events)
        assert await count(nc, "by-type", type_filter(COOP, "governance.VoteCast"), 5) == 5
        assert await count(nc, "by-alice", author_filter(COOP, alice), 3) == 3
        assert await count(nc, "by-bob", author_filter(COOP, bob), 9) == 9
        await nc.close()

    run_bounded(scenario())


def test_a_durable_consumer_delivers_everything_once_across_its_restart(
    nats_server: LocalNatsServer,
) -> None:
    events = sample_events(1000)
    seen: list[int] = []

    async def consume_until(nc: Client, enough: int) -> None:
        stop = asyncio.Event()
        consumer = DurableCoopConsumer(nc, "node-a", COOP, batch=100)

        async def handle(batch: list[Delivered]) -> None:
            seen.extend(d.stream_seq for d in batch)
            if len(seen) >= enough:
                stop.set()

        await consumer.run(handle, stop)

    async def scenario() -> None:
        nc = await _ready(nats_server.url)
        await JetStreamPublisher(nc).publish_many(events)
        await consume_until(nc, 300)
        assert len(seen) == 300
        await nc.close()
        nc = await connect(nats_server.url)  # a new process, as it were
        await consume_until(nc, 1000)
        await wait_for_no_lag(DurableCoopConsumer(nc, "node-a", COOP))
        await nc.close()

    run_bounded(scenario())
    assert seen == list(range(1, 1001))


def test_a_batch_held_when_its_process_died_comes_back_first_in_stream_order(
    nats_server: LocalNatsServer,
) -> None:
    """A node killed while it holds a delivered batch: JetStream hands that batch out again
    only after ``ack_wait`` and the newer messages at once. The next process must still
    apply the stream in its order (the chaos e2e test found logs parting here)."""
    events = sample_events(300)
    seen: list[int] = []

    async def scenario() -> None:
        nc = await _ready(nats_server.url)
        await JetStreamPublisher(nc).publish_many(events)
        dying = DurableCoopConsumer(nc, "node-a", COOP, batch=50, ack_wait=30)
        holding = asyncio.Event()

        async def die_holding(batch: list[Delivered]) -> None:
            if batch[0].stream_seq > 100:  # the third batch: held, never acked
                holding.set()
                await asyncio.Event().wait()
            seen.extend(d.stream_seq for d in batch)

        task = asyncio.create_task(dying.run(die_holding, asyncio.Event()))
        await asyncio.wait_for(holding.wait(), 10)
        task.cancel()  # as kill -9 would: no ack, no nak for the batch in hand
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await close(nc)
        assert seen == list(range(1, 101))

        nc = await connect(nats_server.url)  # the restarted node
        stop = asyncio.Event()
        consumer = DurableCoopConsumer(nc, "node-a", COOP, batch=50, ack_wait=30)

        async def handle(batch: list[Delivered]) -> None:
            seen.extend(d.stream_seq for d in batch)
            if len(seen) >= 300:
                stop.set()

        await asyncio.wait_for(consumer.run(handle, stop), 20)  # well within ack_wait
        await wait_for_no_lag(DurableCoopConsumer(nc, "node-a", COOP))
        await nc.close()

    run_bounded(scenario())
    assert seen == list(range(1, 301))


def test_a_failing_handler_gets_its_batch_again(nats_server: LocalNatsServer) -> None:
    events = sample_events(50)
    seen: list[int] = []
    calls = 0

    def handle(batch: list[Delivered]) -> None:  # synchronous, like the store: runs in a thread
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("database is locked")
        seen.extend(d.stream_seq for d in batch)

    async def scenario() -> None:
        nc = await _ready(nats_server.url)
        await JetStreamPublisher(nc).publish_many(events)
        stop = asyncio.Event()
        consumer = DurableCoopConsumer(nc, "node-a", COOP, batch=20)
        task = asyncio.create_task(consumer.run(handle, stop))
        await wait_until(lambda: len(set(seen)) == 50)
        await wait_for_no_lag(consumer)
        stop.set()
        await task
        await nc.close()

    run_bounded(scenario())
    assert calls > 1
    assert sorted(set(seen)) == list(range(1, 51))
    assert seen[:20] == list(range(1, 21))  # the failed batch came back first


def test_a_consumer_keeps_going_across_a_nats_restart(nats_server: LocalNatsServer) -> None:
    first, later = sample_events(200), sample_events(200)
    seen: set[int] = set()

    async def scenario() -> None:
        nc = await _ready(nats_server.url)
        publisher = JetStreamPublisher(nc)
        stop = asyncio.Event()
        consumer = DurableCoopConsumer(nc, "node-a", COOP, fetch_timeout=0.25, ack_wait=2)

        async def handle(batch: list[Delivered]) -> None:
            seen.update(d.stream_seq for d in batch)

        task = asyncio.create_task(consumer.run(handle, stop))
        await publisher.publish_many(first)
        await wait_until(lambda: len(seen) == 200)
        await asyncio.to_thread(nats_server.restart)
        await publisher.publish_many(later)
        await wait_until(lambda: len(seen) == 400)
        await wait_for_no_lag(consumer)
        stop.set()
        await task
        assert not task.exception()
        await nc.close()

    run_bounded(scenario())
    assert seen == set(range(1, 401))


def test_a_nats_restart_mid_load_loses_and_doubles_nothing(nats_server: LocalNatsServer) -> None:
    events = sample_events(3000)
    acked: list[int] = []
    seen: set[int] = set()

    async def scenario() -> int:
        nc = await _ready(nats_server.url)
        publisher = JetStreamPublisher(nc, max_in_flight=100, ack_timeout=1)
        stop = asyncio.Event()
        consumer = DurableCoopConsumer(nc, "node-a", COOP, fetch_timeout=0.25, ack_wait=2)

        async def handle(batch: list[Delivered]) -> None:
            seen.update(d.stream_seq for d in batch)

        async def load() -> None:
            for start in range(0, len(events), 100):
                acked.extend(
                    r.seq for r in await publisher.publish_many(events[start : start + 100])
                )

        consuming = asyncio.create_task(consumer.run(handle, stop))
        loading = asyncio.create_task(load())
        await wait_until(lambda: len(acked) >= 500)
        await asyncio.to_thread(nats_server.restart)
        await loading
        await wait_until(lambda: len(seen) == 3000)
        await wait_for_no_lag(consumer)
        stop.set()
        await consuming
        stored = (await nc.jetstream().stream_info(stream_name(COOP))).state.messages
        await nc.close()
        return stored

    assert run_bounded(scenario()) == 3000  # re-sent events were recognised by their id
    assert sorted(acked) == list(range(1, 3001))
    assert seen == set(range(1, 3001))


def test_the_publisher_waits_for_nats_to_come_back(nats_server: LocalNatsServer) -> None:
    events = sample_events(300)

    async def scenario() -> None:
        nc = await _ready(nats_server.url)
        await asyncio.to_thread(nats_server.stop)
        publishing = asyncio.create_task(JetStreamPublisher(nc, deadline=20).publish_many(events))
        await asyncio.sleep(1.0)
        assert not publishing.done()
        await asyncio.to_thread(nats_server.start)
        results = await publishing
        assert sorted(r.seq for r in results) == list(range(1, 301))
        await nc.close()

    run_bounded(scenario())


def test_the_publisher_gives_up_at_its_deadline(nats_server: LocalNatsServer) -> None:
    events = sample_events(5)

    async def scenario() -> PublishFailed:
        nc = await _ready(nats_server.url)
        await asyncio.to_thread(nats_server.stop)
        with pytest.raises(PublishFailed) as failure:
            await JetStreamPublisher(nc, deadline=1.0, ack_timeout=0.3).publish_many(events)
        await close(nc)  # while NATS is still down
        return failure.value

    failure = run_bounded(scenario())
    assert "did not acknowledge 5 of 5 events within 1 s" in str(failure)
    assert failure.results == [None] * 5
