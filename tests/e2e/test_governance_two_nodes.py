"""Two replicating nodes that both keep the coop's key race every duty, and never fork the coop.

Two ``icn node run`` processes (each its own SQLite store) on one ``nats-server -js``,
serving ``gov-two``. Both hold the coop's key and run their duty rounds every 0.2 s or so, so
each round of each node takes up every close, execution, settlement, demurrage charge and
standing epoch as soon as it is due: often both sign one (the test prints how many), the
other node's event only reaching them a few milliseconds later. Members post their events
to one node or the other over HTTP.

The story: the coop's DID sets the root domain up for short votes (allowed before the first
proposal); demurrage is due at once (the founding is dated a day back); a member attests
another (an epoch is due after every attestation); a dispute is resolved (a settlement is
due); then members admit a newcomer by vote, allocate him a budget from the treasury, freeze an
account by vote, deploy the time bank contract by vote and record a service through it.
After each step both nodes hold the same log, chain heads and coop records, no fork is
quarantined, and every duty event exists exactly once. Each node's log says no duty was
ever refused: a duty is computed from its trigger alone (ts included), so the slower node
signs the very event the faster one stored (a duplicate), never a rival one. At the end,
``icn governance recount`` matches each close, ``icn replay`` rebuilds identical read
models and ``icn audit verify`` finds the same tree on both stores.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import msgspec
import pytest
from support.coops import CoopScript, keep_coop_key, key_for, write_jsonl
from support.nodes import RunningNode, run_icn
from support.replication import (
    ReplNode,
    Wallet,
    chain_heads,
    coop_state,
    log_ids,
    quarantined,
    wallets_from_log,
)

from icn.domain.contract import bodies as cb
from icn.domain.coop.records import CreditPolicy, DemurragePolicy, Policy, TrustPolicy
from icn.domain.events.envelope import Event
from icn.domain.governance import bodies as gb
from icn.domain.ledger import bodies as lb
from icn.infrastructure.replication.nats_auth import NatsUser, NatsUsers, new_password
from icn.infrastructure.replication.nats_server import LocalNatsServer
from tests.conftest import REPO_ROOT

PASSPHRASE = "e2e-test-passphrase"  # what tests/e2e/conftest.py gives every ``icn`` it runs
COOP = "gov-two"
MEMBERS = {"alice": ["admin"], "bob": [], "carol": [], "dave": [], "erin": ["admin"]}
POLICY = Policy(
    credit={"hours": CreditPolicy(baseline=100_000, max_limit=100_000)},
    demurrage={"hours": DemurragePolicy(rate_ppm=10_000, period_days=1)},
    trust=TrustPolicy(epoch_every_attestations=1),
)
"""Demurrage of 1 % a day (due once the founding is a day old); an epoch after every
attestation."""
FOUNDED_AGO_MS = 86_400_000 + 120_000
"""The founding is imported with a clock this far back: one demurrage period is due."""
VOTE_MS = 3_000
"""Each proposal closes this long after it is posted (the root domain allows 1 s)."""
SHORT = {"min_period_ms": 1_000, "max_period_ms": 86_400_000}
ROUNDS_S = {"a": "0.2", "b": "0.17"}
"""Duty rounds of slightly different lengths: the two rounds drift past each other, so
in some duties they start within the same few milliseconds (the other node's event not
there yet) whatever phase the nodes started in."""
NODE_USER = NatsUser("icn-node", new_password())
USERS = NatsUsers(node=NODE_USER, readers=[])
ENV = {
    "ICN_NATS_USER": NODE_USER.user,
    "ICN_NATS_PASSWORD": NODE_USER.password,
    "ICN_SERVE": COOP,
    "ICN_CHECKPOINT_EVERY": "10000000",
    "ICN_CHECKPOINT_SECONDS": "86400",
    "ICN_RATE_DID_PER_S": "100000",
    "ICN_RATE_DID_BURST": "100000",
    "ICN_RATE_IP_PER_S": "100000",
    "ICN_RATE_IP_BURST": "100000",
}
EPOCH = "trust.StandingPublished"
DUTY_TYPES = {
    gb.PROPOSAL_CLOSED,
    gb.PROPOSAL_EXECUTED,
    lb.DISPUTE_SETTLED,
    lb.DEMURRAGE_CHARGED,
    EPOCH,
}


@dataclass
class Pair:
    a: ReplNode
    b: ReplNode
    script: CoopScript
    wallets: dict[str, Wallet]
    icn: str
    env: dict[str, str]

    @property
    def nodes(self) -> list[ReplNode]:
        return [self.a, self.b]


@pytest.fixture(scope="module")
def pair(
    tmp_path_factory: pytest.TempPathFactory, icn_path_module: str, icn_env_module: dict[str, str]
) -> Iterator[Pair]:
    base = tmp_path_factory.mktemp("gov-two")
    server = LocalNatsServer(base / "nats", users=USERS).start()
    running: list[RunningNode] = []
    try:
        script = CoopScript(COOP)
        events = [script.found(MEMBERS, policy=POLICY, name="Two key holders")]
        root = {"domain": "root", "rules": SHORT}
        events.append(script.event("coop", gb.DOMAIN_CHANGED, root))
        events.append(script.pay("alice", "bob", 5_000, memo="tools"))  # the disputed payment
        events.append(script.pay("carol", "dave", 20_000, memo="rent"))
        founding = write_jsonl(base / "founding.jsonl", events)
        env = dict(icn_env_module, **ENV, ICN_NATS_URL=server.url)
        for name in ("a", "b"):
            run_icn(icn_path_module, env, "node", "init", "--data-dir", str(base / name))
            keep_coop_key(base / name / "keys", script, PASSPHRASE)
            rounds = {"ICN_DUTIES_INTERVAL_S": ROUNDS_S[name]}
            running.append(RunningNode(icn_path_module, env | rounds, base / name))
        back = {"ICN_CLOCK_OFFSET_MS": str(-FOUNDED_AGO_MS)}
        run_icn(icn_path_module, env | back, "log", "import", str(founding),
                "--data-dir", str(base / "a"))  # fmt: skip
        threads = [threading.Thread(target=n.start) for n in running]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for n in running:
            assert n.proc is not None and n.proc.poll() is None, n.log.read_text()[-3000:]
        nodes = [ReplNode(name, r, COOP) for name, r in zip(("A", "B"), running, strict=True)]
        keys = {n: key_for(n) for n in [*MEMBERS, "frank"]}
        by_did = wallets_from_log(COOP, events, keys)
        wallets = {n: by_did[script.did(n)] for n in keys}
    except BaseException:
        for r in running:
            if r.proc is not None and r.proc.poll() is None:
                r.stop()
        server.stop()
        raise
    try:
        yield Pair(nodes[0], nodes[1], script, wallets, icn_path_module, env)
    finally:
        for rn in nodes:
            rn.close()
            if rn.node.proc is not None and rn.node.proc.poll() is None:
                rn.node.stop()  # SIGTERM: exit code 0 and no traceback, or the test fails
        server.stop()


# -- reading a node ------------------------------------------------------------------------------


def events_of(node: ReplNode, wallet: Wallet) -> list[Event]:
    """The coop's whole log as ``node`` serves it, in its order."""
    token = node.token(wallet)
    assert token is not None
    out: list[Event] = []
    after = -1
    while True:
        r = node.http.get(
            f"/v1/coops/{COOP}/events",
            params={"after": after, "limit": 1000},
            headers={"Authorization": f"Bearer {token}"},
        )
        r.raise_for_status()
        page = r.json()
        out += [msgspec.convert(p["event"], Event) for p in page["events"]]
        if page["next"] is None:
            return out
        after = page["next"]


def wait_until(check: Callable[[], bool], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.05)


def wait_quiet(p: Pair, timeout: float = 30) -> None:
    """Until both nodes hold the same log, nothing to publish or consume, three looks in a
    row half a second apart (longer than two duty rounds: a late duty would show)."""
    deadline = time.monotonic() + timeout
    calm, last = 0, None
    while calm < 3:
        assert time.monotonic() < deadline, f"no quiescence within {timeout} s: {last}"
        time.sleep(0.5)
        look = []
        for n in p.nodes:
            rep = (n.ready().get("replication") or {}).get("coops", {}).get(COOP, {})
            look.append((rep.get("consumer_lag"), rep.get("outbox_backlog"), rep.get("parked")))
        ids = [log_ids(n.data, COOP) for n in p.nodes]
        now = (look, ids[0] == ids[1], len(ids[0]))
        quiet = all(x == (0, 0, 0) for x in look) and ids[0] == ids[1]
        calm = calm + 1 if quiet and now == last else 0
        last = now


def assert_same(p: Pair) -> list[Event]:
    """Both nodes hold the same events in the same order, heads and records; no fork; no duty
    refused; no duty event twice. Returns the log."""
    wait_quiet(p)
    ids = [log_ids(n.data, COOP) for n in p.nodes]
    assert ids[0] == ids[1] and len(set(ids[0])) == len(ids[0])
    assert chain_heads(p.a.data, COOP) == chain_heads(p.b.data, COOP)
    assert coop_state(p.a.data, COOP) == coop_state(p.b.data, COOP), "coop records differ"
    for n in p.nodes:
        assert quarantined(n.data, COOP) == [], f"{n.name} quarantined a fork"
        said = n.node.log.read_text(errors="replace")
        assert "coop duty refused" not in said and "coop duties failed" not in said, said[-3000:]
        assert "Traceback" not in said, said[-3000:]
    log = events_of(p.a, p.wallets["alice"])
    assert [e.id for e in log] == ids[0]
    assert [e.id for e in events_of(p.b, p.wallets["bob"])] == ids[0]
    duty = [
        (e.type, e.body.get("proposal") or e.body.get("dispute") or e.body.get("period_end")
         or e.body.get("epoch"))
        for e in log if e.type in DUTY_TYPES
    ]  # fmt: skip
    twice = [k for k, count in Counter(duty).items() if count > 1]
    assert not twice, f"a duty was done twice: {twice}"
    return log


# -- writing -----------------------------------------------------------------------------------


def post(node: ReplNode, wallet: Wallet, type: str, body: dict[str, Any]) -> Event:
    """``wallet``'s next event, stored through ``node`` (retried while ``node`` catches up)."""
    event = wallet.draft(type, body)
    deadline = time.monotonic() + 15
    while (outcome := node.post(wallet, event)) in ("gap", "unknown-member", "stream-unavailable"):
        assert time.monotonic() < deadline, f"{node.name} never took {type}: {outcome}"
        time.sleep(0.05)
    assert outcome == "ok", f"{node.name} refused {type}: {outcome}"
    wallet.commit(event)
    return event


def now_ms() -> int:
    """The trusted time a node judges at now (its clock, the test's one)."""
    return time.time_ns() // 1_000_000


def decide(p: Pair, action: dict[str, Any], votes: dict[str, str]) -> tuple[Event, list[Event]]:
    """alice proposes on A; each voter votes ``yes`` on the node named; both nodes' duties
    race to close and execute. Returns the proposal and the log once both agree."""
    proposal = post(p.a, p.wallets["alice"], gb.PROPOSAL_SUBMITTED, {
        "domain": "root", "title": f"{action['kind']} by vote", "text": "Decided together.",
        "action": action, "closes_at": now_ms() + VOTE_MS,
    })  # fmt: skip
    wait_until(lambda: proposal.id in log_ids(p.b.data, COOP), "B has the proposal")
    for who, where in votes.items():
        node = p.a if where == "A" else p.b
        post(node, p.wallets[who], gb.VOTE_CAST, {"proposal": proposal.id, "choice": "yes"})

    def executed(n: ReplNode) -> bool:
        rows = [
            e
            for e in events_of(n, p.wallets["alice"])
            if e.type == gb.PROPOSAL_EXECUTED and e.body["proposal"] == proposal.id
        ]
        return bool(rows)

    wait_until(
        lambda: executed(p.a) and executed(p.b), "both nodes executed", timeout=VOTE_MS / 1000 + 15
    )
    log = assert_same(p)
    closes = [e for e in log if e.type == gb.PROPOSAL_CLOSED and e.body["proposal"] == proposal.id]
    done = [e for e in log if e.type == gb.PROPOSAL_EXECUTED and e.body["proposal"] == proposal.id]
    assert len(closes) == 1 and len(done) == 1
    assert closes[0].body["outcome"] == "accepted"
    assert closes[0].ts == proposal.body["closes_at"]  # the trigger's time, not a clock's
    assert done[0].body.get("failed") is None and len(done[0].body["effects"]) == 1
    return proposal, log


def icn_json(p: Pair, *args: str) -> Any:
    proc = subprocess.run(
        [p.icn, *args, "--json"], env=p.env, capture_output=True, timeout=120, check=False
    )
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-2000:])
    return json.loads(proc.stdout)


# -- the story -----------------------------------------------------------------------------------


def test_two_key_holders_race_every_duty_and_agree(pair: Pair) -> None:
    p, s = pair, pair.script
    started = time.monotonic()
    coop_did = s.coop_did

    # Demurrage was due from the start: both nodes charged it, one charge stands.
    wait_until(
        lambda: any(e.type == lb.DEMURRAGE_CHARGED for e in events_of(p.b, p.wallets["bob"])),
        "demurrage charged",
    )
    log = assert_same(p)
    [charged] = [e for e in log if e.type == lb.DEMURRAGE_CHARGED]
    assert charged.author == coop_did and charged.ts == charged.body["period_end"]
    assert len(charged.body["entries"]) == 1

    # An attestation (on B) makes an epoch due: both publish it, one stands.
    post(p.b, p.wallets["bob"], "trust.AttestationRecorded", {
        "subject": s.did("carol"), "context": "general", "score_ppm": 800_000,
    })  # fmt: skip
    wait_until(
        lambda: any(e.type == EPOCH for e in events_of(p.a, p.wallets["alice"])),
        "epoch published",
    )
    log = assert_same(p)
    [epoch] = [e for e in log if e.type == EPOCH]
    assert epoch.body["context"] == "general" and epoch.body["epoch"] == 1

    # A dispute resolved on B (payment reversed): both settle it, one settlement stands.
    paid = next(e for e in log if e.type == "ledger.EntryRecorded" and e.author == s.did("alice"))
    filed = post(p.a, p.wallets["alice"], lb.DISPUTE_FILED, {
        "entry": paid.id, "reason": "the tools never came",
    })  # fmt: skip
    wait_until(lambda: filed.id in log_ids(p.b.data, COOP), "B has the dispute")
    resolved = post(p.b, p.wallets["erin"], lb.DISPUTE_RESOLVED, {
        "dispute": filed.id, "outcome": "reversed",
    })  # fmt: skip
    wait_until(
        lambda: any(e.type == lb.DISPUTE_SETTLED for e in events_of(p.a, p.wallets["alice"])),
        "dispute settled",
    )
    log = assert_same(p)
    [settled] = [e for e in log if e.type == lb.DISPUTE_SETTLED]
    assert settled.body["dispute"] == filed.id and settled.author == coop_did
    refunds = [e for e in log if e.id == settled.body["entry"]]
    assert len(refunds) == 1 and refunds[0].body["transactions"][0]["amount"] == 5_000
    assert log.index(resolved) < log.index(refunds[0])

    # Admit frank by vote, votes posted to both nodes.
    frank = s.did("frank")
    admit, log = decide(p, {"kind": "add-member", "member": frank},
                        {"alice": "A", "bob": "B", "carol": "A", "dave": "B"})  # fmt: skip
    admitted = [e for e in log if e.type == "coop.MemberAdmitted" and e.body["member"] == frank]
    assert len(admitted) == 1 and admitted[0].body["proposal"] == admit.id

    # A budget from the treasury to frank, who votes on B now that he is a member.
    budget = {"kind": "allocate-budget", "to": frank, "amount": 2_500, "currency": "hours",
              "purpose": "a van for deliveries"}  # fmt: skip
    paid_out, log = decide(p, budget, {"alice": "A", "frank": "B", "erin": "B", "bob": "A"})
    entries = [
        e for e in log
        if e.type == "ledger.EntryRecorded" and e.author == coop_did
        and f"proposal {paid_out.id}" in (e.body["transactions"][0]["memo"] or "")
    ]  # fmt: skip
    assert len(entries) == 1
    assert entries[0].body["transactions"][0]["to"] == frank

    # Freeze dave's account by vote.
    freeze = {"kind": "freeze", "member": s.did("dave"), "reason": "unpaid dues"}
    frozen, log = decide(p, freeze, {"alice": "B", "bob": "A", "carol": "B", "frank": "A"})
    freezes = [e for e in log if e.type == lb.ACCOUNT_FROZEN]
    assert len(freezes) == 1 and freezes[0].body["proposal"] == frozen.id
    # Every duty of the whole story, once: no second epoch, charge or settlement came later
    # (an epoch is due again only after another attestation, a charge after another day).
    by_coop = Counter(e.type for e in log if e.author == coop_did)
    assert {t: by_coop[t] for t in DUTY_TYPES} == {
        lb.DEMURRAGE_CHARGED: 1, EPOCH: 1, lb.DISPUTE_SETTLED: 1,
        gb.PROPOSAL_CLOSED: 3, gb.PROPOSAL_EXECUTED: 3,
    }  # fmt: skip

    # The time bank deployed by vote, then invoked on B: both nodes race to carry the
    # invocation out (an entry and a contract.Executed, dated by the invocation); one stands.
    timebank = json.loads((REPO_ROOT / "examples" / "contracts" / "timebank.json").read_text())
    fields = ("name", "version", "code", "capabilities", "fuel_limit")
    deploy = {"kind": "deploy-contract", **{k: timebank[k] for k in fields}}
    _, log = decide(p, deploy, {"alice": "B", "bob": "A", "carol": "B", "frank": "A"})
    assert [e.body["name"] for e in log if e.type == cb.DEPLOYED] == ["timebank"]
    args = {"sender": s.did("carol"), "recipient": s.did("frank"), "hours": 2}
    call = post(p.b, p.wallets["carol"], cb.INVOKED,
                {"contract": "timebank", "rule": "record_service", "args": args})  # fmt: skip
    wait_until(
        lambda: any(e.type == cb.EXECUTED for e in events_of(p.a, p.wallets["alice"])),
        "invocation executed",
    )
    log = assert_same(p)
    [executed] = [e for e in log if e.type == cb.EXECUTED]
    assert executed.body["invocation"] == call.id and executed.author == coop_did
    [entry] = [e for e in log if e.id in executed.body["effects"]]
    assert entry.body["transactions"][0]["amount"] == 200
    elapsed_story = time.monotonic() - started

    # Recount and replay on each node's store (stopped: a running node holds its store).
    for n in p.nodes:
        n.node.stop()
    runs: list[tuple[str, tuple[str, ...]]] = [
        (n.name, ("governance", "recount", q.id, "--data-dir", str(n.data), "--coop", COOP))
        for n in p.nodes
        for q in (admit, paid_out, frozen)
    ]
    runs += [(n.name, ("replay", "--data-dir", str(n.data))) for n in p.nodes]
    runs += [(n.name, ("audit", "verify", "--coop", COOP, "--data-dir", str(n.data)))
             for n in p.nodes]  # fmt: skip
    with ThreadPoolExecutor(len(runs)) as pool:  # each is a process of its own, reading only
        answers = list(pool.map(lambda run: icn_json(p, *run[1]), runs))
    recounts, replays, audits = answers[:-4], answers[-4:-2], answers[-2:]
    for r in audits:  # every event judged ok again, the stored Merkle tree intact
        assert r["stored_tree_matches"] is True and r["problems"] == [], r
        assert r["quarantined"] == [] and set(r["summary"]) == {"ok"}, r["summary"]
    assert audits[0]["root"] == audits[1]["root"] and audits[0]["size"] == audits[1]["size"]
    assert audits[0]["balances"] == audits[1]["balances"]
    for (name, _), r in zip(runs, recounts, strict=False):
        assert r["matches"] is True and r["outcome"] == "accepted", (name, r)
    for r in replays:
        assert r["identical"] is True and r["differences"] == [], r
    assert replays[0]["coops"] == replays[1]["coops"]
    assert replays[0]["positions"] == replays[1]["positions"]
    # Which duty events each node signed itself (its duty round logs them): an event both
    # signed is a race the stream settled as one, since both signed the same bytes.
    signed = [set(re.findall(r"coop duty \S+ \S+ ([0-9a-f]{64})", n.node.log.read_text()))
              for n in p.nodes]  # fmt: skip
    print(
        f"story {elapsed_story:.1f} s, {len(log)} events; duty events signed by A only"
        f" {len(signed[0] - signed[1])}, by B only {len(signed[1] - signed[0])}, by both"
        f" {len(signed[0] & signed[1])}"
    )
