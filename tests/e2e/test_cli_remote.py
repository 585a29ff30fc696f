"""``icn login`` / ``icn events post`` / ``icn events tail`` against a real ``icn node run``.

Everything goes through the installed ``icn`` entry point, as a person would
use it; the node is a real process, and the reconnect test really stops and
restarts it on the same port and data directory.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from nacl.signing import SigningKey
from support.coops import did_for
from support.nodes import PAYEE, RunningNode, coop_log, free_port, run_icn

from icn.domain.events.envelope import Event, sign_event
from icn.domain.identity.did import did_from_public_key
from icn.infrastructure.keystore import Keystore
from icn.interfaces.client import IcnClient, Session, SessionStore

COOP = "food-coop"
OTHER = did_for(PAYEE)


class RemoteNode(RunningNode):
    """A node for signing with its own key: no timed checkpoints.

    Checkpoints are events of the node's own chain, and these tests sign with
    the node key, so one landing mid-test would race them.
    """

    def __init__(self, icn: str, env: dict[str, str], data: Path) -> None:
        super().__init__(icn, {**env, "ICN_CHECKPOINT_SECONDS": "86400"}, data)

    def size(self) -> int:
        """The coop's log size, as the node reports it."""
        return int(httpx.get(f"{self.url}/v1/ready").json()["coops"][COOP]["size"])


@pytest.fixture(scope="module")
def node(tmp_path_factory, icn_path_module: str, icn_env_module: dict) -> Iterator[RemoteNode]:
    """A node serving food-coop on a free port; its own key is a member (tests sign with it)."""
    data = tmp_path_factory.mktemp("remote") / "node"
    run_icn(icn_path_module, icn_env_module, "node", "init", "--data-dir", str(data))
    key = Keystore(data / "keys").unlock("node", icn_env_module["ICN_PASSPHRASE"])
    log = coop_log(
        data.parent / "coops.jsonl", extra={did_from_public_key(bytes(key.verify_key)): []}
    )
    run_icn(icn_path_module, icn_env_module, "log", "import", str(log), "--data-dir", str(data))
    running = RemoteNode(icn_path_module, icn_env_module, data)
    running.start()
    yield running
    running.stop()


def icn(node: RemoteNode, *args: str, check: int = 0, data: Path | None = None):
    """Run ``icn`` against the node's data dir; no command may ever print a traceback."""
    proc = subprocess.run(
        [node.icn, *args, "--data-dir", str(data or node.data)],
        env={**node.env, "ICN_URL": node.url},
        capture_output=True,
        timeout=120,
    )
    assert b"Traceback" not in proc.stderr, proc.stderr.decode()
    assert proc.returncode == check, (proc.returncode, proc.stdout, proc.stderr)
    return proc


@pytest.fixture(scope="module")
def node_key(node: RemoteNode, icn_env_module: dict) -> SigningKey:
    return Keystore(node.data / "keys").unlock("node", icn_env_module["ICN_PASSPHRASE"])


@pytest.fixture(scope="module")
def logged_in(node: RemoteNode) -> dict:
    """``icn login --key node``, once for the module."""
    return json.loads(icn(node, "login", "--coop", COOP, "--key", "node", "--json").stdout)


def signed(node: RemoteNode, key: SigningKey, n: int) -> list[Event]:
    """``n`` new events of the key's chain, continuing from its head on the node."""
    token = SessionStore(node.data).load(COOP).token
    with IcnClient(node.url, token) as client:
        head = client.chain_head(COOP, did_from_public_key(bytes(key.verify_key)))
    seq, prev, events = head.next_seq, head.prev, []
    for i in range(n):
        tx = {"from": did_from_public_key(bytes(key.verify_key)), "to": OTHER,
              "amount": i + 1, "currency": "hours", "memo": None}  # fmt: skip
        event = sign_event(key, coop=COOP, seq=seq, prev=prev, ts=int(time.time() * 1000),
                           type="ledger.EntryRecorded", body={"transactions": [tx]})  # fmt: skip
        events.append(event)
        seq, prev = seq + 1, event.id
    return events


def jsonl(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return path


def forged(event: Event) -> bytes:
    doc = json.loads(event.wire_bytes())
    doc["sig"] = "00" * 64
    return json.dumps(doc).encode()


def test_login_stores_a_private_session_and_prints_no_token(node, logged_in, node_key) -> None:
    assert logged_in["did"] == did_from_public_key(bytes(node_key.verify_key))
    assert logged_in["coop"] == COOP and logged_in["url"] == node.url
    assert logged_in["expires_at"] > time.time() * 1000
    folder = node.data / "sessions"
    stored = json.loads((folder / f"{COOP}.json").read_text())
    assert stored["token"] not in json.dumps(logged_in)
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(folder / f"{COOP}.json").st_mode) == 0o600
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]
    text = icn(node, "login", "--coop", COOP).stdout.decode()
    assert logged_in["did"] in text and COOP in text and "expires" in text


def test_posted_events_are_placed_and_tail_prints_exactly_them(
    node, logged_in, node_key, tmp_path
) -> None:
    before = node.size()
    events = signed(node, node_key, 2)
    file = jsonl(tmp_path / "new.jsonl", [e.wire_bytes() for e in events])
    posted = json.loads(icn(node, "events", "post", str(file), "--coop", COOP, "--json").stdout)
    assert posted == {
        "posted": 2,
        "events": [{"id": e.id, "position": before + i} for i, e in enumerate(events)],
    }
    # Posting again is refused by line (recorded already), and stores nothing.
    proc = icn(node, "events", "post", str(file), "--coop", COOP, check=1)
    assert b"error (duplicate): line 1:" in proc.stderr
    assert node.size() == before + 2
    proc = icn(node, "events", "tail", "--coop", COOP, "--after", str(before - 1), "--limit", "2")
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [(x["position"], x["event"]["id"]) for x in lines] == [
        (before, events[0].id),
        (before + 1, events[1].id),
    ]
    assert lines[0]["event"] == json.loads(events[0].wire_bytes())


def test_tail_filters_by_type_and_author(node, logged_in, node_key) -> None:
    author = did_from_public_key(bytes(node_key.verify_key))
    proc = icn(node, "events", "tail", "--coop", COOP, "--type", "coop.", "--limit", "1")
    [line] = [json.loads(x) for x in proc.stdout.splitlines()]
    assert line["event"]["type"] == "coop.Founded"
    proc = icn(node, "events", "tail", "--coop", COOP, "--author", author, "--limit", "1")
    [line] = [json.loads(x) for x in proc.stdout.splitlines()]
    assert line["event"]["author"] == author


def test_tail_last_prints_the_logs_last_events_and_stops(node, logged_in, node_key) -> None:
    size = node.size()
    assert size >= 2
    proc = icn(node, "events", "tail", "--coop", COOP, "--last", "2")
    assert [json.loads(x)["position"] for x in proc.stdout.splitlines()] == [size - 2, size - 1]
    proc = icn(node, "events", "tail", "--coop", COOP, "--last", str(size + 5))
    assert [json.loads(x)["position"] for x in proc.stdout.splitlines()] == list(range(size))
    proc = icn(node, "events", "tail", "--coop", COOP, "--last", "2", "--type", "coop.", check=2)
    assert b"--last" in proc.stderr


def test_tail_takes_a_key_name_for_the_author(node, logged_in, node_key) -> None:
    author = did_from_public_key(bytes(node_key.verify_key))
    proc = icn(node, "events", "tail", "--coop", COOP, "--author", "node", "--limit", "1")
    [line] = [json.loads(x) for x in proc.stdout.splitlines()]
    assert line["event"]["author"] == author
    icn(node, "events", "tail", "--coop", COOP, "--author", "nobody", "--limit", "1", check=2)


def test_the_checkpoint_before_the_first_one_is_a_clear_problem(node, logged_in) -> None:
    # This node checkpoints once a day (RemoteNode): none has been signed yet.
    token = SessionStore(node.data).load(COOP).token
    r = httpx.get(
        f"{node.url}/v1/coops/{COOP}/checkpoint", headers={"Authorization": f"Bearer {token}"}
    )
    assert r.status_code == 404 and r.json()["code"] == "no-checkpoint-yet", r.text


def test_a_forged_line_2_is_refused_by_number_and_nothing_is_stored(
    node, logged_in, node_key, tmp_path
) -> None:
    before = node.size()
    first, second = signed(node, node_key, 2)
    file = jsonl(tmp_path / "bad.jsonl", [first.wire_bytes(), forged(second)])
    proc = icn(node, "events", "post", str(file), "--coop", COOP, check=1)
    assert b"error (bad-signature): line 2:" in proc.stderr
    assert node.size() == before


def test_lines_are_counted_across_chunks(node, logged_in, node_key, tmp_path) -> None:
    before = node.size()
    events = signed(node, node_key, 101)
    lines = [e.wire_bytes() for e in events[:100]] + [forged(events[100])]
    proc = icn(node, "events", "post", str(jsonl(tmp_path / "big.jsonl", lines)), "--coop",
               COOP, "--json", check=1)  # fmt: skip
    report = json.loads(proc.stdout)
    assert report["posted"] == 100 and report["error"]["line"] == 101
    assert report["error"]["code"] == "bad-signature"
    assert b"error (bad-signature): line 101:" in proc.stderr
    assert b"100 events before the refused chunk were stored" in proc.stderr
    assert node.size() == before + 100


def test_a_line_that_is_not_json_is_refused_before_sending(node, logged_in, tmp_path) -> None:
    before = node.size()
    file = tmp_path / "junk.jsonl"
    file.write_bytes(b'{"v": 1}\nnot json\n')
    proc = icn(node, "events", "post", str(file), "--coop", COOP, check=1)
    assert b"error (malformed): line 2: not JSON" in proc.stderr
    assert node.size() == before


def test_without_a_session_commands_say_to_log_in(node, tmp_path) -> None:
    empty = tmp_path / "client"
    file = jsonl(tmp_path / "x.jsonl", [b"{}"])
    proc = icn(node, "events", "post", str(file), "--coop", COOP, check=1, data=empty)
    assert b"error (no-session): not logged in to food-coop" in proc.stderr
    assert b"icn login --coop food-coop" in proc.stderr
    proc = icn(node, "events", "tail", "--coop", COOP, check=1, data=empty)
    assert b"(no-session)" in proc.stderr


def test_an_expired_session_is_refused_before_any_request(node, tmp_path) -> None:
    client_dir = tmp_path / "client"
    SessionStore(client_dir).save(
        node.url, Session("not-a-real-token", int(time.time() * 1000) - 1000, "did:icn:x", COOP)
    )
    proc = icn(node, "events", "tail", "--coop", COOP, check=1, data=client_dir)
    assert b"error (session-expired): the session for food-coop expired" in proc.stderr
    assert b"log in again" in proc.stderr


def test_a_session_for_another_node_is_not_sent_elsewhere(node, logged_in, tmp_path) -> None:
    file = jsonl(tmp_path / "x.jsonl", [b"{}"])
    other = f"http://127.0.0.1:{free_port()}"
    proc = icn(node, "events", "post", str(file), "--coop", COOP, "--url", other, check=1)
    assert b"error (wrong-node)" in proc.stderr


def test_an_unreachable_node_is_a_clean_error(node) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    proc = icn(node, "login", "--coop", COOP, "--url", url, check=1, data=node.data)
    assert f"error (unreachable): cannot reach the node at {url}".encode() in proc.stderr


def test_a_bad_token_is_the_nodes_refusal(node, tmp_path) -> None:
    client_dir = tmp_path / "client"
    SessionStore(client_dir).save(
        node.url, Session("not.a.token", int(time.time() * 1000) + 600_000, "did:icn:x", COOP)
    )
    file = jsonl(tmp_path / "x.jsonl", [b"{}"])
    proc = icn(node, "events", "post", str(file), "--coop", COOP, check=1, data=client_dir)
    assert b"error (invalid-token): the bearer token is not valid" in proc.stderr


def test_tail_survives_a_node_restart_without_repeating_a_position(
    node, logged_in, node_key, tmp_path
) -> None:
    before = node.size()
    first, second = signed(node, node_key, 2)
    tail = subprocess.Popen(
        [node.icn, "events", "tail", "--coop", COOP, "--after", str(before - 1),
         "--limit", "2", "--data-dir", str(node.data)],
        env=node.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        icn(node, "events", "post", str(jsonl(tmp_path / "1.jsonl", [first.wire_bytes()])),
            "--coop", COOP)  # fmt: skip
        assert tail.stdout is not None
        got = [json.loads(tail.stdout.readline())]
        node.stop()
        assert tail.poll() is None, tail.stderr.read() if tail.stderr else b""
        node.start()
        icn(node, "events", "post", str(jsonl(tmp_path / "2.jsonl", [second.wire_bytes()])),
            "--coop", COOP)  # fmt: skip
        out, errors = tail.communicate(timeout=90)
    finally:
        if tail.poll() is None:
            tail.kill()
    got += [json.loads(line) for line in out.splitlines()]
    assert tail.returncode == 0, errors
    assert b"Traceback" not in errors
    assert [(x["position"], x["event"]["id"]) for x in got] == [
        (before, first.id),
        (before + 1, second.id),
    ]


def test_ctrl_c_ends_tail_quietly(node, logged_in) -> None:
    tail = subprocess.Popen(
        [node.icn, "events", "tail", "--coop", COOP, "--data-dir", str(node.data)],
        env=node.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert tail.stdout is not None
    assert json.loads(tail.stdout.readline())["position"] == 0  # the stream is up
    tail.send_signal(signal.SIGINT)
    _, errors = tail.communicate(timeout=30)
    assert tail.returncode == 0 and errors == b"", errors


def test_the_sse_parser_follows_the_event_stream_rules() -> None:
    from icn.interfaces.client.sse import SseComment, SseMessage, parse

    lines = [": heartbeat 1", "", "id: 7", "event: ledger.X", "data: {\"a\":", "data:1}", "",
             "data: no id", "", "id: 8", "data: cut off"]  # fmt: skip
    assert list(parse(lines)) == [
        SseComment("heartbeat 1"),
        SseMessage("ledger.X", '{"a":\n1}', "7"),
        SseMessage("message", "no id", "7"),  # the last event id persists, per the spec
    ]
