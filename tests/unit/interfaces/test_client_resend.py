"""A post whose answer was lost: the resend is refused as a replay, and the client knows why.

The network is the only thing replaced here (httpx's MockTransport stands
for a connection that drops one answer); the client code is the real one.
"""

from __future__ import annotations

import json

import httpx
import pytest
from support.coops import CoopScript

from icn.interfaces.client.api import IcnClient
from icn.interfaces.client.errors import ApiError


def _client(handler: httpx.MockTransport) -> IcnClient:
    client = IcnClient("http://node.invalid", token="t", retries=2, backoff_s=0.0)
    client._http = httpx.Client(base_url=client.base_url, transport=handler)
    return client


def _duplicate() -> httpx.Response:
    problem = {"type": "x", "title": "Conflict", "status": 409, "code": "duplicate", "line": 1,
               "detail": "line 1: duplicate: already accepted"}  # fmt: skip
    return httpx.Response(409, json=problem, headers={"content-type": "application/problem+json"})


def test_a_resend_after_a_lost_answer_returns_the_stored_positions() -> None:
    s = CoopScript()
    events = [s.found(), s.pay("alice", "bob", 1)]
    stored = {e.id: i for i, e in enumerate(events)}
    calls: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        if request.method == "POST" and len(calls) == 1:
            raise httpx.ReadError("connection reset after the node committed")
        if request.method == "POST":
            return _duplicate()
        event_id = request.url.path.rsplit("/", 1)[-1]
        body = {
            "position": stored[event_id],
            "event": json.loads(events[stored[event_id]].wire_bytes()),
        }
        return httpx.Response(200, json=body)

    placed = _client(httpx.MockTransport(handle)).post_events(
        "demo", [e.wire_bytes() for e in events]
    )
    assert [(p.id, p.position) for p in placed] == [(e.id, i) for i, e in enumerate(events)]
    assert calls == ["POST", "POST", "GET", "GET"]


def test_a_replay_without_a_lost_answer_is_still_an_error() -> None:
    s = CoopScript()
    client = _client(httpx.MockTransport(lambda _: _duplicate()))
    with pytest.raises(ApiError) as refused:
        client.post_events("demo", [s.found().wire_bytes()])
    assert refused.value.code == "duplicate"
