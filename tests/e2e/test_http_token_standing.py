"""A token stops working the moment its holder stops being an active member (real HTTP).

``standing-coop``: alice (admin), dave and erin. Each logs in while active;
alice then suspends, reinstates, and dave exits, all over HTTP, and the token
each already holds answers 403 with a stable code on its next use, for reads,
writes and streams alike, without waiting for the token to expire.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from support.coops import CoopScript, write_jsonl
from support.nodes import RunningNode, bearer, login, start_node

from icn.domain.coop import bodies as cb
from icn.domain.events.envelope import Event

COOP = "standing-coop"


@pytest.fixture(scope="module")
def coop(
    tmp_path_factory, icn_path_module: str, icn_env_module: dict
) -> Iterator[tuple[RunningNode, CoopScript]]:
    script = CoopScript(COOP)
    log = write_jsonl(
        tmp_path_factory.mktemp("standing") / "standing.jsonl",
        [script.found({"alice": ["admin"], "dave": [], "erin": []}, name="Standing coop")],
    )
    node = start_node(icn_path_module, icn_env_module, log.parent / "node", log)
    yield node, script
    node.stop()


def post(node: RunningNode, token: str, event: Event) -> httpx.Response:
    return httpx.post(f"{node.base}/v1/coops/{COOP}/events", content=event.wire_bytes(),
                      headers=bearer(token))  # fmt: skip


def uses(node: RunningNode, token: str, did: str) -> list[httpx.Response]:
    """A read of the ledger, a read of the log, and the opening of a live stream."""
    h = bearer(token)
    reads = [
        httpx.get(f"{node.base}/v1/coops/{COOP}/members/{did}", headers=h),
        httpx.get(f"{node.base}/v1/coops/{COOP}/events", headers=h),
    ]
    with httpx.stream("GET", f"{node.base}/v1/coops/{COOP}/stream", headers=h) as stream:
        if stream.status_code != 200:
            stream.read()
        reads.append(stream)
    return reads


def ok(r: httpx.Response) -> bool:
    return bool(r.status_code in (200, 201)) or pytest.fail(r.text)


def refused(r: httpx.Response, code: str) -> None:
    assert r.status_code == 403, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == code


def test_suspension_and_exit_end_a_token_on_its_next_use(coop) -> None:
    node, script = coop
    alice = login(node.base, script.key("alice"), COOP)
    dave = login(node.base, script.key("dave"), COOP)
    dave_did = script.did("dave")
    assert all(r.status_code == 200 for r in uses(node, dave, dave_did))
    assert post(node, dave, script.pay("dave", "erin", 1)).status_code == 201

    suspend = cb.MemberSuspended(member=dave_did, reason="test")
    assert ok(post(node, alice, script.event("alice", cb.MEMBER_SUSPENDED, suspend)))
    for r in uses(node, dave, dave_did):
        refused(r, "member-suspended")
    refused(post(node, dave, script.pay("dave", "erin", 1, advance=False)), "member-suspended")
    assert all(r.status_code == 200 for r in uses(node, alice, dave_did))  # others are untouched

    reinstate = cb.MemberReinstated(member=dave_did)
    assert (
        post(node, alice, script.event("alice", cb.MEMBER_REINSTATED, reinstate)).status_code == 201
    )
    assert all(r.status_code == 200 for r in uses(node, dave, dave_did))  # the same token again
    assert post(node, dave, script.pay("erin", "dave", 1, advance=False)).status_code == 403

    erin = login(node.base, script.key("erin"), COOP)
    assert post(node, erin, script.pay("erin", "dave", 1)).status_code == 201  # dave's balance: 0
    assert (
        post(node, dave, script.event("dave", cb.MEMBER_EXITED, cb.MemberExited())).status_code
        == 201
    )
    for r in uses(node, dave, dave_did):
        refused(r, "not-a-member")
    refused(post(node, dave, script.pay("dave", "erin", 1, advance=False)), "not-a-member")
