"""An author's clock moves no rule, over real HTTP (issue: "time is whatever the author says").

One node serves ``time-coop``: alice (admin), bob and carol, 100.00 hours of credit
each after a 30-day ramp from 0. Each test writes as its own member, so they do not
disturb each other. The probes are the attacks the hardening review found: a new
member dating a payment past the ramp, a frozen member dating past the freeze, and a
``ts`` far in the future that would have locked the author's chain.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from support.coops import CoopScript, write_jsonl
from support.nodes import RunningNode, bearer, login, start_node

from icn.domain.coop import bodies as cb
from icn.domain.coop.records import DAY_MS, CreditPolicy, Policy
from icn.domain.events.canonical import MAX_SAFE_INT
from icn.domain.events.envelope import Event

COOP = "time-coop"
SKEW_S = 300
POLICY = Policy(
    credit={"hours": CreditPolicy(baseline=10_000, max_limit=10_000, initial_limit=0, ramp_days=30)}
)


@pytest.fixture(scope="module")
def coop(
    tmp_path_factory, icn_path_module: str, icn_env_module: dict
) -> Iterator[tuple[RunningNode, CoopScript]]:
    script = CoopScript(COOP)
    root = tmp_path_factory.mktemp("trusted-time")
    log = write_jsonl(
        root / "time.jsonl",
        [script.found({"alice": ["admin"], "bob": [], "carol": []}, policy=POLICY)],
    )
    env = {**icn_env_module, "ICN_CHECKPOINT_SECONDS": "86400", "ICN_MAX_CLOCK_SKEW_S": "300"}
    node = start_node(icn_path_module, env, root / "node", log)
    yield node, script
    node.stop()


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def post(node: RunningNode, who: str, event: Event) -> httpx.Response:
    token = login(node.base, CoopScript(COOP).key(who), COOP)
    return httpx.post(
        f"{node.base}/v1/coops/{COOP}/events", content=event.wire_bytes(), headers=bearer(token)
    )


def size(node: RunningNode) -> int:
    return int(httpx.get(f"{node.base}/v1/ready").json()["coops"][COOP]["size"])


def refused(r: httpx.Response, status: int, code: str) -> str:
    assert r.status_code == status, r.text
    doc = r.json()
    assert doc["code"] == code, doc
    return str(doc["detail"])


def test_a_new_member_cannot_date_a_payment_past_the_credit_ramp(coop) -> None:
    node, s = coop
    admitted = s.event("alice", cb.MEMBER_ADMITTED, cb.MemberAdmitted(member=s.did("newbie")),
                       ts=now_ms())  # fmt: skip
    assert post(node, "alice", admitted).status_code == 201
    before = size(node)

    # 31 days ahead: past the 30-day ramp by the author's clock. Never stored.
    ahead = s.pay("newbie", "bob", 10_000, ts=now_ms() + 31 * DAY_MS, advance=False)
    detail = refused(post(node, "newbie", ahead), 422, "clock-skew")
    assert "days ahead" in detail
    # Within the skew the rules still judge at the node's time: the ramp has barely begun.
    within = s.pay("newbie", "bob", 10_000, ts=now_ms() + (SKEW_S - 30) * 1000, advance=False)
    refused(post(node, "newbie", within), 409, "credit-limit-exceeded")
    assert size(node) == before


def test_a_frozen_member_cannot_date_a_payment_past_the_freeze(coop) -> None:
    node, s = coop
    until = now_ms() + 3_600_000
    body = {"member": s.did("bob"), "reason": "audit", "until": until}
    frozen = s.event("alice", "ledger.AccountFrozen", body, ts=now_ms())
    assert post(node, "alice", frozen).status_code == 201
    before = size(node)

    past_the_freeze = s.pay("bob", "alice", 1, ts=until + 60_000, advance=False)
    refused(post(node, "bob", past_the_freeze), 422, "clock-skew")
    within = s.pay("bob", "alice", 1, ts=now_ms() + (SKEW_S - 30) * 1000, advance=False)
    refused(post(node, "bob", within), 403, "account-frozen")
    assert size(node) == before


def test_a_far_future_ts_is_never_stored_and_leaves_the_chain_usable(coop) -> None:
    node, s = coop
    before = size(node)
    doomsday = s.event("carol", "coop.Statement", {"text": "hello"}, ts=MAX_SAFE_INT,
                       advance=False)  # fmt: skip
    refused(post(node, "carol", doomsday), 422, "clock-skew")
    assert size(node) == before
    # The same seq, dated now, is taken: the chain did not move to the far future.
    today = s.event("carol", "coop.Statement", {"text": "hello"}, ts=now_ms())
    assert today.seq == doomsday.seq
    assert post(node, "carol", today).status_code == 201, "chain locked by a refused ts"
    assert size(node) == before + 1
