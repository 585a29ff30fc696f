"""Hostile request input over real HTTP, against a real ``icn node run``.

Deep and duplicate-key JSON on every body, a resume cursor out of range, and
refusals that must carry the same code over HTTP as from ``icn log import``.
Each refusal is a problem document with a stable code, and nothing is stored.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from nacl.signing import SigningKey
from support.coops import did_for
from support.nodes import PAYEE, RunningNode, bearer, login, run_icn, start_node

from icn.domain.events.envelope import Event, sign_event
from icn.domain.identity.did import did_from_public_key

COOP = "food-coop"
DEEP = 10_000


@pytest.fixture(scope="module")
def node(tmp_path_factory, coop_log_file: Path, icn_path_module: str, icn_env_module: dict):
    running = start_node(
        icn_path_module, icn_env_module, tmp_path_factory.mktemp("hostile") / "node", coop_log_file
    )
    yield running
    running.stop()


def size_of(node: RunningNode) -> int:
    return int(httpx.get(f"{node.base}/v1/ready").json()["coops"][COOP]["size"])


def malformed(r: httpx.Response, *statuses: int) -> str:
    """The response is a ``malformed`` problem document; returns its detail."""
    assert r.status_code in (statuses or (400, 422)), r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    doc = r.json()
    assert doc["code"] == "malformed", doc
    assert "Traceback" not in r.text
    return str(doc["detail"])


def deep(n: int = DEEP) -> bytes:
    return b'{"did":' + b"[" * n + b"]" * n + b"}"


def next_event(base: str, token: str, key: SigningKey, body: dict) -> Event:
    did = did_from_public_key(bytes(key.verify_key))
    head = httpx.get(f"{base}/v1/coops/{COOP}/chains/{did}/head", headers=bearer(token)).json()
    now = int(time.time() * 1000)
    return sign_event(key, coop=COOP, seq=head["next_seq"], prev=head["prev"], ts=now,
                      type="ledger.EntryRecorded", body=body)  # fmt: skip


def payment(key: SigningKey, to: str, amount: int) -> dict:
    did = did_from_public_key(bytes(key.verify_key))
    return {"transactions": [{"from": did, "to": to, "amount": amount, "currency": "hours"}]}


@pytest.mark.parametrize("path", ["/v1/auth/challenge", "/v1/auth/verify"])
def test_deep_and_duplicate_key_login_bodies_are_malformed(node, path):
    assert "nesting deeper than 64" in malformed(httpx.post(node.base + path, content=deep()))
    # 65 levels: just over the limit; 64 is fine (and then refused for other reasons)
    assert "nesting" in malformed(httpx.post(node.base + path, content=deep(64)))
    r = httpx.post(node.base + path, content=b'{"did":' + b"[" * 63 + b"]" * 63 + b"}")
    assert r.status_code == 400 and r.json()["code"] == "invalid-request", r.text
    twice = b'{"did": "did:icn:z6MkA", "did": "did:icn:z6MkB"}'
    assert "repeats the member name 'did'" in malformed(httpx.post(node.base + path, content=twice))


def test_deep_and_duplicate_key_event_bodies_store_nothing(node, members):
    alice = members["alice"]
    token = login(node.base, alice)
    url = f"{node.base}/v1/coops/{COOP}/events"
    before = size_of(node)
    good = next_event(node.base, token, alice, payment(alice, did_for(PAYEE), 1)).wire_bytes()
    bodies = [
        deep(),  # one "event", 10,000 deep
        b"[" + deep() + b"]",  # a batch whose event is deep
        b"[" * DEEP + b"]" * DEEP,  # a batch that is only nesting
        b"[" + good + b"," + b"[" * 70 + b"]" * 70 + b"]",  # a good event, then a deep one
        good[:-1] + b',"seq":1}',  # the envelope repeats a member
        b"[" + good[:-1] + b',"sig":"00"}]',  # the same, inside a batch
        b'[{"a":1,"a":2}]',
    ]
    for body in bodies:
        malformed(httpx.post(url, content=body, headers=bearer(token)))
    assert size_of(node) == before
    r = httpx.post(url, content=good, headers=bearer(token))  # the good event alone still goes in
    assert r.status_code == 201, r.text
    assert size_of(node) == before + 1


@pytest.mark.parametrize(
    "value", ["9223372036854775808", str(2**53), "-2", "x", "99999999999999999999999999"]
)
def test_last_event_id_out_of_range_is_400_before_the_stream_starts(node, members, value):
    token = login(node.base, members["bob"])
    headers = {**bearer(token), "Last-Event-ID": value}
    with httpx.stream("GET", f"{node.base}/v1/coops/{COOP}/stream", headers=headers) as r:
        r.read()
        assert r.status_code == 400, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["code"] == "invalid-request"
        after = httpx.get(f"{node.base}/v1/coops/{COOP}/stream", headers=bearer(token),
                          params={"after": value})  # fmt: skip
        assert after.json()["code"] == r.json()["code"]


@pytest.mark.parametrize(
    ("code", "amount", "to_self"), [("self-payment", 1, True), ("invalid-amount", 0, False)]
)
def test_http_and_log_import_refuse_the_same_line_with_the_same_code(
    node, members, tmp_path, icn_path_module, icn_env_module, code, amount, to_self
):
    alice = members["alice"]
    token = login(node.base, alice)
    to = did_from_public_key(bytes(alice.verify_key)) if to_self else did_for(PAYEE)
    event = next_event(node.base, token, alice, payment(alice, to, amount))
    before = size_of(node)
    r = httpx.post(f"{node.base}/v1/coops/{COOP}/events", content=event.wire_bytes(),
                   headers=bearer(token))  # fmt: skip
    assert r.status_code == 422, r.text
    assert r.json()["code"] == code and r.json()["line"] == 1
    batch = httpx.post(f"{node.base}/v1/coops/{COOP}/events", headers=bearer(token),
                       content=b"[" + event.wire_bytes() + b"]")  # fmt: skip
    assert (batch.status_code, batch.json()["code"]) == (422, code)
    assert size_of(node) == before
    line = tmp_path / "line.jsonl"
    line.write_bytes(event.wire_bytes() + b"\n")
    data = str(tmp_path / "cli-node")
    run_icn(icn_path_module, icn_env_module, "node", "init", "--data-dir", data)
    proc = _import(icn_path_module, icn_env_module, line, data)
    assert proc["problems"][0]["code"] == code, proc


def _import(icn: str, env: dict, path: Path, data: str) -> dict:
    proc = subprocess.run([icn, "log", "import", str(path), "--data-dir", data, "--json"],
                          env=env, capture_output=True, timeout=120)  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    return dict(json.loads(proc.stdout))


def test_a_query_parameter_no_route_takes_is_refused_by_name(node, members):
    """A misspelt option must not silently give another answer (first page, not last)."""
    alice = members["alice"]
    token = login(node.base, alice)
    did = did_from_public_key(bytes(alice.verify_key))
    history = f"{node.base}/v1/coops/{COOP}/accounts/{did}/history"
    answered = httpx.get(history, headers=bearer(token), params={"order": "desc", "limit": 2})
    assert answered.status_code == 200, answered.text
    for url, params in [
        (history, {"descending": "true"}),
        (history, {"limit": "2", "limt": "5"}),
        (f"{node.base}/v1/coops/{COOP}/events", {"after": "-1", "types": "ledger."}),
        (f"{node.base}/v1/ready", {"verbose": "1"}),
    ]:
        r = httpx.get(url, headers=bearer(token), params=params)
        assert r.status_code == 400, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        doc = r.json()
        assert doc["code"] == "unknown-parameter", doc
        unknown = next(name for name in params if name not in ("after", "limit"))
        assert repr(unknown) in doc["detail"], doc
    twice = httpx.get(f"{history}?limit=2&limit=50", headers=bearer(token))
    assert twice.status_code == 400 and twice.json()["code"] == "invalid-request", twice.text
    assert "'limit' given twice" in twice.json()["detail"]
