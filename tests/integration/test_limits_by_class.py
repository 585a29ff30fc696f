"""Rate limits by trust class on the real stores: a coop's classes before and after its
epochs (kept in memory until a commit or the TTL says otherwise), which bucket each caller
spends, and the body cap of their class."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import msgspec
import pytest
from support.coops import DEFAULT_POLICY, CoopScript, story_clock

from icn.application.append import AppendEvents
from icn.application.trust_epochs import TrustEpochs
from icn.domain.coop.records import TrustPolicy
from icn.domain.events.envelope import Event, inspect
from icn.domain.trust.classes import TrustClass
from icn.infrastructure.store.event_store import SqlEventStore
from icn.infrastructure.store.trust_reads import SqlTrustReads
from icn.interfaces.http.auth import Tokens
from icn.interfaces.http.caller_classes import CallerClasses, CoopClasses
from icn.interfaces.http.rate_limit import (
    DEFAULT_CLASS_LIMITS,
    ONE_EVENT_BODY_BYTES,
    ClassLimit,
    RateLimitMiddleware,
    RateLimits,
)

SECRET = b"s" * 32
NODE = "did:icn:z6MkpTHR8VNsBxYAAWHut2Geadd9jSwuBV8xRoAnwWsdvktH"
CAP = 1024


class Coop:
    """demo: alice and bob pre-trusted and vouching for each other, carol vouched for by
    no one; its epochs published by the coop's key."""

    def __init__(self, store: SqlEventStore) -> None:
        self.store = store
        self.append = AppendEvents(store, story_clock)
        self.s = CoopScript("demo")
        self.epochs = TrustEpochs(store, self.append, story_clock)
        trust = TrustPolicy(pretrusted=[self.s.did("alice"), self.s.did("bob")])
        policy = msgspec.structs.replace(DEFAULT_POLICY, trust=trust)
        self.write(self.s.found({"alice": ["admin"], "bob": [], "carol": []}, policy=policy))

    def write(self, *events: Event) -> None:
        outcomes = self.append.append_inspected([inspect(e.wire_bytes()) for e in events])
        assert [o.verdict for o in outcomes] == ["ok"] * len(events), outcomes

    def vouch_and_publish(self) -> None:
        for who, whom in (("alice", "bob"), ("bob", "alice")):
            body = {"subject": self.s.did(whom), "context": "general", "score_ppm": 900_000}
            self.write(self.s.event(who, "trust.AttestationRecorded", body))
        self.epochs.publish("demo", "general", self.s.coop_key)

    def token(self, who: str) -> str:
        did = self.s.coop_did if who == "coop" else self.s.did(who)
        return Tokens(SECRET, NODE).issue(did, "demo", int(time.time())).token


@pytest.fixture
def coop(store: SqlEventStore) -> Coop:
    """On SQLite and on PostgreSQL (the ``store`` fixture)."""
    return Coop(store)


class Reader:
    """The next ASGI app: reads the whole body, then answers 200."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.calls += 1
        while (await receive()).get("more_body", False):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def call(
    mw: RateLimitMiddleware,
    *,
    token: str | None = None,
    chunks: tuple[bytes, ...] = (),
    declare: bool = True,
    put: str | None = None,
) -> tuple[int, dict[str, Any]]:
    """One POST with ``chunks`` as its body (declared in ``Content-Length`` or not), or a PUT
    to the path ``put``."""
    headers = [(b"authorization", f"Bearer {token}".encode())] if token else []
    if declare and chunks:
        headers.append((b"content-length", str(sum(map(len, chunks))).encode()))
    scope = {
        "type": "http",
        "method": "PUT" if put else "POST",
        "path": put or "/v1/coops/demo/events",
        "headers": headers,
        "client": ("192.0.2.1", 5555),
    }
    pending = list(chunks) or [b""]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        body = pending.pop(0)
        return {"type": "http.request", "body": body, "more_body": bool(pending)}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(mw(scope, receive, send))
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return sent[0]["status"], json.loads(body) if sent[0]["status"] >= 400 else {}


def limits() -> RateLimits:
    """One request per address, two per caller without a class, ten for Isolated."""
    isolated = ClassLimit(0.01, 10, CAP)
    return RateLimits.build(
        ip_per_s=0.01, ip_burst=1, did_per_s=0.01, did_burst=2, auth_per_s=1, auth_burst=1,
        classes={**DEFAULT_CLASS_LIMITS, TrustClass.ISOLATED: isolated},
    )  # fmt: skip


def test_the_class_a_caller_is_limited_as() -> None:
    before = CoopClasses("did:icn:coop", None, {})
    after = CoopClasses("did:icn:coop", 3, {"did:icn:a": TrustClass.PARTNER})
    assert RateLimits.class_of(None, "did:icn:a") is None  # a coop not founded here
    assert RateLimits.class_of(before, "did:icn:a") is None  # before the first epoch
    assert RateLimits.class_of(after, "did:icn:a") == TrustClass.PARTNER
    assert RateLimits.class_of(after, "did:icn:b") == TrustClass.ISOLATED  # admitted since
    assert RateLimits.class_of(after, "did:icn:coop") is None  # the coop is not a member


def test_classes_before_and_after_epochs_from_memory_until_a_commit(coop: Coop) -> None:
    ticks = [0.0]
    classes = CallerClasses(SqlTrustReads(coop.store.engine), ttl_s=5.0, clock=lambda: ticks[0])
    assert asyncio.run(classes.of("nowhere")) is None
    seen = asyncio.run(classes.of("demo"))
    assert seen is not None and seen.epoch is None and seen.coop_did == coop.s.coop_did

    coop.vouch_and_publish()  # nobody told the classes: kept
    assert classes.held("demo") == (True, seen)
    ticks[0] = 5.0  # another process's epoch shows after the TTL at most
    seen = asyncio.run(classes.of("demo"))
    assert seen is not None and seen.epoch == 1
    assert seen.classes == {
        coop.s.did("alice"): TrustClass.FEDERATED,
        coop.s.did("bob"): TrustClass.FEDERATED,
        coop.s.did("carol"): TrustClass.ISOLATED,
    }
    coop.append.add_commit_listener(classes.forget)  # this node's commits: at once
    coop.epochs.publish("demo", "general", coop.s.coop_key)
    assert classes.held("demo") == (False, None)
    seen = asyncio.run(classes.of("demo"))
    assert seen is not None and seen.epoch == 2


def test_callers_spend_their_class_bucket_not_their_address_and_bodies_are_capped(
    coop: Coop,
) -> None:
    classes = CallerClasses(SqlTrustReads(coop.store.engine))
    coop.append.add_commit_listener(classes.forget)
    app = Reader()
    mw = RateLimitMiddleware(app, limits(), Tokens(SECRET, NODE), classes)
    # Before the first epoch: no class, so per DID (two each), and no cap beyond the node's.
    assert call(mw, token=coop.token("carol"), chunks=(b"x" * 5000,))[0] == 200
    assert call(mw, token=coop.token("carol"))[0] == 200
    status, doc = call(mw, token=coop.token("carol"))
    assert status == 429 and doc["code"] == "rate-limited" and "class" not in doc["detail"]

    coop.vouch_and_publish()
    carol, alice = coop.token("carol"), coop.token("alice")
    status, doc = call(mw, token=carol, chunks=(b"x" * (CAP + 1),))
    assert (status, doc["code"]) == (413, "too-large") and "isolated" in doc["detail"]
    status, doc = call(mw, token=carol, chunks=(b"x" * 600, b"x" * 600), declare=False)
    assert (status, doc["code"]) == (413, "too-large")  # streamed past the cap
    assert call(mw, token=carol, chunks=(b"x" * 500, b"x" * 524), declare=False)[0] == 200
    # One event is always postable, up to the spec's 64 KiB, alone or as a batch of one;
    # two events over the cap, or a body past one event's largest size, are not.
    one = b'{"v": "' + b"x" * (60 * CAP) + b'"}'
    for body, declare in ((one, True), (b"[" + one + b"]", False)):
        assert call(mw, token=carol, chunks=(body[:5000], body[5000:]), declare=declare)[0] == 200
    two = b"[" + one[: 2 * CAP] + b"," + one[: 2 * CAP] + b"]"
    for declare in (True, False):
        status, doc = call(mw, token=carol, chunks=(two,), declare=declare)
        assert (status, doc["code"]) == (413, "too-large")
    over = (b"[" + b" " * ONE_EVENT_BODY_BYTES, one + b"]")
    for declare in (True, False):
        status, doc = call(mw, token=carol, chunks=over, declare=declare)
        assert (status, doc["code"]) == (413, "too-large")
    module = f"/v1/coops/demo/modules/{'ab' * 32}"  # a module upload: the route caps it
    assert call(mw, token=carol, chunks=(b"x" * (4 * CAP),), put=module)[0] == 200
    status, doc = call(mw, token=carol, put=module)
    assert status == 429 and "class isolated" in doc["detail"]
    # Alice, Federated, from the same address: her own bucket, and a larger body.
    assert {call(mw, token=alice)[0] for _ in range(50)} == {200}
    assert call(mw, token=alice, chunks=(b"x" * 100_000,))[0] == 200
    # The coop's DID has no class: per DID, like a member before the first epoch.
    coop_did = coop.token("coop")
    assert [call(mw, token=coop_did)[0] for _ in range(3)] == [200, 200, 429]
    # No token, or one that does not verify: the address's one request.
    assert call(mw)[0] == 200
    assert call(mw, token="not.a.token")[0] == 429
