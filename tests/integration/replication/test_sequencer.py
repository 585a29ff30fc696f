"""Sequenced publishing against a real JetStream: compare-and-set on a coop's stream.

The sequencer is called from a store thread while the connection lives on an
event loop, as in a running node; here the loop runs in a thread of its own.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from nats.aio.client import Client
from support.coops import CoopScript
from support.nats import run_bounded, sample_events

from icn.application.ports import Accepted
from icn.application.sequencing import StreamMoved, StreamUnavailable
from icn.domain.events.envelope import Event
from icn.infrastructure.replication.connection import close, connect
from icn.infrastructure.replication.nats_server import LocalNatsServer
from icn.infrastructure.replication.publisher import JetStreamPublisher, WrongLastSequence
from icn.infrastructure.replication.sequencer import JetStreamSequencer
from icn.infrastructure.replication.streams import ensure_stream
from icn.infrastructure.replication.subjects import stream_name

COOP = "test-coop"


def test_publish_after_stores_only_right_after_the_expected_last(
    nats_server: LocalNatsServer,
) -> None:
    first, second, late = sample_events(6)[:2], sample_events(6)[2:4], sample_events(6)[4:]

    async def scenario() -> None:
        nc = await connect(nats_server.url)
        await ensure_stream(nc.jetstream(), COOP, 1)
        publisher = JetStreamPublisher(nc)
        assert [p.seq for p in await publisher.publish_after(first, 0)] == [1, 2]
        assert [p.seq for p in await publisher.publish_after(second, 2)] == [3, 4]
        # Judged at position 2, but the stream has moved on to 4: refused, and it says where.
        with pytest.raises(WrongLastSequence) as moved:
            await publisher.publish_after(late, 2)
        assert moved.value.last == 4
        # Re-publishing a stored event at a stale position is refused too (for an atomic
        # batch, JetStream's duplicate check answers first), not acked as a duplicate.
        with pytest.raises(WrongLastSequence):
            await publisher.publish_after(first[:1], 0)
        # A batch is stored whole or not at all: here its first message would fit, but
        # its second repeats a stored id.
        with pytest.raises(WrongLastSequence):
            await publisher.publish_after([late[0], second[0]], 4)
        info = await nc.jetstream().stream_info(stream_name(COOP))
        assert info.state.messages == 4
        # Stand-alone events go in as a chain of plain publishes: same rule, same answers.
        chain = sample_events(3)
        assert [p.seq for p in await publisher.publish_after(chain, 4, atomic=False)] == [5, 6, 7]
        with pytest.raises(WrongLastSequence) as cut:
            await publisher.publish_after(sample_events(2), 5, atomic=False)
        assert (cut.value.last, cut.value.stored) == (7, 0)
        stored = await nc.jetstream().get_msg(stream_name(COOP), 7)
        assert stored.headers and stored.headers["Nats-Expected-Last-Msg-Id"] == chain[1].event_id
        await close(nc)

    run_bounded(scenario())


@dataclass
class LoopThread:
    """A connected event loop in a thread of its own, like a node's server loop."""

    loop: asyncio.AbstractEventLoop
    nc: Client
    thread: threading.Thread

    def run(self, coro: object) -> object:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)  # type: ignore[arg-type]


@pytest.fixture
def loop_thread(nats_server: LocalNatsServer) -> Iterator[LoopThread]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    nc = asyncio.run_coroutine_threadsafe(connect(nats_server.url), loop).result(10)
    lt = LoopThread(loop, nc, thread)
    lt.run(ensure_stream(nc.jetstream(), COOP, 1))
    yield lt
    lt.run(close(nc))
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)


def _accepted(*events: Event) -> list[Accepted]:
    return [Accepted(e, e.wire_bytes()) for e in events]


def _sequencer(lt: LoopThread) -> JetStreamSequencer:
    sequencer = JetStreamSequencer(lt.loop, timeout=2.0)
    sequencer.publisher = JetStreamPublisher(lt.nc)

    async def opener(coop: str) -> bool:
        sequencer.open(coop)
        return True

    sequencer.opener = opener
    return sequencer


def test_the_sequencer_publishes_from_a_store_thread(loop_thread: LoopThread) -> None:
    s = CoopScript(COOP)
    f, pay = s.found({"alice": ["admin"], "bob": []}), s.pay("alice", "bob", 5)
    sequencer = _sequencer(loop_thread)
    with pytest.raises(StreamUnavailable, match="starting or stopping"):
        sequencer.sequence(COOP, 0, _accepted(f))  # not opened yet
    sequencer.prepare([COOP])
    assert sequencer.sequence(COOP, 0, _accepted(f, pay)) == 2
    # the relay need not publish them again
    assert sequencer.in_stream.take(COOP, f.id) and sequencer.in_stream.take(COOP, pay.id)
    with pytest.raises(StreamMoved) as moved:
        sequencer.sequence(COOP, 1, _accepted(s.pay("bob", "alice", 1)))
    assert (moved.value.coop, moved.value.last) == (COOP, 2)
    sequencer.close()
    with pytest.raises(StreamUnavailable):
        sequencer.sequence(COOP, 2, _accepted(s.pay("bob", "alice", 1)))


def test_the_sequencer_fails_fast_when_nats_is_away(
    loop_thread: LoopThread, nats_server: LocalNatsServer
) -> None:
    s = CoopScript(COOP)
    sequencer = _sequencer(loop_thread)
    sequencer.prepare([COOP])
    nats_server.stop()
    deadline = time.monotonic() + 10
    while loop_thread.nc.is_connected and time.monotonic() < deadline:
        time.sleep(0.05)
    started = time.monotonic()
    with pytest.raises(StreamUnavailable, match="cannot take writes"):
        sequencer.sequence(COOP, 0, _accepted(s.found({"alice": ["admin"]})))
    assert time.monotonic() - started < 1.0  # it holds a store transaction open meanwhile


def test_the_sequencer_refuses_to_block_its_own_loop(loop_thread: LoopThread) -> None:
    s = CoopScript(COOP)
    sequencer = _sequencer(loop_thread)
    sequencer.prepare([COOP])

    async def on_the_loop() -> None:
        sequencer.sequence(COOP, 0, _accepted(s.found({"alice": ["admin"]})))

    with pytest.raises(RuntimeError, match="must not run on the event loop"):
        loop_thread.run(on_the_loop())
