"""Contracts over real HTTP from a real ``icn node run``: the time bank and the budget envelope
deployed by a vote the node closes and carries out, ``record_service`` and ``spend`` invoked
with signed events and the balances moved by the coop's key; invocations that fail a
requirement, run out of fuel or overflow, and a deploy that uses a capability it was not
granted, refused with their codes; the contract read routes. (The monthly dues' schedule is
run in tests/integration/test_contract_duties.py, where the clock can move a month.)"""

from __future__ import annotations

import copy
import json
import time
from typing import Any

import httpx
from support.coops import CoopScript, keep_coop_key, write_jsonl
from support.nodes import RunningNode, bearer, login, run_icn

from icn.domain.contract import bodies as cb
from icn.domain.governance import bodies as gb
from tests.conftest import REPO_ROOT

from .conftest import PASSPHRASE

COOP = "contract-coop"
V1 = f"/v1/coops/{COOP}"
NAMES = ("alice", "bob", "carol")
QUICK = {"min_period_ms": 1000, "quorum_ppm": 500_000}
"""A domain whose votes may last a few seconds, so the node closes one during the test."""
ASK = {"do": "propose", "domain": "root", "title": "Review the time bank"}
ASKER = {"name": "asker", "version": 1, "capabilities": ["propose"], "fuel_limit": 100,
         "code": {"rules": {"ask": {"body": [ASK]}}}}  # fmt: skip
"""A contract whose one rule opens a proposal (the coop's DID signs it for the invocation)."""


def example(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(
        (REPO_ROOT / "examples" / "contracts" / f"{name}.json").read_text()
    )
    return doc


def problem(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == code, r.text


def deploy_action(doc: dict[str, Any]) -> dict[str, Any]:
    fields = ("name", "version", "code", "capabilities", "fuel_limit")
    return {"kind": "deploy-contract", **{k: doc[k] for k in fields}}


def test_contracts_deployed_invoked_and_read_over_http(
    tmp_path, icn_path_module: str, icn_env_module: dict
) -> None:
    s = CoopScript(COOP)
    events = [
        s.found({"alice": ["admin", "committee"], "bob": [], "carol": []}),
        s.event("coop", gb.DOMAIN_DEFINED, {"domain": "quick", "rules": QUICK}),
    ]
    data = tmp_path / "node"
    env = dict(icn_env_module, ICN_DUTIES_INTERVAL_S="0.3", ICN_CHECKPOINT_SECONDS="86400")
    run_icn(icn_path_module, env, "node", "init", "--data-dir", str(data))
    log = write_jsonl(tmp_path / "contracts.jsonl", events)
    run_icn(icn_path_module, env, "log", "import", str(log), "--data-dir", str(data))
    keep_coop_key(data / "keys", s, PASSPHRASE)  # the node closes, deploys, executes with it
    node = RunningNode(icn_path_module, env, data).start()
    try:
        client = httpx.Client(base_url=node.base, timeout=30)
        tokens = {n: login(node.base, s.key(n), COOP) for n in NAMES}

        def post(who: str, type: str, body: dict[str, Any]) -> httpx.Response:
            event = s.event(who, type, body, ts=int(time.time() * 1000), advance=False)
            r = client.post(f"{V1}/events", content=event.wire_bytes(), headers=bearer(tokens[who]))
            if r.status_code == 201:
                s.event(who, type, body, ts=event.ts)  # keep the chain: the node stored it
            return r

        def ok(who: str, type: str, body: dict[str, Any]) -> str:
            r = post(who, type, body)
            assert r.status_code == 201, r.text
            return str(r.json()["id"])

        def get(path: str) -> httpx.Response:
            return client.get(f"{V1}{path}", headers=bearer(tokens["bob"]))

        def until(check: Any, seconds: float = 20) -> Any:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                found = check()
                if found:
                    return found
                time.sleep(0.2)
            raise AssertionError("the node's duties did not get there in time")

        def balance(who: str) -> int:
            r = get(f"/accounts/{s.did(who)}/balances")
            assert r.status_code == 200, r.text
            return int(r.json()["balances"]["hours"])

        starving = copy.deepcopy(example("timebank"))
        starving.update(name="starving", fuel_limit=10)
        unchecked = copy.deepcopy(example("timebank"))  # no bound on hours: it can overflow
        unchecked["name"] = "unchecked"
        unchecked["code"]["rules"]["record_service"]["requires"] = []
        unchecked["code"]["consts"]["units_per_hour"]["value"] = 10**9
        budget = example("budget")
        budget["code"]["consts"]["envelope"]["value"] = s.did("bob")
        closes_at = int(time.time() * 1000) + 3000
        for doc in (example("timebank"), starving, unchecked, budget, ASKER):
            body = {"domain": "quick", "title": f"deploy {doc['name']}", "text": "",
                    "action": deploy_action(doc), "closes_at": closes_at}  # fmt: skip
            pid = ok("alice", gb.PROPOSAL_SUBMITTED, body)
            for who in NAMES:
                ok(who, gb.VOTE_CAST, {"proposal": pid, "choice": "yes"})

        greedy = copy.deepcopy(example("timebank"))
        greedy.update(name="greedy", capabilities=["read-ledger"])  # no write-ledger
        body = {"domain": "quick", "title": "deploy greedy", "text": "",
                "action": deploy_action(greedy), "closes_at": closes_at}  # fmt: skip
        problem(post("alice", gb.PROPOSAL_SUBMITTED, body), 403, "capability-denied")

        listed = until(
            lambda: len(get("/contracts").json()["contracts"]) == 5 and get("/contracts")
        )
        contracts = {c["name"]: c for c in listed.json()["contracts"]}
        assert list(contracts) == ["asker", "budget", "starving", "timebank", "unchecked"]
        timebank = contracts["timebank"]
        assert timebank["rules"] == ["record_service"] and timebank["invocations"] == 0

        args = {"sender": s.did("alice"), "recipient": s.did("bob"), "hours": 3}
        call = ok("alice", cb.INVOKED, {"contract": "timebank", "rule": "record_service",
                                         "args": args})  # fmt: skip
        until(lambda: balance("bob") == 300)
        assert balance("alice") == -300

        def invoke(contract: str, **changes: Any) -> httpx.Response:
            body = {"contract": contract, "rule": "record_service", "args": {**args, **changes}}
            return post("alice", cb.INVOKED, body)

        problem(invoke("timebank", hours=0), 409, "requirement-failed")
        problem(invoke("starving"), 409, "out-of-fuel")
        problem(invoke("nope"), 422, "unknown-contract")
        problem(invoke("unchecked", hours=2**53 - 1), 422, "contract-overflow")  # x 10^9

        # The budget envelope is bob's account; alice (committee) spends from it to carol.
        spend = {"contract": "budget", "rule": "spend", "args": {"to": s.did("carol"),
                 "amount": 120}}  # fmt: skip
        problem(post("bob", cb.INVOKED, spend), 409, "requirement-failed")  # not on it
        ok("alice", cb.INVOKED, spend)
        until(lambda: balance("carol") == 120)
        assert balance("bob") == 300 - 120
        too_much = {**spend, "args": {"to": s.did("carol"), "amount": 181}}
        problem(post("alice", cb.INVOKED, too_much), 409, "requirement-failed")

        detail = get("/contracts/timebank").json()
        assert detail["current"]["capabilities"] == ["read-ledger", "write-ledger"]
        assert detail["current"]["code"] == example("timebank")["code"]
        [recent] = detail["recent"]
        assert (recent["id"], recent["state"], recent["fuel"]) == (call, "executed", 49)
        assert recent["args"] == args and len(recent["effects"]) == 1
        # A rule's propose: the coop's DID opens the proposal, the invocation shows it open.
        asked = ok("bob", cb.INVOKED, {"contract": "asker", "rule": "ask", "args": {}})
        shown = until(lambda: get("/contracts/asker").json()["recent"][0]["proposals"])
        assert [(p["title"], p["state"], p["execution"]) for p in shown] == [
            ("Review the time bank", "open", None)
        ]
        assert get(f"/proposals/{shown[0]['id']}").json()["invocation"] == asked
        problem(get("/contracts/nope"), 404, "unknown-contract")
        problem(get("/contracts/No%20Such"), 400, "invalid-contract")
    finally:
        node.stop()
