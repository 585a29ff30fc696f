"""The HTTP API over real HTTP, against a real ``icn node run``."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
from nacl.signing import SigningKey
from support.coops import did_for
from support.nodes import PAYEE, bearer, login, start_node

from icn.domain.events.envelope import sign_event
from icn.domain.identity.did import did_from_public_key
from icn.domain.log import merkle

COOP = "food-coop"


@pytest.fixture(scope="module")
def api(tmp_path_factory, coop_log_file: Path, icn_path_module: str, icn_env_module: dict):
    """A node with the members' log imported, serving on a free port; yields its base URL."""
    node = start_node(
        icn_path_module, icn_env_module, tmp_path_factory.mktemp("api") / "node", coop_log_file
    )
    yield node.base
    node.stop()


def next_event(base: str, token: str, key: SigningKey, amount: int = 3):
    did = did_from_public_key(bytes(key.verify_key))
    head = httpx.get(f"{base}/v1/coops/{COOP}/chains/{did}/head", headers=bearer(token)).json()
    to = did_for(PAYEE)
    return sign_event(
        key,
        coop=COOP,
        seq=head["next_seq"],
        prev=head["prev"],
        ts=int(time.time() * 1000),
        type="ledger.EntryRecorded",
        body={
            "transactions": [
                {"from": did, "to": to, "amount": amount, "currency": "hours", "memo": None}
            ]
        },
    )


def assert_problem(r: httpx.Response, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    doc = r.json()
    assert doc["status"] == status and doc["code"] == code and doc["title"]
    assert "Traceback" not in r.text
    return doc


def test_login_round_trip_and_a_nonce_works_once(api: str, members) -> None:
    alice = members["alice"]
    did = did_from_public_key(bytes(alice.verify_key))
    ch = httpx.post(f"{api}/v1/auth/challenge", json={"did": did}).json()
    assert len(bytes.fromhex(ch["nonce"])) == 32 and ch["expires_at"] > time.time() * 1000
    sig = alice.sign(b"icn-auth-v1:" + bytes.fromhex(ch["nonce"])).signature.hex()
    body = {"did": did, "nonce": ch["nonce"], "signature": sig, "coop": COOP}
    first = httpx.post(f"{api}/v1/auth/verify", json=body)
    assert first.status_code == 200 and "events:write" in first.json()["scopes"]
    assert_problem(httpx.post(f"{api}/v1/auth/verify", json=body), 401, "auth-failed")


def test_a_wrong_signature_gets_the_same_answer_as_an_unknown_nonce(api: str, members) -> None:
    alice, bob = members["alice"], members["bob"]
    did = did_from_public_key(bytes(alice.verify_key))
    ch = httpx.post(f"{api}/v1/auth/challenge", json={"did": did}).json()
    forged = bob.sign(b"icn-auth-v1:" + bytes.fromhex(ch["nonce"])).signature.hex()
    r = httpx.post(
        f"{api}/v1/auth/verify",
        json={"did": did, "nonce": ch["nonce"], "signature": forged, "coop": COOP},
    )
    wrong = assert_problem(r, 401, "auth-failed")
    r = httpx.post(
        f"{api}/v1/auth/verify",
        json={"did": did, "nonce": "ab" * 32, "signature": forged, "coop": COOP},
    )
    assert assert_problem(r, 401, "auth-failed")["detail"] == wrong["detail"]


def test_a_token_for_one_coop_is_refused_on_another(api: str, members) -> None:
    token = login(api, members["alice"], coop="bike-coop")
    r = httpx.get(f"{api}/v1/coops/{COOP}/events", headers=bearer(token))
    assert_problem(r, 403, "token-coop-mismatch")
    assert_problem(httpx.get(f"{api}/v1/coops/{COOP}/events"), 401, "unauthorized")
    r = httpx.get(f"{api}/v1/coops/{COOP}/events", headers=bearer("not.a.token"))
    assert_problem(r, 401, "invalid-token")


def test_every_coop_route_in_the_openapi_document_asks_for_a_token_of_its_coop(
    api: str, members
) -> None:
    """The gate is on every coop route, and judges before the route reads its parameters."""
    doc = httpx.get(f"{api}/schema/openapi.json").json()
    did = did_for(PAYEE)
    values = {"coop": COOP, "did": did, "event_id": "0" * 64, "source": did, "target": did,
              "proposal_id": "0" * 64, "domain": "root", "section": "purpose",
              "name": "time-bank", "module": "0" * 64, "task": "0" * 64}  # fmt: skip
    other = bearer(login(api, members["alice"], coop="bike-coop"))
    operations = [
        (method.upper(), path.format(**values))
        for path, item in doc["paths"].items()
        if path.startswith("/v1/coops/{coop}")
        for method in item
    ]
    assert len(operations) >= 14
    for method, path in operations:
        assert_problem(httpx.request(method, f"{api}{path}"), 401, "unauthorized")
        refused = httpx.request(method, f"{api}{path}", headers=other)
        assert_problem(refused, 403, "token-coop-mismatch")


def test_an_event_is_appended_once_and_answered_with_its_position(api: str, members) -> None:
    alice = members["alice"]
    token = login(api, alice)
    event = next_event(api, token, alice)
    r = httpx.post(
        f"{api}/v1/coops/{COOP}/events",
        content=event.wire_bytes(),
        headers={**bearer(token), "content-type": "application/json"},
    )
    assert r.status_code == 201, r.text
    placed = r.json()
    assert placed["id"] == event.id
    size = httpx.get(f"{api}/v1/ready").json()["coops"][COOP]["size"]
    again = httpx.post(
        f"{api}/v1/coops/{COOP}/events",
        content=event.wire_bytes(),
        headers={**bearer(token), "content-type": "application/json"},
    )
    # A replay is refused (nothing is stored twice) and changes nothing.
    assert_problem(again, 409, "duplicate")
    assert httpx.get(f"{api}/v1/ready").json()["coops"][COOP]["size"] == size
    got = httpx.get(f"{api}/v1/coops/{COOP}/events/{event.id}", headers=bearer(token)).json()
    assert got["position"] == placed["position"] and got["event"]["id"] == event.id
    head = httpx.get(
        f"{api}/v1/coops/{COOP}/chains/{event.author}/head", headers=bearer(token)
    ).json()
    assert head == {"next_seq": event.seq + 1, "prev": event.id}


def test_only_the_author_may_post_its_event(api: str, members) -> None:
    bob_token = login(api, members["bob"])
    alice_token = login(api, members["alice"])
    event = next_event(api, alice_token, members["alice"])
    r = httpx.post(
        f"{api}/v1/coops/{COOP}/events", content=event.wire_bytes(), headers=bearer(bob_token)
    )
    assert assert_problem(r, 403, "not-author")["line"] == 1


def test_a_batch_with_one_bad_event_stores_nothing_and_names_the_line(api: str, members) -> None:
    alice = members["alice"]
    token = login(api, alice)
    first = next_event(api, token, alice)
    second = sign_event(
        alice,
        coop=COOP,
        seq=first.seq + 1,
        prev=first.id,
        ts=first.ts,
        type="ledger.EntryRecorded",
        body=first.body,
    )
    forged = json.loads(second.wire_bytes())
    forged["sig"] = "00" * 64
    before = httpx.get(f"{api}/v1/ready").json()["coops"][COOP]["size"]
    batch = b"[" + first.wire_bytes() + b"," + json.dumps(forged).encode() + b"]"
    r = httpx.post(f"{api}/v1/coops/{COOP}/events", content=batch, headers=bearer(token))
    doc = assert_problem(r, 422, "bad-signature")
    assert doc["line"] == 2 and "line 2" in doc["detail"]
    assert httpx.get(f"{api}/v1/ready").json()["coops"][COOP]["size"] == before
    good = b"[" + first.wire_bytes() + b"," + second.wire_bytes() + b"]"
    r = httpx.post(f"{api}/v1/coops/{COOP}/events", content=good, headers=bearer(token))
    assert r.status_code == 201
    assert [e["id"] for e in r.json()["events"]] == [first.id, second.id]


def test_a_gap_is_a_conflict(api: str, members) -> None:
    alice = members["alice"]
    token = login(api, alice)
    event = next_event(api, token, alice)
    ahead = sign_event(
        alice,
        coop=COOP,
        seq=event.seq + 5,
        prev=event.id,
        ts=event.ts,
        type="ledger.EntryRecorded",
        body=event.body,
    )
    r = httpx.post(
        f"{api}/v1/coops/{COOP}/events", content=ahead.wire_bytes(), headers=bearer(token)
    )
    assert_problem(r, 409, "gap")


def test_pages_proofs_and_the_checkpoint_check_out(api: str, members) -> None:
    token = login(api, members["carol"])
    h = bearer(token)
    first = httpx.get(f"{api}/v1/coops/{COOP}/events", params={"limit": 10}, headers=h).json()
    assert [e["position"] for e in first["events"]] == list(range(10)) and first["next"] == 9
    rest = httpx.get(
        f"{api}/v1/coops/{COOP}/events", params={"after": 9, "limit": 1000}, headers=h
    ).json()
    assert rest["events"][0]["position"] == 10 and rest["next"] is None
    ledger = httpx.get(
        f"{api}/v1/coops/{COOP}/events", params={"type": "coop.", "limit": 1000}, headers=h
    ).json()
    assert {e["event"]["type"] for e in ledger["events"]} == {"coop.Founded"}
    leaf = first["events"][3]["event"]["id"]
    p = httpx.get(
        f"{api}/v1/coops/{COOP}/proofs/inclusion", params={"id": leaf, "size": 20}, headers=h
    ).json()
    merkle.verify_inclusion(
        merkle.leaf_hash(bytes.fromhex(leaf)),
        3,
        20,
        [bytes.fromhex(x) for x in p["proof"]],
        bytes.fromhex(p["root"]),
    )
    c = httpx.get(
        f"{api}/v1/coops/{COOP}/proofs/consistency", params={"from": 5, "to": 20}, headers=h
    ).json()
    merkle.verify_consistency(
        5,
        20,
        [bytes.fromhex(x) for x in c["proof"]],
        bytes.fromhex(c["root1"]),
        bytes.fromhex(c["root2"]),
    )
    assert c["root2"] == p["root"]
    r = httpx.get(
        f"{api}/v1/coops/{COOP}/proofs/consistency", params={"from": 9, "to": 10**9}, headers=h
    )
    assert_problem(r, 400, "invalid-request")


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "code"),
    [
        ("get", "/v1/nowhere", {}, 404, "not-found"),
        ("post", "/v1/auth/challenge", {"json": {"did": "did:icn:zBAD"}}, 400, "invalid-did"),
        (
            "post",
            "/v1/auth/challenge",
            {"json": {"did": "x" * 20, "extra": 1}},
            400,
            "invalid-request",
        ),
        ("post", "/v1/auth/challenge", {"content": b"x" * 300_000}, 413, "too-large"),
        ("delete", "/v1/health", {}, 405, "method-not-allowed"),
    ],
)
def test_bad_requests_get_problem_documents(api, method, path, kwargs, status, code) -> None:
    assert_problem(httpx.request(method.upper(), f"{api}{path}", **kwargs), status, code)


def test_bad_query_parameters_are_refused(api: str, members) -> None:
    h = bearer(login(api, members["dave"]))
    for params in ({"limit": 0}, {"limit": 5000}, {"after": "x"}):
        r = httpx.get(f"{api}/v1/coops/{COOP}/events", params=params, headers=h)
        assert_problem(r, 400, "invalid-request")


def test_responses_carry_security_headers_and_no_cors_by_default(api: str) -> None:
    r = httpx.get(f"{api}/v1/health", headers={"Origin": "https://evil.example"})
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" in r.headers and "referrer-policy" in r.headers
    assert "access-control-allow-origin" not in r.headers


def test_the_openapi_document_lists_every_route(api: str) -> None:
    doc = httpx.get(f"{api}/schema/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    paths = set(doc["paths"])
    for p in (
        "/v1/health",
        "/v1/ready",
        "/v1/auth/challenge",
        "/v1/auth/verify",
        "/v1/coops/{coop}/events",
        "/v1/coops/{coop}/events/{event_id}",
        "/v1/coops/{coop}/chains/{did}/head",
        "/v1/coops/{coop}/checkpoint",
        "/v1/coops/{coop}/proofs/inclusion",
        "/v1/coops/{coop}/proofs/consistency",
    ):
        assert p in paths, p
