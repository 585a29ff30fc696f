"""``icn demo seed``: a living coop whose every event the node's own rules accepted."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from icn.infrastructure.keystore import Keystore


def test_demo_seed_makes_a_coop_that_passes_audit_and_refuses_a_second_seed(icn, node_dir: Path):
    d = ["--data-dir", str(node_dir)]
    seeded = json.loads(icn("demo", "seed", "--json", *d).stdout)
    assert set(seeded) == {"coop", "members"} and seeded["coop"] == "demo"
    members = seeded["members"]
    assert len(members) == len(set(members)) == 20
    assert all(m.startswith("did:icn:z") for m in members)

    keys = {k.name: k for k in Keystore(node_dir / "keys").list()}
    demo_keys = [k for name, k in keys.items() if name.startswith("demo-")]
    assert sorted(k.did for k in demo_keys) == sorted(members)
    assert all(k.custodial for k in demo_keys)
    coop_did = keys["coop-demo"].did

    audit = json.loads(icn("audit", "verify", "--coop", "demo", "--json", *d).stdout)
    assert audit["passed"] is True
    log = node_dir.parent / "demo.jsonl"
    log.write_bytes(icn("log", "export", "--coop", "demo", *d).stdout)
    verified = json.loads(icn("audit", "verify", str(log), "--json").stdout)
    assert set(verified["verdicts"]) == {"ok"}
    assert sum(verified["balances"]["hours"].values()) == 0

    events = [json.loads(line) for line in log.read_bytes().splitlines()]
    kinds = Counter(e["type"] for e in events)
    assert kinds["ledger.EntryRecorded"] >= 300  # a few hundred payments, plus the settlement
    assert kinds["ledger.AccountFrozen"] == 1 and kinds["coop.MemberAdmitted"] == 14
    assert kinds["trust.AttestationRecorded"] > 50 and kinds["trust.AttestationRevoked"] >= 1
    assert kinds["trust.StandingPublished"] == 2  # the first epoch of general and of ledger
    checked = json.loads(icn("trust", "verify", "--coop", "demo", "--json", *d).stdout)
    assert checked["ok"] and len(checked["epochs"]) == 2
    standing = json.loads(icn("trust", "standing", "--coop", "demo", "--json", *d).stdout)
    classes = Counter(m["class"] for m in standing["members"])
    assert len(classes) >= 2  # a web with its centre and its edges, not a clique
    resolved = next(e for e in events if e["type"] == "ledger.DisputeResolved")
    assert resolved["body"]["outcome"] == "reversed"
    settled = next(e for e in events if e["type"] == "ledger.DisputeSettled")
    assert (
        settled["author"] == coop_did and settled["body"]["dispute"] == resolved["body"]["dispute"]
    )
    payments = [
        e for e in events if e["type"] == "ledger.EntryRecorded" and e["author"] != coop_did
    ]
    assert all(e["author"] in members for e in payments)
    assert len({tx["memo"] for e in payments for tx in e["body"]["transactions"]}) > 20
    times = [e["ts"] for e in events]
    assert max(times) - min(times) > 7 * 86_400_000 * 7  # weeks of simulated history

    # Governance: a charter proposal closed and executed by the coop's key, a budget proposal
    # open with votes, and a delegation.
    c = ["--coop", "demo", *d]
    submitted = {e["id"]: e for e in events if e["type"] == "governance.ProposalSubmitted"}
    deploys = {i for i, e in submitted.items() if e["body"]["action"]["kind"] == "deploy-contract"}
    listed = json.loads(icn("proposals", "--json", *c).stdout)["proposals"]
    proposals = [p for p in listed if p["id"] not in deploys]  # contracts: below
    done = [p for p in proposals if p["state"] != "open"]
    running = [p for p in proposals if p["state"] == "open"]
    assert len(done) == len(running) == 1
    decided, pending = done[0], running[0]
    assert (decided["state"], decided["execution"]) == ("accepted", "executed")
    assert submitted[decided["id"]]["body"]["action"]["kind"] == "amend-charter"
    assert submitted[pending["id"]]["body"]["action"]["kind"] == "allocate-budget"
    closes = [
        e
        for e in events
        if e["type"] == "governance.ProposalClosed" and e["body"]["proposal"] not in deploys
    ]
    executed = [
        e
        for e in events
        if e["type"] == "governance.ProposalExecuted" and e["body"]["proposal"] not in deploys
    ]
    assert [e["body"]["proposal"] for e in closes + executed] == [decided["id"]] * 2
    assert closes[0]["author"] == executed[0]["author"] == coop_did
    amended = [e for e in events if e["type"] == "governance.CharterAmended"]
    assert [e["id"] for e in amended] == executed[0]["body"]["effects"]
    recounted = json.loads(icn("governance", "recount", decided["id"], "--json", *c).stdout)
    assert recounted["matches"] and recounted["outcome"] == "accepted"
    assert recounted["verified"] >= recounted["counted"] and recounted["bad_signatures"] == []
    charter = json.loads(icn("charter", "--json", *c).stdout)["sections"]
    assert [s["proposal"] for s in charter] == [decided["id"]]
    live = json.loads(icn("tally", pending["id"], "--json", *c).stdout)
    assert live["state"] == "open" and live["counted"] >= 3
    # Still open in real time: the node's own duty will close it.
    assert submitted[pending["id"]]["body"]["closes_at"] > max(times)
    delegations = [e for e in events if e["type"] == "governance.VoteDelegated"]
    assert len(delegations) == 1 and delegations[0]["body"]["to"] in members
    cast = [
        e
        for e in events
        if e["type"] == "governance.VoteCast" and e["body"]["proposal"] not in deploys
    ]
    assert {e["body"]["proposal"] for e in cast} == {decided["id"], pending["id"]}
    # The delegate's choice counts for the delegator who did not vote on the charter.
    delegator = delegations[0]["author"]
    assert delegator not in {e["author"] for e in cast if e["body"]["proposal"] == decided["id"]}
    assert recounted["counted"] == 1 + sum(
        1 for e in cast if e["body"]["proposal"] == decided["id"]
    )

    # Contracts: the three examples deployed by vote, services recorded through the time bank
    # and carried out by the coop's key.
    assert len(deploys) == 3
    assert all(p["state"] == "accepted" and p["execution"] == "executed"
               for p in listed if p["id"] in deploys)  # fmt: skip
    deployed = [e for e in events if e["type"] == "contract.Deployed"]
    assert sorted(e["body"]["name"] for e in deployed) == ["budget", "dues", "timebank"]
    assert {e["body"]["proposal"] for e in deployed} == deploys
    assert {e["author"] for e in deployed} == {coop_did}
    invoked = [e["id"] for e in events if e["type"] == "contract.Invoked"]
    carried = [e["body"]["invocation"] for e in events if e["type"] == "contract.Executed"]
    assert invoked and set(invoked) == set(carried)

    again = icn("demo", "seed", *d, check=1)
    assert b"(coop-already-founded)" in again.stderr and again.stdout == b""
    skipped = icn("demo", "seed", "--if-empty", "--json", *d)
    assert skipped.stdout == b"" and b"not seeding" in skipped.stderr


def test_demo_seed_needs_an_initialised_node(icn, tmp_path: Path):
    proc = icn("demo", "seed", "--data-dir", str(tmp_path / "none"), check=1)
    assert b"icn node init" in proc.stderr
