"""Limits by trust class: which bucket a caller spends, which class they are, and the body cap."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from icn.domain.trust.classes import TrustClass
from icn.interfaces.http.auth import Tokens
from icn.interfaces.http.caller_classes import CoopClasses
from icn.interfaces.http.rate_limit import (
    DEFAULT_CLASS_LIMITS,
    ClassLimit,
    RateLimitMiddleware,
    RateLimits,
)

SECRET = b"s" * 32
NODE = "did:icn:z6MkpTHR8VNsBxYAAWHut2Geadd9jSwuBV8xRoAnwWsdvktH"
DID = "did:icn:z6MkgYFxCU1bdaxLY5KFt6mosc1FfMVV25emK9dNrku3HeTt"
OTHER = "did:icn:z6MkmSP4KiWCrMeHJrBJvk8udj6FFzevCNkhRs8xPnKeLDLD"
COOP_DID = "did:icn:z6MkvpDBSZKjjTC16fdigmvyZpzjDXFMT1QLNcBRW974giQD"


class Reader:
    """The next ASGI app: reads the whole body, then answers 200 with its length."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.calls += 1
        size = 0
        while True:
            message = await receive()
            size += len(message.get("body", b""))
            if not message.get("more_body", False):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(size).encode()})


def call(
    mw: RateLimitMiddleware,
    *,
    token: str | None = None,
    chunks: tuple[bytes, ...] = (),
    declare: bool = True,
) -> tuple[int, dict[str, Any]]:
    """One POST with ``chunks`` as its body (declared in ``Content-Length`` or not)."""
    headers = [(b"authorization", f"Bearer {token}".encode())] if token else []
    if declare and chunks:
        headers.append((b"content-length", str(sum(map(len, chunks))).encode()))
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/coops/c/events",
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
    doc = json.loads(body) if sent[0]["status"] >= 400 else {}
    return sent[0]["status"], doc


def limits(**classes: ClassLimit) -> RateLimits:
    chosen = {**DEFAULT_CLASS_LIMITS, **{TrustClass(k): v for k, v in classes.items()}}
    return RateLimits.build(
        ip_per_s=0.01, ip_burst=1, did_per_s=100, did_burst=100, auth_per_s=1, auth_burst=1,
        classes=chosen,
    )  # fmt: skip


def token_of(did: str) -> str:
    return Tokens(SECRET, NODE).issue(did, "c", int(time.time())).token


def test_a_caller_spends_their_class_bucket_and_not_their_address() -> None:
    mw = RateLimitMiddleware(
        Reader(), limits(known=ClassLimit(0.01, 3, 4096)), Tokens(SECRET, NODE)
    )
    alice = token_of(DID)
    assert [call(mw, token=alice)[0] for _ in range(3)] == [200, 200, 200]
    status, doc = call(mw, token=alice)
    assert status == 429 and doc["code"] == "rate-limited" and "known" in doc["detail"]
    assert call(mw, token=token_of(OTHER))[0] == 200  # another DID, same address
    assert call(mw)[0] == 200  # no token: the address's one token was never spent
    assert call(mw)[0] == 429
    assert call(mw, token="not.a.token")[0] == 429  # does not verify: charged to the address


def test_a_body_over_the_class_cap_is_refused_whether_declared_or_streamed() -> None:
    app = Reader()
    mw = RateLimitMiddleware(app, limits(known=ClassLimit(100, 100, 1024)), Tokens(SECRET, NODE))
    alice = token_of(DID)
    status, doc = call(mw, token=alice, chunks=(b"x" * 1025,))
    assert (status, doc["code"], app.calls) == (413, "too-large", 0)  # refused unread
    status, doc = call(mw, token=alice, chunks=(b"x" * 600, b"x" * 600), declare=False)
    assert (status, doc["code"]) == (413, "too-large") and "known" in doc["detail"]
    assert call(mw, token=alice, chunks=(b"x" * 500, b"x" * 524), declare=False)[0] == 200
    assert call(mw, token=alice, chunks=(b"x" * 1024,))[0] == 200
    assert call(mw, chunks=(b"x" * 5000,))[0] == 200  # no caller: the node's own limit applies


def test_the_class_a_caller_is_limited_as() -> None:
    rules = limits()
    before = CoopClasses(COOP_DID, None, {})
    after = CoopClasses(COOP_DID, 3, {DID: TrustClass.PARTNER})
    assert rules.class_of(None, DID) == TrustClass.KNOWN  # coop unknown here
    assert rules.class_of(before, DID) == TrustClass.KNOWN  # before the first epoch
    assert rules.class_of(before, COOP_DID) == TrustClass.FEDERATED
    assert rules.class_of(after, DID) == TrustClass.PARTNER
    assert rules.class_of(after, OTHER) == TrustClass.ISOLATED  # admitted since the epoch
    assert rules.class_of(after, COOP_DID) == TrustClass.FEDERATED
