"""Live streams (SSE and WebSocket) over real connections, against a real ``icn node run``."""

from __future__ import annotations

import json
import queue
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from nacl.signing import SigningKey
from support.coops import GENEROUS_POLICY, CoopScript, did_for, key_for, write_jsonl
from support.nodes import PAYEE, RunningNode, bearer, login, start_node, try_login
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from icn.domain.events.envelope import Event, sign_event
from icn.domain.identity.did import did_from_public_key
from icn.infrastructure.keystore import Keystore
from icn.interfaces.client import ws_subprotocols

COOP = "food-coop"
WAIT_S = 10.0


@pytest.fixture(scope="module")
def node(tmp_path_factory, coop_log_file: Path, icn_path_module: str, icn_env_module: dict):
    """The members' log imported; heartbeats every second."""
    env = {**icn_env_module, "ICN_STREAM_HEARTBEAT_S": "1"}
    running = start_node(
        icn_path_module, env, tmp_path_factory.mktemp("streams") / "node", coop_log_file
    )
    yield running
    running.stop()


def chain_of(
    key: SigningKey, coop: str, n: int, seq: int = 1, prev: str | None = None, fat: bool = False
) -> list[Event]:
    """``n`` signed ledger entries continuing ``key``'s chain (``fat``: ~50 KB each)."""
    did = did_from_public_key(bytes(key.verify_key))
    to = did_for(PAYEE)
    events: list[Event] = []
    for i in range(n):
        tx = {"from": did, "to": to, "amount": 1 + i % 7, "currency": "hours",
              "memo": "m" * 1000 if fat else None}  # fmt: skip
        body = {"transactions": [tx] * (40 if fat else 1)}
        event = sign_event(key, coop=coop, seq=seq + i, prev=prev, ts=int(time.time() * 1000),
                           type="ledger.EntryRecorded", body=body)  # fmt: skip
        events.append(event)
        prev = event.id
    return events


def next_events(base: str, token: str, key: SigningKey, n: int = 1) -> list[Event]:
    did = did_from_public_key(bytes(key.verify_key))
    head = httpx.get(f"{base}/v1/coops/{COOP}/chains/{did}/head", headers=bearer(token)).json()
    return chain_of(key, COOP, n, head["next_seq"], head["prev"])


def post(base: str, token: str, event: Event) -> int:
    r = httpx.post(f"{base}/v1/coops/{COOP}/events", content=event.wire_bytes(),
                   headers=bearer(token))  # fmt: skip
    assert r.status_code == 201, r.text
    return r.json()["position"]


def log_size(base: str, coop: str = COOP) -> int:
    return httpx.get(f"{base}/v1/ready").json()["coops"].get(coop, {"size": 0})["size"]


class SseReader:
    """An SSE client on a thread: parsed messages, each with its arrival time, on a queue."""

    def __init__(self, url: str, headers: dict[str, str], params: dict | None = None) -> None:
        self.messages: queue.Queue[dict] = queue.Queue()
        self.raw = b""
        self._client = httpx.Client(timeout=httpx.Timeout(5, read=None))
        self._stream = self._client.stream("GET", url, headers=headers, params=params)
        self.response = self._stream.__enter__()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        buffer = b""
        try:
            for chunk in self.response.iter_raw():
                self.raw += chunk
                buffer += chunk
                while b"\n\n" in buffer:
                    block, buffer = buffer.split(b"\n\n", 1)
                    self.messages.put(self._parse(block))
        except httpx.HTTPError:
            pass
        self.messages.put({"closed": True, "at": time.monotonic()})

    @staticmethod
    def _parse(block: bytes) -> dict:
        msg: dict = {"at": time.monotonic()}
        for line in block.decode().split("\n"):
            name, _, value = line.partition(": ")
            msg[name or "comment"] = value
        return msg

    def next(self, timeout: float = WAIT_S, heartbeats: bool = False) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            msg = self.messages.get(timeout=max(deadline - time.monotonic(), 0.01))
            if heartbeats or "comment" not in msg:
                return msg

    def events(self, n: int) -> list[dict]:
        return [self.next() for _ in range(n)]

    def close(self) -> None:
        self._stream.__exit__(None, None, None)
        self._client.close()


@pytest.fixture
def sse(node: RunningNode) -> Iterator:
    readers: list[SseReader] = []

    def open_(token: str, coop: str = COOP, **kw) -> SseReader:
        headers = {**bearer(token), **kw.pop("headers", {})}
        reader = SseReader(f"{node.base}/v1/coops/{coop}/stream", headers, kw or None)
        readers.append(reader)
        return reader

    yield open_
    for r in readers:
        r.close()


def test_sse_replays_the_log_then_delivers_a_posted_event_quickly(node, sse, members):
    token = login(node.base, members["alice"])
    stream = sse(token)
    assert stream.response.status_code == 200
    assert stream.response.headers["content-type"].startswith("text/event-stream")
    size = log_size(node.base)
    replayed = stream.events(size)
    assert [int(m["id"]) for m in replayed] == list(range(size))
    assert all(json.loads(m["data"])["type"] == m["event"] for m in replayed)
    latencies = []
    for event in next_events(node.base, token, members["alice"], 5):
        sent = time.monotonic()
        position = post(node.base, token, event)
        got = stream.next()
        latencies.append(got["at"] - sent)
        assert int(got["id"]) == position and json.loads(got["data"])["id"] == event.id
        assert got["event"] == "ledger.EntryRecorded"
    print(f"SSE delivery after POST: max {max(latencies) * 1000:.1f} ms")
    assert max(latencies) < 1.0
    assert b"id: 0\nevent: coop.Founded\ndata: {" in stream.raw


def test_sse_resumes_after_last_event_id_without_gap_or_duplicate(node, sse, members):
    token = login(node.base, members["bob"])
    first = sse(token)
    seen = [int(m["id"]) for m in first.events(10)]
    first.close()
    for event in next_events(node.base, token, members["bob"], 3):
        post(node.base, token, event)  # appended while disconnected
    size = log_size(node.base)
    # the header wins over ?after=
    again = sse(token, headers={"Last-Event-ID": str(seen[-1])}, after=size - 2)
    seen += [int(m["id"]) for m in again.events(size - len(seen))]
    assert seen == list(range(size))
    with pytest.raises(queue.Empty):
        again.next(timeout=1.5)
    by_query = sse(token, after=size - 2)
    assert int(by_query.next()["id"]) == size - 1


def test_sse_filters_by_type_prefix_and_author(node, sse, members):
    token = login(node.base, members["carol"])
    h = bearer(token)
    url = f"{node.base}/v1/coops/{COOP}/events"
    for params in ({"type": "ledger."}, {"author": node_author(node, token)}):
        expected = httpx.get(url, params={**params, "limit": 1000}, headers=h).json()["events"]
        stream = sse(token, **params)
        got = stream.events(len(expected))
        assert [int(m["id"]) for m in got] == [e["position"] for e in expected]
        positions = [int(m["id"]) for m in got]
        assert positions == sorted(set(positions)) and positions != list(range(len(positions)))
        if "type" in params:
            assert all(m["event"].startswith("ledger.") for m in got)
        else:
            assert {json.loads(m["data"])["author"] for m in got} == {params["author"]}


def node_author(node: RunningNode, token: str) -> str:
    """The author of the log's second event: someone with a few events, not all of them."""
    page = httpx.get(f"{node.base}/v1/coops/{COOP}/events", params={"limit": 2},
                     headers=bearer(token)).json()  # fmt: skip
    return page["events"][1]["event"]["author"]


def test_sse_refuses_without_a_token_and_on_the_wrong_coop(node, members):
    url = f"{node.base}/v1/coops/{COOP}/stream"
    r = httpx.get(url)
    assert r.status_code == 401 and r.json()["code"] == "unauthorized"
    other = login(node.base, members["alice"], coop="bike-coop")
    r = httpx.get(url, headers=bearer(other))
    assert r.status_code == 403 and r.json()["code"] == "token-coop-mismatch"
    r = httpx.get(url, params={"after": -2}, headers=bearer(login(node.base, members["alice"])))
    assert r.status_code == 400


def test_an_empty_coop_stream_heartbeats(node, sse, members):
    # Nobody is a member of a coop that was never founded; the node itself may still follow it.
    assert try_login(node.base, members["dave"], coop="quiet-coop").status_code == 403
    stream = sse(login_quiet(node), coop="quiet-coop")
    beat = stream.next(timeout=5, heartbeats=True)
    assert beat["comment"].startswith("heartbeat ") and ": heartbeat " in stream.raw.decode()
    assert abs(int(beat["comment"].split()[1]) - time.time() * 1000) < 10_000
    offer = ws_subprotocols(login_quiet(node))
    with connect(
        f"{node.ws_base}/v1/coops/quiet-coop/ws", subprotocols=offer, open_timeout=5
    ) as ws:
        assert "heartbeat" in json.loads(ws.recv(timeout=5))


def login_quiet(node: RunningNode) -> str:
    """A token for quiet-coop, which has no members: the node's own key gets one."""
    node_key = Keystore(node.data / "keys").unlock("node", node.env["ICN_PASSPHRASE"])
    return login(node.base, node_key, coop="quiet-coop")


def test_websocket_delivers_with_a_subprotocol_token(node, members):
    alice = members["alice"]
    token = login(node.base, alice)
    size = log_size(node.base)
    url = f"{node.ws_base}/v1/coops/{COOP}/ws?after={size - 3}&type=ledger."
    params = {"after": size - 3, "type": "ledger."}
    url_events = f"{node.base}/v1/coops/{COOP}/events"
    expected = httpx.get(url_events, headers=bearer(token), params=params).json()["events"]
    with connect(url, subprotocols=ws_subprotocols(token), open_timeout=5) as ws:
        assert ws.subprotocol == "icn.v1"  # chosen, so the token is not echoed
        replay = [json.loads(_next_frame(ws)) for _ in expected]
        assert replay == expected
        event = next_events(node.base, token, alice)[0]
        sent = time.monotonic()
        position = post(node.base, token, event)
        frame = json.loads(_next_frame(ws))
        assert time.monotonic() - sent < 1.0
        assert frame == {"position": position, "event": json.loads(event.wire_bytes())}
    with connect(f"{node.ws_base}/v1/coops/{COOP}/ws?after={position - 1}",
                 additional_headers=bearer(token), open_timeout=5) as ws:  # fmt: skip
        assert json.loads(_next_frame(ws))["position"] == position


def _next_frame(ws) -> str:
    while "heartbeat" in (frame := ws.recv(timeout=5)):
        pass
    return frame


@pytest.mark.parametrize(
    ("token", "query", "code", "reason"),
    [(None, "", 4401, "unauthorized"), ("not.a.token", "", 4401, "invalid-token"),
     ("{other}", "", 4403, "token-coop-mismatch"), (None, "?token={mine}", 4400, "token-in-url"),
     ("{mine}", "?after=-1&token={mine}", 4400, "token-in-url"),
     ("{mine}", "?after=-1&afer=3", 4400, "unknown-parameter"),
     ("{mine}", "?after=-1&after=3", 4400, "invalid-request")],
)  # fmt: skip
def test_websocket_refusals_close_with_4400_4401_or_4403(node, members, token, query, code,
                                                         reason):  # fmt: skip
    tokens = {"other": login(node.base, members["alice"], coop="bike-coop"),
              "mine": login(node.base, members["alice"])}  # fmt: skip
    url = f"{node.ws_base}/v1/coops/{COOP}/ws{query.format(**tokens)}"
    offer = ws_subprotocols(token.format(**tokens)) if token else None
    with connect(url, subprotocols=offer, open_timeout=5) as ws, \
            pytest.raises(ConnectionClosed) as closed:  # fmt: skip
        ws.recv(timeout=5)
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (code, reason)


def test_the_cli_cannot_import_beside_the_node_and_posted_events_reach_an_open_stream(
    node, sse, members, tmp_path, icn_path_module
):
    erin = members["erin"]  # a member without events: her chain starts at seq 1
    token = login(node.base, erin)
    stream = sse(token, after=log_size(node.base) - 1)
    events = chain_of(erin, COOP, 3)
    batch = tmp_path / "batch.jsonl"
    batch.write_bytes(b"".join(e.wire_bytes() + b"\n" for e in events))
    # The running node holds its data dir: a second writer is refused at once (exit 2).
    refused = subprocess.run(
        [icn_path_module, "log", "import", str(batch), "--data-dir", str(node.data)],
        env=node.env, capture_output=True, timeout=60,
    )  # fmt: skip
    assert refused.returncode == 2 and b"another node (pid" in refused.stderr
    posted = time.monotonic()
    for event in events:
        post(node.base, token, event)  # 201, or it fails
    got = stream.events(3)
    assert [json.loads(m["data"])["id"] for m in got] == [e.id for e in events]
    assert got[-1]["at"] - posted < 2.0


def test_a_websocket_client_that_does_not_read_is_dropped_with_4008(
    tmp_path, icn_path_module, icn_env_module
):
    key = key_for("bulk")
    founded = CoopScript("bulk-coop").found({"bulk": [], PAYEE: []}, policy=GENEROUS_POLICY)
    events = chain_of(key, "bulk-coop", 300, fat=True)  # 15 MB: more than the socket buffers
    bulk = write_jsonl(tmp_path / "bulk.jsonl", [founded, *events])
    env = {**icn_env_module, "ICN_STREAM_SEND_TIMEOUT_S": "1"}
    running = start_node(icn_path_module, env, tmp_path / "node", bulk)
    try:
        token = login(running.base, key, coop="bulk-coop")
        host, port = running.base.removeprefix("http://").split(":")
        # A raw client: client libraries read ahead into memory; this one truly does not read.
        with socket.create_connection((host, int(port))) as sock:
            sock.sendall(
                f"GET /v1/coops/bulk-coop/ws HTTP/1.1\r\nHost: {host}\r\n"
                f"Sec-WebSocket-Protocol: {', '.join(ws_subprotocols(token))}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n".encode()
            )
            time.sleep(4)  # the server's sends block; after 1 s it gives up on us
            sock.settimeout(10)
            received = b""
            while chunk := sock.recv(1 << 20):
                received += chunk
                if received.endswith(b"too slow"):
                    break
        assert received.startswith(b"HTTP/1.1 101")
        close_frame = b"\x88" + bytes([2 + len(b"too slow")]) + (4008).to_bytes(2, "big")
        assert received.endswith(close_frame + b"too slow")
        assert len(received) < sum(len(e.wire_bytes()) for e in events)  # dropped, not served
    finally:
        running.stop()


def test_sigterm_with_open_streams_exits_zero_promptly(tmp_path, coop_log_file, icn_path_module,
                                                       icn_env_module, members):  # fmt: skip
    running = start_node(icn_path_module, icn_env_module, tmp_path / "node", coop_log_file)
    token = login(running.base, members["alice"])
    stream = SseReader(f"{running.base}/v1/coops/{COOP}/stream", bearer(token))
    stream.events(log_size(running.base))
    offer = ws_subprotocols(token)
    with connect(f"{running.ws_base}/v1/coops/{COOP}/ws", subprotocols=offer, open_timeout=5) as ws:
        ws.recv(timeout=5)
        took = running.stop()
        with pytest.raises(ConnectionClosed):
            while True:
                ws.recv(timeout=5)
    assert stream.next(timeout=5).get("closed")
    stream.close()
    assert took < 5, f"shutdown took {took:.1f} s"
