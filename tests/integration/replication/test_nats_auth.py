"""The node's NATS lets in only its users: nodes write, read-only users only read.

A real nats-server (the pinned wheel) on a free loopback port with the
``authorization`` block :mod:`icn.infrastructure.replication.nats_auth`
generates; every refusal below is the server's own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import nats
import nats.errors
import pytest
from nats.aio.client import Client
from nats.js.api import DeliverPolicy
from support.nats import run_bounded, sample_events

from icn.infrastructure.replication.connection import close, connect
from icn.infrastructure.replication.consumer import DurableCoopConsumer
from icn.infrastructure.replication.nats_auth import (
    NatsUser,
    NatsUsers,
    add_reader,
    ensure_users,
    load_users,
)
from icn.infrastructure.replication.nats_server import LocalNatsServer
from icn.infrastructure.replication.publisher import JetStreamPublisher
from icn.infrastructure.replication.streams import ensure_stream
from icn.infrastructure.replication.subjects import stream_name

COOP = "auth-coop"
NODE_KEY = "z6MkNodeDurableOfSomeNode"


@pytest.fixture
def users(tmp_path: Path) -> NatsUsers:
    """A node user and one reader, as ``icn node init`` and ``icn nats user add`` make them."""
    add_reader(tmp_path / "data", "svc")
    loaded = load_users(tmp_path / "data")
    assert loaded is not None
    return loaded


@pytest.fixture
def server(tmp_path: Path, users: NatsUsers) -> Iterator[LocalNatsServer]:
    with LocalNatsServer(tmp_path / "nats", users=users) as running:
        yield running


async def _login(url: str, user: NatsUser, errors: list[str] | None = None) -> Client:
    async def on_error(exc: Exception) -> None:
        if errors is not None:
            errors.append(str(exc))

    return await nats.connect(
        url, user=user.user, password=user.password, allow_reconnect=False, error_cb=on_error
    )


async def _stream_with_events(server: LocalNatsServer, n: int = 3) -> int:
    """As a node: make the coop's stream, publish ``n`` events; the stream's last seq."""
    nc = await connect(server.url, credentials=server.node_user)
    try:
        await ensure_stream(nc.jetstream(), COOP)
        await JetStreamPublisher(nc).publish_many(sample_events(n, COOP))
        return int((await nc.jetstream().stream_info(stream_name(COOP))).state.last_seq)
    finally:
        await close(nc)


def test_the_users_file_and_the_server_config_are_private(
    tmp_path: Path, server: LocalNatsServer
) -> None:
    for path in (tmp_path / "data" / "nats-users.json", server.data_dir / "server.conf"):
        assert path.stat().st_mode & 0o077 == 0, oct(path.stat().st_mode)
    assert ensure_users(tmp_path / "data") == load_users(tmp_path / "data")  # stable once made


def test_an_unauthenticated_connection_is_refused(server: LocalNatsServer) -> None:
    async def body() -> None:
        with pytest.raises((nats.errors.Error, OSError)) as refused:
            await nats.connect(server.url, allow_reconnect=False, connect_timeout=2)
        assert "authorization" in str(refused.value).lower() or isinstance(
            refused.value, nats.errors.NoServersError
        )
        wrong = NatsUser("icn-node", "not-the-password")
        with pytest.raises((nats.errors.Error, OSError)):
            await _login(server.url, wrong)

    run_bounded(body())


def test_a_read_only_users_publish_into_a_coop_stream_is_refused_by_the_server(
    server: LocalNatsServer, users: NatsUsers
) -> None:
    async def body() -> None:
        last = await _stream_with_events(server)
        errors: list[str] = []
        reader = await _login(server.url, users.readers[0], errors)
        try:
            forged = sample_events(1, COOP)[0]
            subject = f"icn.{COOP}.ledger.EntryRecorded.{forged.author.split(':')[-1]}"
            with pytest.raises((nats.errors.Error, TimeoutError)):
                await reader.jetstream().publish(subject, forged.wire, timeout=1)
            await reader.publish(subject, forged.wire)  # core NATS: dropped the same way
            await reader.flush()
            await asyncio.sleep(0.2)
            assert any("permissions violation" in e.lower() for e in errors), errors
            # Nor may it change the stream.
            with pytest.raises((nats.errors.Error, TimeoutError)):
                await reader.jetstream().purge_stream(stream_name(COOP))
            with pytest.raises((nats.errors.Error, TimeoutError)):
                await reader.jetstream().delete_stream(stream_name(COOP))
        finally:
            await reader.close()
        assert await _stream_with_events(server, 0) == last  # nothing got in, nothing gone

    run_bounded(body())


def test_a_read_only_user_reads_a_stream_but_cannot_take_a_nodes_messages(
    server: LocalNatsServer, users: NatsUsers
) -> None:
    async def body() -> None:
        node = await connect(server.url, credentials=server.node_user)
        reader = await _login(server.url, users.readers[0], [])
        try:
            await _stream_with_events(server, 3)
            durable = DurableCoopConsumer(node, NODE_KEY, COOP, ack_wait=30)
            await durable.ensure()
            # Reading: an ordered (ephemeral) consumer, as examples/subscriber.py does.
            sub = await reader.jetstream().subscribe(
                f"icn.{COOP}.>", ordered_consumer=True, deliver_policy=DeliverPolicy.ALL
            )
            got = [await sub.next_msg(timeout=5) for _ in range(3)]
            assert len(got) == 3
            await sub.unsubscribe()
            # A durable consumer of its own name is allowed.
            own = await reader.jetstream().pull_subscribe(
                f"icn.{COOP}.>", durable="svc", stream=stream_name(COOP)
            )
            msgs = await own.fetch(3, timeout=5)
            for m in msgs:
                await m.ack()
            # The node's durable consumer is not: no pulling its messages, no acking them.
            stolen = await reader.jetstream().pull_subscribe_bind(
                durable.durable, stream_name(COOP)
            )
            with pytest.raises((nats.errors.Error, TimeoutError)):
                await stolen.fetch(1, timeout=1)
            js = node.jetstream()
            info = await js.consumer_info(stream_name(COOP), durable.durable)
            assert info.num_pending == 3 and info.num_ack_pending == 0
            # Nor can it re-create that consumer with a config of its own.
            with pytest.raises((nats.errors.Error, TimeoutError)):
                await reader.jetstream().add_consumer(
                    stream_name(COOP), durable_name=durable.durable, filter_subject="icn.x.>"
                )
            info = await js.consumer_info(stream_name(COOP), durable.durable)
            assert info.config.filter_subject == f"icn.{COOP}.>"
        finally:
            await reader.close()
            await close(node)

    run_bounded(body())


def test_a_reader_added_while_the_server_runs_gets_in_after_a_reload(
    tmp_path: Path, server: LocalNatsServer
) -> None:
    late = add_reader(tmp_path / "data", "late")

    async def body() -> None:
        with pytest.raises((nats.errors.Error, OSError)):
            await _login(server.url, late)
        users = load_users(tmp_path / "data")
        assert users is not None
        server.reload(users)
        for _ in range(50):
            try:
                nc = await _login(server.url, late)
            except (nats.errors.Error, OSError):
                await asyncio.sleep(0.1)
                continue
            await nc.close()
            return
        raise AssertionError("the reloaded server still refuses the new reader")

    run_bounded(body())
