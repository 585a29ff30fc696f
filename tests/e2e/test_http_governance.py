"""Governance read over real HTTP from a real ``icn node run``: a proposal and its votes posted
as signed events, every governance route read (with their 404/400 codes), the node's duty
closing it, and the tally it served equal to the close and to ``icn governance recount``; each
domain's and charter section's history."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
from support.coops import CoopScript, keep_coop_key, write_jsonl
from support.nodes import RunningNode, bearer, login, run_icn

from icn.domain.governance import bodies as gb
from icn.domain.governance.tally import commitment_of
from icn.infrastructure.keystore import Keystore

from .conftest import PASSPHRASE

COOP = "gov-coop"
V1 = f"/v1/coops/{COOP}"
NAMES = ("alice", "bob", "carol", "dan")
QUICK = {"min_period_ms": 1000, "quorum_ppm": 500_000}
"""A domain whose votes may last a few seconds, so the node closes one during the test."""


def problem(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == code, r.text


def test_proposal_votes_reads_close_and_recount_over_http(
    tmp_path, icn_path_module: str, icn_env_module: dict
) -> None:
    s = CoopScript(COOP)
    roles = {n: (["admin"] if n == "alice" else []) for n in NAMES}
    events = [
        s.found(roles),
        s.event("coop", gb.DOMAIN_DEFINED, {"domain": "quick", "rules": QUICK}),
        s.event("coop", gb.DOMAIN_DEFINED, {"domain": "secret", "rules": {"sealed": True}}),
    ]
    data = tmp_path / "node"
    env = dict(icn_env_module, ICN_DUTIES_INTERVAL_S="0.3", ICN_CHECKPOINT_SECONDS="86400")
    run_icn(icn_path_module, env, "node", "init", "--data-dir", str(data))
    log = write_jsonl(tmp_path / "gov.jsonl", events)
    run_icn(icn_path_module, env, "log", "import", str(log), "--data-dir", str(data))
    keep_coop_key(data / "keys", s, PASSPHRASE)  # the node closes and executes with it
    node = RunningNode(icn_path_module, env, data).start()
    try:
        client = httpx.Client(base_url=node.base, timeout=30)
        tokens = {n: login(node.base, s.key(n), COOP) for n in NAMES}

        def post(who: str, type: str, body: dict[str, Any]) -> str:
            event = s.event(who, type, body, ts=int(time.time() * 1000))
            r = client.post(f"{V1}/events", content=event.wire_bytes(), headers=bearer(tokens[who]))
            assert r.status_code == 201, r.text
            return event.id

        def get(path: str, **params: Any) -> httpx.Response:
            return client.get(f"{V1}{path}", params=params, headers=bearer(tokens["bob"]))

        def ok(path: str, **params: Any) -> Any:
            r = get(path, **params)
            assert r.status_code == 200, r.text
            return r.json()

        closes_at = int(time.time() * 1000) + 4000
        body = {"domain": "quick", "title": "Paint the shop", "text": "Green.",
                "action": {"kind": "text"}, "closes_at": closes_at}  # fmt: skip
        pid = post("alice", gb.PROPOSAL_SUBMITTED, body)
        post("carol", gb.VOTE_DELEGATED, {"domain": "quick", "to": s.did("alice")})
        post("alice", gb.VOTE_CAST, {"proposal": pid, "choice": "yes"})
        post("bob", gb.VOTE_CAST, {"proposal": pid, "choice": "yes", "reason": "why not"})
        post("dan", gb.VOTE_CAST, {"proposal": pid, "choice": "no"})
        post("bob", gb.VOTE_CAST, {"proposal": pid, "choice": "no"})  # a recast replaces

        live = ok(f"/proposals/{pid}/tally")
        assert (live["state"], live["final"], live["projected"]) == ("open", False, "rejected")
        assert (live["counts"]["yes"], live["counts"]["no"]) == (2, 2)  # carol via alice
        assert (live["eligible"], live["counted"], live["quorum_needed"]) == (4, 4, 2)
        assert live["quorum_met"] and live["ballots"] == 3

        domains = ok("/domains")["domains"]
        assert [d["domain"] for d in domains] == ["quick", "root", "secret"]
        assert domains[0]["rules"]["min_period_ms"] == 1000 and domains[1]["version"] == 0
        page = ok("/proposals", state="open", domain="quick")
        assert [p["id"] for p in page["items"]] == [pid] and page["next"] is None
        assert page["items"][0]["votes"] == {"cast": 4, "committed": 0, "revealed": 0}
        assert ok("/proposals", state="accepted")["items"] == []
        detail = ok(f"/proposals/{pid}")
        assert (detail["title"], detail["text"]) == ("Paint the shop", "Green.")
        assert detail["action"] == "text" and detail["action_body"] == {"kind": "text"}
        assert detail["rules"]["min_period_ms"] == 1000 and detail["author"] == s.did("alice")
        first = ok(f"/proposals/{pid}/ballots", limit=2)
        rest = ok(f"/proposals/{pid}/ballots", limit=2, after=first["next"])
        ballots = first["items"] + rest["items"]
        voters = sorted(s.did(n) for n in ("alice", "bob", "dan"))
        assert sorted(b["voter"] for b in ballots) == voters
        assert rest["next"] is None and not first["sealed"]
        assert {b["voter"]: b["choice"] for b in ballots}[s.did("bob")] == "no"
        bob = ok(f"/members/{s.did('bob')}/votes")
        assert [(v["kind"], v["choice"]) for v in bob["votes"]] == [("cast", "yes"), ("cast", "no")]
        assert bob["votes"][0]["reason"] == "why not"
        alice = ok(f"/members/{s.did('alice')}/votes")
        assert [d["member"] for d in alice["delegators"]] == [s.did("carol")]
        carol = ok(f"/members/{s.did('carol')}/votes")
        assert [d["to"] for d in carol["delegations"]] == [s.did("alice")]
        assert ok("/charter") == {"coop": COOP, "sections": [], "history": []}
        quick = ok("/domains/quick")
        assert (
            quick["current"]["version"] == 1 and quick["current"]["rules"]["min_period_ms"] == 1000
        )
        [defined] = quick["versions"]
        assert (defined["version"], defined["kind"], defined["proposal"]) == (1, "defined", None)
        assert defined["rules"] == quick["current"]["rules"] and defined["event_id"] == events[1].id
        root = ok("/domains/root")["versions"]
        assert [(v["version"], v["kind"], v["event_id"]) for v in root] == [(0, "founded", None)]
        problem(get("/domains/nowhere"), 404, "unknown-domain")
        problem(get("/domains/No%20Such"), 400, "invalid-domain")
        problem(get("/charter/purpose"), 404, "unknown-section")

        sealed = {**body, "domain": "secret", "closes_at": closes_at + 2 * 86_400_000}
        hidden = post("alice", gb.PROPOSAL_SUBMITTED, sealed)
        commitment = commitment_of("yes", None, "a-salt-of-sixteen-chars")
        post("bob", gb.VOTE_COMMITTED, {"proposal": hidden, "commitment": commitment})
        secret = ok(f"/proposals/{hidden}/tally")
        assert (secret["sealed"], secret["counts"], secret["projected"]) == (True, None, None)
        assert (secret["ballots"], secret["revealed"], secret["counted"]) == (1, 0, 1)
        [ballot] = ok(f"/proposals/{hidden}/ballots")["items"]
        assert (ballot["choice"], ballot["commitment"]) == (None, commitment)

        # icn vote over HTTP in the sealed domain: it asks the node for the proposal's rules,
        # keeps choice and salt in its own data dir and posts only the commitment.
        cli = tmp_path / "cli"
        Keystore(cli / "keys").create("carol", PASSPHRASE, seed=bytes(s.key("carol")))
        remote = ["--coop", COOP, "--key", "carol", "--url", node.base, "--data-dir", str(cli)]

        def icn_remote(*args: str) -> subprocess.CompletedProcess[bytes]:
            return subprocess.run([icn_path_module, *args, *remote, "--json"], env=env,
                                  capture_output=True, timeout=120)  # fmt: skip

        done = icn_remote("vote", hidden, "no")
        assert done.returncode == 0, done.stderr.decode()
        committed = json.loads(done.stdout)
        assert committed["type"] == gb.VOTE_COMMITTED and Path(committed["kept"]).is_file()
        assert ok(f"/proposals/{hidden}/tally")["ballots"] == 2
        early = icn_remote("reveal", hidden)  # voting still runs: too early, secret kept
        assert early.returncode == 1 and b"(reveal-window)" in early.stderr, early.stderr
        assert Path(committed["kept"]).is_file()

        problem(get(f"/proposals/{'ab' * 32}"), 404, "unknown-proposal")
        problem(get(f"/proposals/{'ab' * 32}/tally"), 404, "unknown-proposal")
        problem(get("/proposals/not-an-id/ballots"), 404, "unknown-proposal")
        problem(get("/proposals", state="closed"), 400, "invalid-state")
        problem(get("/proposals", domain="No Such"), 400, "invalid-domain")
        problem(get("/proposals", domain="nowhere"), 400, "unknown-domain")
        problem(get("/members/not-a-did/votes"), 400, "invalid-did")
        problem(get("/proposals", limit=0), 400, "invalid-request")
        problem(get("/proposals", colour="green"), 400, "unknown-parameter")
        r = client.get(f"{V1}/proposals")
        assert r.status_code == 401

        deadline = time.monotonic() + 30
        while ok(f"/proposals/{pid}")["state"] == "open":  # the node's duty closes it
            assert time.monotonic() < deadline, "the proposal was not closed"
            time.sleep(0.2)
        closed = ok(f"/proposals/{pid}")
        assert closed["state"] == "rejected" and closed["ended_event"]
        final = ok(f"/proposals/{pid}/tally")
        assert final["final"] and final["outcome"] == "rejected"
        assert {k: final[k] for k in ("counts", "eligible", "counted")} == {
            k: live[k] for k in ("counts", "eligible", "counted")
        }
        assert ok("/proposals", state="rejected")["items"][0]["counts"] == live["counts"]
        assert [p["id"] for p in ok("/proposals", state="open")["items"]] == [hidden]
    finally:
        node.stop()

    def icn(*args: str) -> Any:
        done = subprocess.run([icn_path_module, *args, "--data-dir", str(data), "--json"],
                              env=env, capture_output=True, timeout=120)  # fmt: skip
        assert done.returncode == 0, done.stderr.decode()
        return json.loads(done.stdout)

    recounted = icn("governance", "recount", pid, "--coop", COOP)
    assert recounted["matches"] and recounted["outcome"] == final["outcome"]
    assert recounted["counts"] == final["counts"]
    assert recounted["ballots_digest"] == final["ballots_digest"]
    replay = icn("replay")
    assert replay["identical"], replay["differences"]
