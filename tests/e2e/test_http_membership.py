"""The coop's rules over real HTTP: who gets a token, and what a member's event may do.

One node serves ``tight-coop``: alice (admin), bob and carol are active
members with a credit limit of 10.00 hours, sam was suspended by alice;
mallory was never a member. ``other-coop`` has bob alone. Each test pays from its own member, so the
balances one test reads are not moved by another.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from support.coops import CoopScript, key_for, write_jsonl
from support.nodes import RunningNode, bearer, login, start_node, try_login

from icn.domain.coop import bodies as cb
from icn.domain.coop.records import CreditPolicy, Policy
from icn.domain.events.envelope import Event

COOP = "tight-coop"
LIMIT = 1_000
"""Every member's credit limit, in hundredths of an hour."""


@pytest.fixture(scope="module")
def coop(
    tmp_path_factory, icn_path_module: str, icn_env_module: dict
) -> Iterator[tuple[RunningNode, CoopScript]]:
    """The node, and the script that wrote its log (it knows every chain's head)."""
    script = CoopScript(COOP)
    policy = Policy(credit={"hours": CreditPolicy(baseline=LIMIT, max_limit=LIMIT)})
    members = {"alice": ["admin"], "bob": [], "carol": [], "sam": []}
    events = [
        script.found(members, policy=policy, name="Tight coop"),
        script.event("alice", cb.MEMBER_SUSPENDED, cb.MemberSuspended(member=script.did("sam"),
                                                                      reason="test")),
        CoopScript("other-coop").found({"bob": ["admin"]}),
    ]  # fmt: skip
    root = tmp_path_factory.mktemp("membership")
    log = write_jsonl(root / "tight.jsonl", events)
    env = {**icn_env_module, "ICN_CHECKPOINT_SECONDS": "86400"}  # no node events mid-test
    node = start_node(icn_path_module, env, root / "node", log)
    yield node, script
    node.stop()


def assert_problem(r: httpx.Response, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    doc = r.json()
    assert doc["status"] == status and doc["code"] == code and doc["title"]
    assert "token" not in doc and "Traceback" not in r.text
    return doc


def post(base: str, token: str, *events: Event) -> httpx.Response:
    """One event, or a batch when given several."""
    wires = [e.wire_bytes() for e in events]
    body = wires[0] if len(wires) == 1 else b"[" + b",".join(wires) + b"]"
    return httpx.post(f"{base}/v1/coops/{COOP}/events", content=body, headers=bearer(token))


def head(base: str, token: str, did: str) -> dict:
    r = httpx.get(f"{base}/v1/coops/{COOP}/chains/{did}/head", headers=bearer(token))
    assert r.status_code == 200, r.text
    return dict(r.json())


def size(base: str) -> int:
    return int(httpx.get(f"{base}/v1/ready").json()["coops"][COOP]["size"])


def test_only_active_members_and_the_coop_itself_get_a_token(coop) -> None:
    node, script = coop
    # A correct signature, so only standing can refuse: 403, not 401.
    doc = assert_problem(try_login(node.base, key_for("mallory"), COOP), 403, "not-a-member")
    assert script.did("mallory") in doc["detail"]
    assert_problem(try_login(node.base, key_for("sam"), COOP), 403, "not-a-member")  # suspended
    assert_problem(try_login(node.base, key_for("alice"), "no-such-coop"), 403, "not-a-member")
    assert_problem(try_login(node.base, key_for("alice"), "other-coop"), 403, "not-a-member")
    assert try_login(node.base, key_for("bob"), "other-coop").status_code == 200

    alice, bob, own = (try_login(node.base, script.key(n), COOP) for n in ("alice", "bob", "coop"))
    assert alice.status_code == bob.status_code == own.status_code == 200
    assert "coop:admin" in alice.json()["scopes"] and "coop:admin" in own.json()["scopes"]
    assert "coop:admin" not in bob.json()["scopes"]
    assert "events:write" in bob.json()["scopes"]


def test_a_payment_over_the_credit_limit_is_refused_and_takes_no_seq(coop) -> None:
    node, script = coop
    token = login(node.base, script.key("bob"), COOP)
    bob = script.did("bob")
    before, start = head(node.base, token, bob), size(node.base)
    over = script.pay("bob", "alice", LIMIT + 1, advance=False)
    doc = assert_problem(post(node.base, token, over), 409, "credit-limit-exceeded")
    # The refusal speaks the currency's display units, not raw hundredths.
    assert doc["line"] == 1 and "would be -10.01 hours" in doc["detail"]
    assert f"below the credit limit of -{LIMIT // 100}.00" in doc["detail"]
    assert head(node.base, token, bob) == before and size(node.base) == start
    # The refused event used no seq: the next one at the same seq is the one stored.
    at_limit = script.pay("bob", "alice", LIMIT)
    assert at_limit.seq == over.seq and at_limit.prev == over.prev
    r = post(node.base, token, at_limit)
    assert r.status_code == 201, r.text
    assert r.json() == {"id": at_limit.id, "position": start}
    assert head(node.base, token, bob) == {"next_seq": at_limit.seq + 1, "prev": at_limit.id}
    # The limit is on the balance, not on one payment: one more unit is too much now.
    one_more = script.pay("bob", "carol", 1, advance=False)
    assert_problem(post(node.base, token, one_more), 409, "credit-limit-exceeded")
    assert size(node.base) == start + 1


def test_a_payment_to_someone_who_may_not_receive_is_refused(coop) -> None:
    node, script = coop
    token = login(node.base, script.key("carol"), COOP)
    carol = script.did("carol")
    before, start = head(node.base, token, carol), size(node.base)
    to_stranger = script.pay("carol", "mallory", 5, advance=False)
    doc = assert_problem(post(node.base, token, to_stranger), 403, "not-a-member")
    assert script.did("mallory") in doc["detail"] and doc["line"] == 1
    to_suspended = script.pay("carol", "sam", 5, advance=False)
    assert_problem(post(node.base, token, to_suspended), 403, "member-suspended")
    assert head(node.base, token, carol) == before and size(node.base) == start


def test_a_replayed_event_is_a_conflict_and_changes_nothing(coop) -> None:
    node, script = coop
    token = login(node.base, script.key("alice"), COOP)
    alice = script.did("alice")
    first = script.pay("alice", "carol", 5)
    r = post(node.base, token, first)
    assert r.status_code == 201, r.text
    placed, start, after_first = r.json(), size(node.base), head(node.base, token, alice)
    doc = assert_problem(post(node.base, token, first), 409, "duplicate")
    assert doc["line"] == 1
    # In a batch too, and the batch is all or nothing: its new event is not stored either.
    second = script.pay("alice", "carol", 6)
    doc = assert_problem(post(node.base, token, first, second), 409, "duplicate")
    assert doc["line"] == 1
    assert size(node.base) == start and head(node.base, token, alice) == after_first
    got = httpx.get(f"{node.base}/v1/coops/{COOP}/events/{first.id}", headers=bearer(token))
    assert got.json()["position"] == placed["position"]
    r = post(node.base, token, second)
    assert r.status_code == 201 and r.json()["position"] == start, r.text
