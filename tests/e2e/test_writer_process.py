"""``icn node run`` writes in a child process: the serving process only reads and verifies.

The writer's pid is on ``/v1/health``; it is a child of the node's process, which still
holds the data dir's lock. Writes through HTTP answer exactly as before (a position, a
refusal's code and line), and a writer that dies stops the node with a non-zero exit
rather than leaving it serving requests nobody will write.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import httpx
from nacl.signing import SigningKey
from support.coops import did_for
from support.nodes import COOP, PAYEE, RunningNode, bearer, coop_log, login, member_keys

from icn.domain.events.envelope import Event, sign_event
from icn.domain.identity.did import did_from_public_key
from icn.interfaces.cli.node_detach import running_pid
from icn.interfaces.writer_process import WRITER_DIED


def _parent_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("PPid:"):
            return int(line.split()[1])
    raise AssertionError(f"no PPid for {pid}")


def _node(tmp_path: Path, icn_path: str, env: dict[str, str]) -> RunningNode:
    env = {"ICN_WRITER_PROCESS": "1", **env}  # the default, unless a test asks for 0
    data = tmp_path / "node"
    log = coop_log(tmp_path / "coop.jsonl")
    subprocess.run([icn_path, "node", "init", "--data-dir", str(data)], env=env, check=True,
                   capture_output=True, timeout=120)  # fmt: skip
    subprocess.run([icn_path, "log", "import", str(log), "--data-dir", str(data)], env=env,
                   check=True, capture_output=True, timeout=120)  # fmt: skip
    return RunningNode(icn_path, env, data)


def _ready(base: str) -> dict:
    """``/v1/ready`` once it answers 200 (replication connects a moment after start)."""
    deadline = time.monotonic() + 30
    while True:
        r = httpx.get(f"{base}/v1/ready", timeout=5)
        if r.status_code == 200 or time.monotonic() > deadline:
            assert r.status_code == 200, r.text
            return dict(r.json())
        time.sleep(0.2)


def _payments(base: str, token: str, key: SigningKey, n: int) -> list[Event]:
    """``n`` payments to zoe continuing ``key``'s chain as the node holds it."""
    did = did_from_public_key(bytes(key.verify_key))
    head = httpx.get(f"{base}/v1/coops/{COOP}/chains/{did}/head", headers=bearer(token)).json()
    seq, prev, events = head["next_seq"], head["prev"], []
    for i in range(n):
        tx = {"from": did, "to": did_for(PAYEE), "amount": 1 + i, "currency": "hours"}
        event = sign_event(key, coop=COOP, seq=seq + i, prev=prev, ts=int(time.time() * 1000),
                           type="ledger.EntryRecorded", body={"transactions": [tx]})  # fmt: skip
        events.append(event)
        prev = event.id
    return events


def _answered_is_projected_and_read_without_the_write_lock(
    node: RunningNode, token: str, event: Event, position: int
) -> None:
    """The write just answered at ``position`` is in every read model already, and a read
    of it answers while another connection holds SQLite's write lock: reads never write.
    (Before, the first read after a write applied it, under that lock: this read would
    have waited the lock's 30 s.)"""
    db = sqlite3.connect(f"file:{node.data / 'icn.sqlite3'}?mode=ro", uri=True)
    positions = db.execute(
        "SELECT projection, position FROM projection_positions WHERE coop = ?", (COOP,)
    ).fetchall()
    db.close()
    assert positions and {p for _, p in positions} == {position}, positions
    locker = sqlite3.connect(node.data / "icn.sqlite3", isolation_level=None, timeout=1)
    locker.execute("BEGIN IMMEDIATE")
    try:
        payer = event.author
        r = httpx.get(f"{node.base}/v1/coops/{COOP}/accounts/{payer}/history",
                      params={"order": "desc", "limit": 1}, headers=bearer(token),
                      timeout=10)  # fmt: skip
        assert r.status_code == 200, r.text
        assert r.json()["items"][0]["event_id"] == event.id, r.json()
    finally:
        locker.execute("ROLLBACK")
        locker.close()


def test_the_writer_is_a_child_process_and_http_answers_as_before(
    tmp_path: Path, icn_path: str, icn_process_env: dict
) -> None:
    node = _node(tmp_path, icn_path, icn_process_env).start()
    try:
        assert node.proc is not None
        health = httpx.get(f"{node.base}/v1/health", timeout=5).json()
        writer = health["writer_pid"]
        assert writer != node.proc.pid
        assert _parent_of(writer) == node.proc.pid
        assert running_pid(node.data) == node.proc.pid  # the serving process holds the lock
        alice = member_keys()["alice"]
        token = login(node.base, alice)
        url = f"{node.base}/v1/coops/{COOP}/events"
        first, good = _payments(node.base, token, alice, 2)
        size = _ready(node.base)["coops"][COOP]["size"]
        r = httpx.post(url, content=first.wire_bytes(), headers=bearer(token), timeout=10)
        assert r.status_code == 201, r.text
        assert r.json() == {"id": first.id, "position": size}
        _answered_is_projected_and_read_without_the_write_lock(node, token, first, size)
        again = httpx.post(url, content=first.wire_bytes(), headers=bearer(token), timeout=10)
        assert again.status_code == 409 and again.json()["code"] == "duplicate"
        # A batch whose second line is already stored: refused whole, the line named.
        batch = b"[" + good.wire_bytes() + b"," + first.wire_bytes() + b"]"
        refused = httpx.post(url, content=batch, headers=bearer(token), timeout=10)
        assert refused.status_code == 409, refused.text
        assert refused.json()["code"] == "duplicate" and refused.json()["line"] == 2
        ready = _ready(node.base)
        assert ready["coops"][COOP]["size"] == size + 1  # the batch stored nothing
        assert ready["replication"]["connected"]  # as the writer process reports it
    finally:
        node.stop()
    # Its log lines go to the node's log, in the node's format (JSON off a terminal).
    lines = [json.loads(x) for x in node.log.read_text().splitlines() if x.startswith("{")]
    assert any(x.get("process") == "writer" for x in lines), lines[:20]


def test_a_killed_writer_stops_the_node_with_a_non_zero_exit(
    tmp_path: Path, icn_path: str, icn_process_env: dict
) -> None:
    env = dict(icn_process_env, ICN_REPLICATION="false")
    node = _node(tmp_path, icn_path, env).start()
    assert node.proc is not None
    writer = httpx.get(f"{node.base}/v1/health", timeout=5).json()["writer_pid"]
    os.kill(writer, signal.SIGKILL)
    try:
        code = node.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        node.proc.kill()
        raise AssertionError("the node kept serving without its writer") from None
    assert code == WRITER_DIED
    assert "writer process" in node.log.read_text()
    deadline = time.monotonic() + 5
    while running_pid(node.data) is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert running_pid(node.data) is None


def test_icn_writer_process_0_writes_in_the_serving_process(
    tmp_path: Path, icn_path: str, icn_process_env: dict
) -> None:
    env = dict(icn_process_env, ICN_WRITER_PROCESS="0", ICN_REPLICATION="false")
    node = _node(tmp_path, icn_path, env).start()
    try:
        assert "writer_pid" not in httpx.get(f"{node.base}/v1/health", timeout=5).json()
        alice = member_keys()["alice"]
        token = login(node.base, alice)
        (event,) = _payments(node.base, token, alice, 1)
        r = httpx.post(f"{node.base}/v1/coops/{COOP}/events", content=event.wire_bytes(),
                       headers=bearer(token), timeout=10)  # fmt: skip
        assert r.status_code == 201 and r.json()["id"] == event.id, r.text
        _answered_is_projected_and_read_without_the_write_lock(
            node, token, event, r.json()["position"]
        )
    finally:
        node.stop()


class _Collector:
    """An OTLP/HTTP trace receiver on a loopback port: the spans both processes export."""

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )

        self.spans: list[tuple[str, bytes, bytes, bytes]] = []  # name, trace, span, parent
        spans, lock = self.spans, threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                request = ExportTraceServiceRequest.FromString(body)
                with lock:
                    for resource in request.resource_spans:
                        for scope in resource.scope_spans:
                            spans.extend(
                                (s.name, s.trace_id, s.span_id, s.parent_span_id)
                                for s in scope.spans
                            )
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def tree(self, span: bytes) -> dict[str, object]:
        return {name: self.tree(s) for name, _, s, parent in list(self.spans) if parent == span}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_post_is_one_trace_across_the_two_processes(
    tmp_path: Path, icn_path: str, icn_process_env: dict
) -> None:
    """The writer continues each request's trace (the checks, the group commit and below)
    and exports its spans itself: a collector gets the post's whole tree, as one process
    made it before (tests/integration/replication/test_telemetry_traces.py)."""
    collector = _Collector()
    env = {**icn_process_env, "ICN_OTLP_ENDPOINT": collector.url, "ICN_TRACE_SAMPLE": "1",
           "OTEL_BSP_SCHEDULE_DELAY": "100"}  # fmt: skip
    node = _node(tmp_path, icn_path, env).start()
    try:
        alice = member_keys()["alice"]
        token = login(node.base, alice)
        (pay,) = _payments(node.base, token, alice, 1)
        r = httpx.post(f"{node.base}/v1/coops/{COOP}/events", content=pay.wire_bytes(),
                       headers=bearer(token), timeout=10)  # fmt: skip
        assert r.status_code == 201, r.text
        expected = {
            "icn.verify": {},
            "icn.group_commit": {
                "icn.commit": {"icn.judge": {"icn.sequence": {}}},
                "icn.project": {},
            },
            "icn.deliver": {},
        }
        deadline = time.monotonic() + 30
        while True:
            posts = [x for x in list(collector.spans) if x[0] == "POST /v1/coops/{coop}/events"]
            if len(posts) == 1 and collector.tree(posts[0][2]) == expected:
                break
            assert time.monotonic() < deadline, (posts, collector.spans)
            time.sleep(0.1)
        _, trace_id, _, parent = posts[0]
        assert parent == b""  # the request's server span is the root
        assert len([x for x in collector.spans if x[1] == trace_id]) == 8
    finally:
        node.stop()
        collector.close()
