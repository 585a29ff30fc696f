"""Reading the ledger over real HTTP from a real ``icn node run``: balances, history,
limits, members, disputes and the coop, for a member logged in with their DID."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from support.coops import CoopScript, write_jsonl
from support.ledger_story import balances_of, bike_coop, history_of, ledger_story
from support.nodes import bearer, login, start_node

from icn.domain.events.envelope import sign_event

COOP = "food-coop"
V1 = f"/v1/coops/{COOP}"


class Api:
    """A node serving the story, and a member's session on it."""

    def __init__(self, base: str, script: CoopScript, events: list[Any]) -> None:
        self.base, self.s, self.events = base, script, events
        self.client = httpx.Client(base_url=base, timeout=30)
        self.token = login(base, script.key("bob"), COOP)

    def get(self, path: str, token: str | None = None, **params: Any) -> httpx.Response:
        headers = bearer(token or self.token)
        return self.client.get(f"{V1}{path}", params=params, headers=headers)

    def ok(self, path: str, **params: Any) -> Any:
        r = self.get(path, **params)
        assert r.status_code == 200, r.text
        return r.json()


@pytest.fixture(scope="module")
def api(tmp_path_factory, icn_path_module: str, icn_env_module: dict):
    s, events = ledger_story(COOP, payments=30)
    _, bike = bike_coop()
    folder = tmp_path_factory.mktemp("ledger-reads")
    files = [write_jsonl(folder / "food.jsonl", events), write_jsonl(folder / "bike.jsonl", bike)]
    env = dict(icn_env_module, ICN_CHECKPOINT_SECONDS="86400")  # leaves = the story's indexes
    node = start_node(icn_path_module, env, folder / "node", *files)
    yield Api(node.base, s, events)
    node.stop()


def problem(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == code


def test_balances_cover_every_currency_in_units_and_for_display(api: Api) -> None:
    expected = balances_of(api.events)
    for name in ("alice", "bob", "carol", "dan"):
        did = api.s.did(name)
        doc = api.ok(f"/accounts/{did}/balances")
        assert doc["balances"] == {c: expected.get((did, c), 0) for c in ("hours", "food")}
        hours = doc["balances"]["hours"]
        sign = "-" if hours < 0 else ""
        assert doc["display"]["hours"] == f"{sign}{abs(hours) // 100}.{abs(hours) % 100:02d}"
        assert doc["display"]["food"] == str(doc["balances"]["food"])
        detail = doc["accounts"]["hours"]
        assert detail["credit_used"] == max(0, -hours)
        assert detail["available"] == detail["credit_limit"] - detail["credit_used"]
    dan = api.ok(f"/accounts/{api.s.did('dan')}/balances")
    assert dan["balances"] == {"hours": -250, "food": 0} and dan["display"]["hours"] == "-2.50"
    treasury = api.ok(f"/accounts/{api.s.coop_did}/balances")
    assert treasury["balances"]["hours"] == 500
    assert treasury["accounts"]["hours"]["credit_limit"] is None


def test_a_payment_shows_at_once_in_both_parties_balances_and_histories(api: Api) -> None:
    bob, alice = api.s.did("bob"), api.s.did("alice")
    before = {d: api.ok(f"/accounts/{d}/balances")["balances"]["hours"] for d in (bob, alice)}
    head = api.client.get(f"{V1}/chains/{bob}/head", headers=bearer(api.token)).json()
    event = sign_event(
        api.s.key("bob"), coop=COOP, seq=head["next_seq"], prev=head["prev"],
        ts=int(time.time() * 1000), type="ledger.EntryRecorded",
        body={"transactions": [{"from": bob, "to": alice, "amount": 125, "currency": "hours",
                                "memo": "read your writes"}]},
    )  # fmt: skip
    posted = api.client.post(f"{V1}/events", content=event.wire_bytes(), headers=bearer(api.token))
    assert posted.status_code == 201, posted.text
    after = {d: api.ok(f"/accounts/{d}/balances")["balances"]["hours"] for d in (bob, alice)}
    assert (after[bob] - before[bob], after[alice] - before[alice]) == (-125, 125)
    for did, amount in ((bob, -125), (alice, 125)):
        last = api.ok(f"/accounts/{did}/history", order="desc", limit=1)["items"][0]
        assert (last["event_id"], last["amount"], last["memo"]) == (
            event.id,
            amount,
            "read your writes",
        )
        assert last["position"] == posted.json()["position"] and last["display"].endswith("1.25")
    api.events.append(event)


def test_history_pages_and_filters(api: Api) -> None:
    alice = api.s.did("alice")
    full = history_of(api.events, alice)
    seen: list[dict[str, Any]] = []
    after = None
    while True:
        page = api.ok(f"/accounts/{alice}/history", limit=4, **({"after": after} if after else {}))
        seen += page["items"]
        if page["next"] is None:
            break
        after = page["next"]
    keys = ("cursor", "amount", "counterparty", "currency", "memo", "ts", "event_id")
    assert [{k: i[k] for k in keys} for i in seen] == full
    carol = api.s.did("carol")
    with_carol = api.ok(f"/accounts/{alice}/history", counterparty=carol, limit=1000)["items"]
    assert [i["cursor"] for i in with_carol] == [
        r["cursor"] for r in full if r["counterparty"] == carol
    ]
    food = api.ok(f"/accounts/{alice}/history", currency="food")["items"]
    assert [(i["amount"], i["display"]) for i in food] == [(-7, "-7")]
    ts = sorted(r["ts"] for r in full)
    window = api.ok(f"/accounts/{alice}/history", since=ts[3], until=ts[8])["items"]
    assert [i["ts"] for i in window] == ts[3:8]
    newest = api.ok(f"/accounts/{alice}/history", order="desc", limit=3)["items"]
    assert [i["cursor"] for i in newest] == [r["cursor"] for r in full][::-1][:3]


def test_the_limit_shows_every_term_of_the_formula(api: Api) -> None:
    bob = api.s.did("bob")
    doc = api.ok(f"/accounts/{bob}/limit", currency="hours")
    assert doc["baseline"] == 10_000 and doc["trust_ppm"] == 0 and doc["trust_bonus"] == 0
    assert doc["history_bonus"] == doc["cleared_volume"] * 100_000 // 1_000_000
    assert doc["formula_limit"] == doc["baseline"] + doc["trust_bonus"] + doc["history_bonus"]
    assert doc["full_limit"] == min(doc["formula_limit"], doc["max_limit"])
    # The log was imported when the node started: trusted time (the node's clock then, not
    # the dates its authors wrote) says bob joined today, so his ramp has just begun.
    assert doc["ramp_days"] == 30 and doc["days_since_joining"] == 0
    assert doc["limit"] < doc["full_limit"]
    assert doc["used"] == max(0, -doc["balance"]) and doc["available"] == doc["limit"] - doc["used"]
    limit = doc["limit"]
    assert doc["can_pay"] is True and doc["display"]["limit"] == f"{limit // 100}.{limit % 100:02d}"
    assert api.ok(f"/accounts/{api.s.did('carol')}/limit", currency="hours")["can_pay"] is False
    problem(api.get(f"/accounts/{bob}/limit"), 400, "invalid-request")  # two currencies
    problem(api.get(f"/accounts/{bob}/limit", currency="gold"), 404, "not-found")
    problem(api.get(f"/accounts/{api.s.coop_did}/limit", currency="hours"), 404, "not-found")


def test_members_page_by_did_and_one_member(api: Api) -> None:
    dids = sorted(api.s.did(n) for n in ("alice", "bob", "carol", "dan"))
    first = api.ok("/members", limit=3)
    second = api.ok("/members", limit=3, after=first["next"])
    assert [m["did"] for m in first["members"] + second["members"]] == dids
    assert second["next"] is None
    carol = api.ok(f"/members/{api.s.did('carol')}")
    assert carol["status"] == "active" and carol["frozen"] is True and carol["frozen_until"] is None
    alice = api.ok(f"/members/{api.s.did('alice')}")
    # Joined when the node accepted the founding (its import), not when the founder dated it.
    assert alice["roles"] == ["admin"] and alice["joined_ms"] > api.events[0].ts
    assert alice["joined_ms"] <= time.time_ns() // 1_000_000
    problem(api.get(f"/members/{CoopScript().did('stranger')}"), 404, "not-found")
    problem(api.get("/members/did:icn:zNotAKey"), 400, "invalid-did")


def test_disputes_by_status(api: Api) -> None:
    filed = api.ok("/disputes", status="filed")["disputes"]
    assert len(filed) == 1
    d = filed[0]
    assert (d["filed_by"], d["counterparty"], d["amount"]) == (
        api.s.did("bob"), api.s.did("carol"), 101
    )  # fmt: skip
    assert api.ok("/disputes")["disputes"] == filed
    assert api.ok("/disputes", status="settled") == {"disputes": [], "next": None}
    problem(api.get("/disputes", status="lost"), 400, "invalid-request")


def test_the_coop_with_its_totals(api: Api) -> None:
    doc = api.ok("")
    assert (doc["coop"], doc["name"], doc["did"]) == (COOP, "Food coop", api.s.coop_did)
    assert [c["code"] for c in doc["currencies"]] == ["hours", "food"]
    assert doc["policy"]["credit"]["hours"]["history_rate_ppm"] == 100_000
    hours = doc["totals"]["hours"]
    assert hours["balance_sum"] == 0 == doc["totals"]["food"]["balance_sum"]
    entries = [e for e in api.events if e.type == "ledger.EntryRecorded"]
    moved = [tx for e in entries for tx in e.body["transactions"] if tx["currency"] == "hours"]
    assert hours["volume"] == sum(tx["amount"] for tx in moved)
    assert hours["transactions"] == len(moved) and doc["totals"]["food"]["entries"] == 1
    assert doc["as_of"] == len(api.events) - 1


def test_reads_need_a_token_of_this_coop(api: Api) -> None:
    path = f"/accounts/{api.s.did('bob')}/balances"
    problem(api.client.get(f"{V1}{path}"), 401, "unauthorized")
    bike_token = login(api.base, api.s.key("bob"), "bike-coop")
    problem(api.get(path, token=bike_token), 403, "token-coop-mismatch")
    problem(api.client.get("/v1/coops/bike-coop/members"), 401, "unauthorized")


@pytest.mark.parametrize(
    ("path", "params", "code"),
    [
        ("/accounts/did:icn:zBad/balances", {}, "invalid-did"),
        ("/accounts/BOB/history", {}, "invalid-did"),
        ("/accounts/{bob}/history", {"counterparty": "did:icn:z123"}, "invalid-did"),
        ("/accounts/{bob}/history", {"limit": 0}, "invalid-request"),
        ("/accounts/{bob}/history", {"limit": 1001}, "invalid-request"),
        ("/accounts/{bob}/history", {"after": -1}, "invalid-request"),
        ("/accounts/{bob}/history", {"since": 10, "until": 5}, "invalid-request"),
        ("/accounts/{bob}/history", {"since": -1}, "invalid-request"),
        ("/accounts/{bob}/history", {"currency": "Hours!"}, "invalid-request"),
        ("/accounts/{bob}/history", {"order": "sideways"}, "invalid-request"),
        ("/accounts/{bob}/history", {"until": 2**60}, "invalid-request"),
        ("/members", {"after": "bob"}, "invalid-did"),
        ("/members", {"limit": "many"}, "invalid-request"),
        ("/disputes", {"after": "xyz"}, "invalid-request"),
    ],
)
def test_bad_query_parameters_are_refused_with_a_stable_code(
    api: Api, path: str, params: dict[str, Any], code: str
) -> None:
    problem(api.get(path.format(bob=api.s.did("bob")), **params), 400, code)


def test_an_account_nobody_holds_is_not_found(api: Api) -> None:
    stranger = CoopScript().did("stranger")
    problem(api.get(f"/accounts/{stranger}/balances"), 404, "not-found")
    problem(api.get(f"/accounts/{stranger}/history"), 404, "not-found")
