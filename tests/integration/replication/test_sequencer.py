"""Sequenced publishing against a real JetStream: compare-and-set on a coop's stream.

The sequencer is called from a store thread while the connection lives on an
event loop in a thread of its own (its link's), as in a running node.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.coops import CoopScript
from support.nats import run_bounded, sample_events, start_nats_cluster

from icn.application.ports import Accepted
from icn.application.sequencing import StreamMoved, StreamUnavailable
from icn.domain.events.envelope import Event
from icn.infrastructure.replication.connection import close, connect
from icn.infrastructure.replication.link import NatsLink
from icn.infrastructure.replication.nats_server import LocalNatsServer
from icn.infrastructure.replication.publisher import JetStreamPublisher, WrongLastSequence
from icn.infrastructure.replication.sequencer import JetStreamSequencer
from icn.infrastructure.replication.streams import ensure_stream
from icn.infrastructure.replication.subjects import stream_name
from icn.infrastructure.replication.write_gates import WriteGates

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


@pytest.fixture
def link(nats_server: LocalNatsServer) -> Iterator[NatsLink]:
    """A connected link on a loop in a thread of its own, as a node's writes have."""
    link = NatsLink(thread="test-sequencer")
    client = asyncio.run(link.connect([nats_server.url], name="test", credentials=None))
    link.submit(ensure_stream(client.jetstream(), COOP, 1)).result(10)
    yield link
    asyncio.run(link.close())


def _accepted(*events: Event) -> list[Accepted]:
    return [Accepted(e, e.wire_bytes()) for e in events]


def _sequencer(link: NatsLink) -> JetStreamSequencer:
    """A sequencer whose gates open a coop as soon as a write asks for it."""
    gates = WriteGates()

    def serve(coop: str) -> None:
        gates.part_ready(coop, "consumer")
        gates.part_ready(coop, "relay")

    gates.wanted_listeners.append(serve)
    return JetStreamSequencer(gates, link, timeout=2.0)


def test_the_sequencer_publishes_from_a_store_thread(link: NatsLink) -> None:
    s = CoopScript(COOP)
    f, pay = s.found({"alice": ["admin"], "bob": []}), s.pay("alice", "bob", 5)
    sequencer = _sequencer(link)
    with pytest.raises(StreamUnavailable, match="starting or stopping"):
        sequencer.sequence(COOP, 0, _accepted(f))  # not opened yet
    sequencer.prepare([COOP])
    assert sequencer.sequence(COOP, 0, _accepted(f, pay)) == 2
    # the relay need not publish them again
    assert sequencer.in_stream.take(COOP, f.id) and sequencer.in_stream.take(COOP, pay.id)
    with pytest.raises(StreamMoved) as moved:
        sequencer.sequence(COOP, 1, _accepted(s.pay("bob", "alice", 1)))
    assert (moved.value.coop, moved.value.last) == (COOP, 2)
    sequencer.gates.close()  # the node stops
    with pytest.raises(StreamUnavailable):
        sequencer.sequence(COOP, 2, _accepted(s.pay("bob", "alice", 1)))


def test_the_sequencer_fails_fast_when_nats_is_away(
    link: NatsLink, nats_server: LocalNatsServer
) -> None:
    s = CoopScript(COOP)
    sequencer = _sequencer(link)
    sequencer.prepare([COOP])
    nats_server.stop()
    deadline = time.monotonic() + 10
    while link.connected and time.monotonic() < deadline:
        time.sleep(0.05)
    started = time.monotonic()
    with pytest.raises(StreamUnavailable, match="cannot take writes"):
        sequencer.sequence(COOP, 0, _accepted(s.found({"alice": ["admin"]})))
    assert time.monotonic() - started < 1.0  # it holds a store transaction open meanwhile


def test_the_sequencer_refuses_to_block_its_own_loop(link: NatsLink) -> None:
    s = CoopScript(COOP)
    sequencer = _sequencer(link)
    sequencer.prepare([COOP])

    async def on_the_loop() -> None:
        sequencer.sequence(COOP, 0, _accepted(s.found({"alice": ["admin"]})))

    with pytest.raises(RuntimeError, match="must not run on the event loop"):
        link.submit(on_the_loop()).result(10)


def test_on_a_cluster_one_event_requests_go_in_as_a_batch_not_a_chain(tmp_path: Path) -> None:
    # A chain's Nats-Expected-Last-Msg-Id let two nodes' writes both pass the leader of an
    # R3 stream, after which no replica could apply one and the stream took no more writes
    # (nats-server 2.15.1; tests/e2e/test_dev_cluster_chaos.py found it).
    cluster = start_nats_cluster(tmp_path)
    link = NatsLink(thread="test-sequencer-cluster")
    try:
        client = asyncio.run(link.connect(cluster.urls, name="test", credentials=None))
        link.submit(ensure_stream(client.jetstream(), COOP, 3)).result(20)
        s = CoopScript(COOP)
        sequencer = _sequencer(link)
        sequencer.prepare([COOP])
        events = [s.found({"alice": ["admin"], "bob": []}), s.pay("alice", "bob", 5)]
        assert sequencer.sequence(COOP, 0, _accepted(*events), atomic=False) == 2

        async def headers() -> list[dict[str, str]]:
            js = client.jetstream()
            return [dict((await js.get_msg(stream_name(COOP), n)).headers or {}) for n in (1, 2)]

        first, second = link.submit(headers()).result(20)
        assert "Nats-Expected-Last-Msg-Id" not in second and "Nats-Batch-Id" in second
        assert first["Nats-Expected-Last-Sequence"] == "0"
    finally:
        asyncio.run(link.close())
        cluster.stop()
