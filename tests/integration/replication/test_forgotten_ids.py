"""What forgetting a received id costs: one publish more, which costs nothing else.

``icn node sync`` remembers none of the ids it receives (no relay runs beside it to ask),
and a running node forgets the oldest beyond its bound. The relay then publishes those
events back to the stream they came from: JetStream's duplicate window drops them (the
stream keeps one copy), and past the window a receiver's known-id check makes each a
no-op (its log keeps one copy).
"""

from __future__ import annotations

from pathlib import Path

from support.coops import CoopScript
from support.nats import run_bounded
from support.stores import StoreNode

from icn.application.intake import Intake
from icn.application.relay import OutboxRelay
from icn.infrastructure.replication.connection import connect
from icn.infrastructure.replication.nats_server import LocalNatsServer
from icn.infrastructure.replication.outbox import JetStreamOutbox
from icn.infrastructure.replication.publisher import JetStreamPublisher
from icn.infrastructure.replication.streams import ensure_stream
from icn.infrastructure.replication.subjects import stream_name

COOP = "forgetful-coop"


def test_ids_an_intake_forgot_cost_only_a_duplicate_publish(
    nats_server: LocalNatsServer, tmp_path: Path
) -> None:
    s = CoopScript(COOP)
    events = [s.found({"alice": ["admin"], "bob": []})]
    events += [s.pay("alice", "bob", 1 + i) for i in range(5)]
    wires = [e.wire_bytes() for e in events]
    a, b = StoreNode(tmp_path / "a", COOP), StoreNode(tmp_path / "b", COOP)
    forgetful = Intake(b.append, b.state, lambda: 1_800_000_000_000, remember=0)
    bounded = Intake(a.append, a.state, lambda: 1_800_000_000_000, remember=2)

    async def scenario() -> None:
        nc = await connect(nats_server.url)
        try:
            js = nc.jetstream()
            await ensure_stream(js, COOP)
            # Node A's log goes to the stream (A's relay: nothing came from the stream).
            relay_a = OutboxRelay(a.state, a.state, JetStreamOutbox(JetStreamPublisher(nc)))
            assert a.intake.receive(COOP, wires).accepted == len(events)
            assert (await relay_a.pump(COOP)).published == len(events)
            assert (await js.stream_info(stream_name(COOP))).state.messages == len(events)

            # Node B catches up remembering nothing, so its relay publishes it all back.
            counts = forgetful.receive(COOP, wires)
            assert counts.accepted == len(events)
            assert not any(forgetful.came_from_stream(COOP, e.id) for e in events)
            relay_b = OutboxRelay(
                b.state, b.state, JetStreamOutbox(JetStreamPublisher(nc)),
                already_in_stream=forgetful.came_from_stream,
            )  # fmt: skip
            assert (await relay_b.pump(COOP)).published == len(events)
            # Inside the duplicate window: JetStream dropped every one of them.
            assert (await js.stream_info(stream_name(COOP))).state.messages == len(events)
        finally:
            await nc.close()

    try:
        run_bounded(scenario())
        # Past the window the stream would hold them twice; a receiver reading them again
        # (here node A, which wrote them) appends nothing: each is a known id.
        again = bounded.receive(COOP, wires)
        assert (again.accepted, again.duplicates) == (0, len(events))
        assert a.ids() == b.ids() == [e.id for e in events]
        # A bounded memory keeps the newest: with room for 2, the last 2 appended.
        fresh = [s.pay("bob", "alice", 1 + i) for i in range(4)]
        assert bounded.receive(COOP, [e.wire_bytes() for e in fresh]).accepted == 4
        remembered = [bounded.came_from_stream(COOP, e.id) for e in fresh]
        assert remembered == [False, False, True, True]
    finally:
        a.close()
        b.close()
