"""Caps on open live streams, and the memory they hold, over real HTTP against ``icn node run``.

A DID over ``ICN_MAX_STREAMS_PER_DID`` gets 429, a node at ``ICN_MAX_STREAMS``
gets 503, both with ``Retry-After`` and a problem document, on SSE and
WebSocket alike; closing a stream gives its slot back. And 300 idle streams,
once closed, leave the server's memory (RSS, read by psutil) near where it was.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from support.nodes import RunningNode, bearer, login, start_node
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from icn.interfaces.client import ws_subprotocols

COOP = "food-coop"
MANY = 300


@pytest.fixture(scope="module")
def capped(tmp_path_factory, coop_log_file: Path, icn_path_module: str, icn_env_module: dict):
    env = {**icn_env_module, "ICN_MAX_STREAMS_PER_DID": "2", "ICN_MAX_STREAMS": "3"}
    node = start_node(icn_path_module, env, tmp_path_factory.mktemp("caps") / "node", coop_log_file)
    yield node
    node.stop()


def open_sse(node: RunningNode, token: str) -> socket.socket:
    """A raw SSE request that stays open without reading: an idle subscriber."""
    sock = socket.create_connection(("127.0.0.1", node.port))
    request = (
        f"GET /v1/coops/{COOP}/stream?after=0 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
    )
    sock.sendall(request.encode())
    return sock


def status_of(sock: socket.socket) -> int:
    sock.settimeout(10)
    head = sock.recv(4096)
    return int(head.split(b" ", 2)[1])


def refused(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == code and r.json()["status"] == status
    assert int(r.headers["retry-after"]) >= 1


@pytest.fixture
def streams() -> Iterator[list[socket.socket]]:
    opened: list[socket.socket] = []
    yield opened
    for s in opened:
        s.close()


def test_streams_are_capped_per_did_and_in_all(capped, members, streams) -> None:
    url = f"{capped.base}/v1/coops/{COOP}/stream"
    alice, bob, carol = (login(capped.base, members[n]) for n in ("alice", "bob", "carol"))
    streams += [open_sse(capped, alice), open_sse(capped, alice)]
    assert [status_of(s) for s in streams] == [200, 200]
    refused(httpx.get(url, headers=bearer(alice)), 429, "too-many-streams")
    with pytest.raises(InvalidStatus) as ws_refused:  # a WebSocket counts the same
        connect(f"{capped.ws_base}/v1/coops/{COOP}/ws", subprotocols=ws_subprotocols(alice),
                open_timeout=5)  # fmt: skip
    assert ws_refused.value.response.status_code == 429
    assert ws_refused.value.response.headers["Retry-After"]

    with connect(f"{capped.ws_base}/v1/coops/{COOP}/ws", subprotocols=ws_subprotocols(bob),
                 open_timeout=5) as ws:  # fmt: skip
        ws.recv(timeout=5)  # bob's stream is the node's third: carol finds it full
        refused(httpx.get(url, headers=bearer(carol)), 503, "streams-full")
    # closing gives slots back: bob's WebSocket, then one of alice's streams
    streams.pop().close()
    deadline = time.monotonic() + 10
    while _try_stream(url, carol) != 200:
        assert time.monotonic() < deadline, "the slots were not given back"
        time.sleep(0.2)


def _try_stream(url: str, token: str) -> int:
    with httpx.stream("GET", url, headers=bearer(token), params={"after": 0}) as r:
        return r.status_code


def rss(node: RunningNode) -> int:
    assert node.proc is not None
    return int(psutil.Process(node.proc.pid).memory_info().rss)


def test_memory_returns_after_many_idle_streams_close(
    tmp_path, coop_log_file: Path, icn_path_module: str, icn_env_module: dict, members
) -> None:
    env = {**icn_env_module, "ICN_MAX_STREAMS_PER_DID": str(MANY), "ICN_REPLICATION": "false"}
    env |= {"ICN_RATE_DID_BURST": "10000", "ICN_RATE_IP_BURST": "10000"}  # not under test here
    node = start_node(icn_path_module, env, tmp_path / "node", coop_log_file)
    try:
        token = login(node.base, members["alice"])
        for _ in range(2):  # warm up: imports, caches, the thread pool
            warm = [open_sse(node, token) for _ in range(20)]
            assert all(status_of(s) == 200 for s in warm)
            for s in warm:
                s.close()
            settle(node)
        start = rss(node)
        opened = [open_sse(node, token) for _ in range(MANY)]
        assert [status_of(s) for s in opened] == [200] * MANY
        peak = rss(node)
        refused(httpx.get(f"{node.base}/v1/coops/{COOP}/stream", headers=bearer(token)),
                429, "too-many-streams")  # fmt: skip
        for s in opened:
            s.close()
        end = settle(node)
        print(f"RSS: start {start / 2**20:.1f} MiB, {MANY} streams open {peak / 2**20:.1f} MiB, "
              f"closed {end / 2**20:.1f} MiB")  # fmt: skip
        assert end - start < 16 * 2**20, (start, peak, end)
        assert _try_stream(f"{node.base}/v1/coops/{COOP}/stream", token) == 200  # slots back
    finally:
        node.stop()


def settle(node: RunningNode, seconds: float = 20) -> int:
    """The RSS once it stops falling (idle worker threads leave after about 10 s)."""
    deadline = time.monotonic() + seconds
    last = rss(node)
    while time.monotonic() < deadline:
        time.sleep(1)
        now = rss(node)
        if now >= last and time.monotonic() > deadline - seconds + 12:
            return now
        last = min(last, now)
    return last
