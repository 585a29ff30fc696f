"""Token buckets, their table's memory bound, and the middleware's choices, on a fake clock."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from icn.interfaces.http.auth import Tokens
from icn.interfaces.http.rate_limit import (
    BucketTable,
    RateLimitMiddleware,
    RateLimits,
    TokenBucket,
    client_key,
    retry_after,
)

DID = "did:icn:z6MkgYFxCU1bdaxLY5KFt6mosc1FfMVV25emK9dNrku3HeTt"
OTHER = "did:icn:z6MkmSP4KiWCrMeHJrBJvk8udj6FFzevCNkhRs8xPnKeLDLD"


class FakeClock:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def test_a_bucket_grants_its_burst_then_refuses() -> None:
    clock = FakeClock()
    bucket = TokenBucket(3, 0.5, clock)
    assert [bucket.take() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take() == pytest.approx(2.0)  # one token at 0.5/s: two seconds away


def test_a_bucket_refills_at_its_rate_and_never_beyond_capacity() -> None:
    clock = FakeClock()
    bucket = TokenBucket(4, 2.0, clock)
    for _ in range(4):
        bucket.take()
    clock.advance(0.25)
    assert bucket.tokens == pytest.approx(0.5)
    assert bucket.take() == pytest.approx(0.25)  # half a token short at 2/s
    clock.advance(0.25)
    assert bucket.take() == 0.0
    clock.advance(3600)
    assert bucket.tokens == 4.0 and bucket.full


def test_a_refused_take_costs_nothing() -> None:
    clock = FakeClock()
    bucket = TokenBucket(1, 1.0, clock)
    bucket.take()
    for _ in range(100):
        assert bucket.take() > 0
    clock.advance(1.0)
    assert bucket.take() == 0.0


def test_a_bucket_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        TokenBucket(0, 1.0)
    with pytest.raises(ValueError):
        TokenBucket(1, 0.0)


@pytest.mark.parametrize(
    ("wait", "header"), [(0.0001, 1), (0.5, 1), (1.0, 1), (1.01, 2), (2.0, 2), (9.3, 10)]
)
def test_retry_after_is_whole_seconds_rounded_up_and_at_least_one(wait: float, header: int) -> None:
    assert retry_after(wait) == header


def test_keys_have_their_own_buckets() -> None:
    table = BucketTable(2, 1.0, clock=FakeClock())
    assert table.take("a") == 0.0 and table.take("a") == 0.0
    assert table.take("a") > 0
    assert table.take("b") == 0.0


def test_the_table_never_holds_more_than_max_keys() -> None:
    clock = FakeClock()
    table = BucketTable(10, 0.001, max_keys=100, clock=clock)
    for i in range(10_000):  # an attacker spraying addresses
        table.take(f"10.0.{i // 256}.{i % 256}")
        assert len(table) <= 100
    assert "10.0.39.15" in table and "10.0.0.0" not in table  # the newest stay, the oldest go


def test_eviction_is_least_recently_used() -> None:
    table = BucketTable(10, 0.001, max_keys=3, clock=FakeClock())
    for key in ("a", "b", "c"):
        table.take(key)
    table.take("a")  # a is used again: b is now the oldest
    table.take("d")
    assert "a" in table and "b" not in table and "c" in table and "d" in table


def test_buckets_that_refilled_are_dropped_since_a_new_one_is_the_same() -> None:
    clock = FakeClock()
    table = BucketTable(2, 1.0, clock=clock)
    for i in range(50):
        table.take(f"k{i}")
    clock.advance(1.0)  # every bucket is full again
    table.take("new")
    assert len(table) == 1


def test_ipv6_clients_share_their_64_and_mapped_ipv4_is_plain_ipv4() -> None:
    def key(host: str) -> str:
        return client_key({"client": (host, 1234)})  # type: ignore[typeddict-item]

    assert key("2001:db8:1:2::1") == key("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert key("2001:db8:1:3::1") != key("2001:db8:1:2::1")
    assert key("::ffff:192.0.2.7") == "192.0.2.7" == key("192.0.2.7")


# The middleware, against a stub app -------------------------------------------------------

SECRET = b"s" * 32
NODE = "did:icn:z6MkpTHR8VNsBxYAAWHut2Geadd9jSwuBV8xRoAnwWsdvktH"


class Recorder:
    """The next ASGI app: counts what reached it."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.calls += 1
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def request(
    mw: Any, path: str, *, token: str | None = None, host: str = "192.0.2.1", kind: str = "http"
) -> tuple[int, dict[bytes, bytes], bytes]:
    headers = [(b"authorization", f"Bearer {token}".encode())] if token else []
    scope = {
        "type": kind,
        "path": path,
        "headers": headers,
        "client": (host, 5555),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"} if kind == "websocket" else {"type": "http.request"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(mw(scope, receive, send))
    start = sent[0]
    if start["type"] == "websocket.close":
        return start["code"], {}, b""
    return start["status"], dict(start["headers"]), b"".join(m.get("body", b"") for m in sent[1:])


def limits(**overrides: float) -> RateLimits:
    numbers: dict[str, Any] = dict(
        ip_per_s=1.0, ip_burst=100, did_per_s=1.0, did_burst=2, auth_per_s=0.5, auth_burst=3
    )
    numbers.update(overrides)
    return RateLimits.build(**numbers, clock=FakeClock())


def test_a_limited_request_gets_a_problem_document_and_never_reaches_the_app() -> None:
    app = Recorder()
    mw = RateLimitMiddleware(app, limits(ip_burst=2), Tokens(SECRET, NODE))
    assert request(mw, "/v1/coops/c/events")[0] == 200
    assert request(mw, "/v1/coops/c/events")[0] == 200
    status, headers, body = request(mw, "/v1/coops/c/events")
    assert status == 429 and app.calls == 2
    assert headers[b"content-type"] == b"application/problem+json"
    assert headers[b"retry-after"] == b"1"
    doc = json.loads(body)
    assert doc["code"] == "rate-limited" and doc["status"] == 429 and doc["title"]
    assert request(mw, "/v1/coops/c/events", host="192.0.2.2")[0] == 200  # another address


def test_auth_has_its_own_stricter_bucket_and_probes_are_exempt() -> None:
    mw = RateLimitMiddleware(Recorder(), limits(), Tokens(SECRET, NODE))
    assert [request(mw, "/v1/auth/challenge")[0] for _ in range(4)] == [200, 200, 200, 429]
    assert request(mw, "/v1/auth/verify")[1][b"retry-after"] == b"2"  # 0.5/s
    assert request(mw, "/v1/coops/c/events")[0] == 200  # the general bucket is not spent
    mw = RateLimitMiddleware(Recorder(), limits(ip_burst=1), Tokens(SECRET, NODE))
    for path in ("/v1/health", "/v1/ready", "/schema", "/schema/openapi.json") * 5:
        assert request(mw, path)[0] == 200


def test_each_did_has_a_bucket_and_a_bad_token_is_left_to_the_route() -> None:
    mw = RateLimitMiddleware(Recorder(), limits(), Tokens(SECRET, NODE))
    tokens = Tokens(SECRET, NODE)
    alice = tokens.issue(DID, "c", int(time.time())).token
    bob = tokens.issue(OTHER, "c", int(time.time())).token
    assert [request(mw, "/v1/x", token=alice)[0] for _ in range(3)] == [200, 200, 429]
    assert request(mw, "/v1/x", token=bob)[0] == 200
    for _ in range(5):  # not verified: no DID to charge, and the route answers 401 itself
        assert request(mw, "/v1/x", token="not.a.token")[0] == 200


def test_a_websocket_handshake_counts_and_is_refused_by_closing() -> None:
    mw = RateLimitMiddleware(Recorder(), limits(ip_burst=1), Tokens(SECRET, NODE))
    assert request(mw, "/v1/coops/c/stream", kind="websocket")[0] == 200
    assert request(mw, "/v1/coops/c/stream", kind="websocket")[0] == 1013


def test_the_dashboards_first_load_counts_in_its_addresss_bucket() -> None:
    """Deliberately not exempt (docs/security.md): a cold first load of the dashboard is its
    shell and every asset, one token each from the address's bucket; the default burst (200)
    holds several such loads at once, and assets are cached for a year afterwards."""
    from icn.interfaces.http.dashboard.serve import assets

    a = assets()
    first_load = ["/", *(f"/assets/{a.version}/{path}" for path in sorted(a.files))]
    mw = RateLimitMiddleware(Recorder(), limits(ip_burst=len(first_load)), Tokens(SECRET, NODE))
    assert {request(mw, path)[0] for path in first_load} == {200}
    assert request(mw, f"/assets/{a.version}/app.js")[0] == 429
    assert request(mw, "/")[0] == 429
    assert 200 // len(first_load) >= 6  # cold loads from one address within the default burst
