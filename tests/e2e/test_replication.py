"""Replication with real servers: nodes converge, catch up, and never take a forged history.

Three ``icn node run`` processes (each its own SQLite store) on one
``nats-server -js`` started by the test, all serving ``repl-coop``. The coop
is founded on the first node only (``icn log import``); the others learn it
from the stream. Members then post payments, admissions and role changes to
random nodes, signing their own events. After each phase the nodes must
agree exactly: the same event ids (each once), the same chain heads, the
same coop records (balances, members), and every accepted event present.

The module's tests share the nodes and run in order: converge, a node
killed with SIGKILL mid-load, NATS restarted mid-load, a malicious
publisher, then the status views and the subscriber example. A node's own
nats-server and a 3-server cluster have tests of their own.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import msgspec
import nats
import nats.errors
import pytest
from support.coops import CoopScript, key_for, write_jsonl
from support.nodes import RunningNode, free_port, run_icn
from support.replication import (
    Load,
    ReplNode,
    Wallet,
    audit,
    chain_heads,
    checkpoint,
    coop_state,
    log_ids,
    quarantined,
    trusted_times,
    wallets_from_log,
)

from icn.domain.coop import bodies as cb
from icn.domain.coop.records import CreditPolicy, Policy
from icn.domain.identity.did import did_from_public_key
from icn.domain.ledger import bodies as lb
from icn.infrastructure.replication.nats_auth import NatsUser, NatsUsers, new_password
from icn.infrastructure.replication.nats_server import LocalNatsCluster, LocalNatsServer
from icn.infrastructure.replication.subjects import event_subject

COOP = "repl-coop"
MEMBERS = {
    "alice": ["admin"], "bob": ["admin"], "carol": [], "dave": [], "erin": [], "mallory": [],
    "tim": [],
}  # fmt: skip
"""Two admins on different load workers: they race to admit the same newcomers. tim, whom the
load never uses, dates a payment ahead (his chain then stays ahead for minutes)."""
POLICY = Policy(credit={"hours": CreditPolicy(baseline=40_000, max_limit=40_000)})
"""400.00 hours each against payments of up to 20.00: members do run into their limits, so
payments are refused depending on what reached the stream first (refused ones are dropped)."""
REPO = Path(__file__).resolve().parents[2]
NODE_USER = NatsUser("icn-node", new_password())
READER = NatsUser("subscriber", new_password())
USERS = NatsUsers(node=NODE_USER, readers=[READER])
"""The NATS servers of this suite require these users: nodes log in as NODE_USER."""
AUTH_ENV = {"ICN_NATS_USER": NODE_USER.user, "ICN_NATS_PASSWORD": NODE_USER.password}
AS_NODE = {"user": NODE_USER.user, "password": NODE_USER.password}

N3_AHEAD_MS = 240_000
"""n3's clock runs four minutes ahead of the others' for the whole suite: nodes whose clocks
disagree must still decide the same, judging each stream message at the time it carries."""
SKEW_MS = 300_000
"""ICN_MAX_CLOCK_SKEW_S's default."""

QUIET_ENV = {
    # No automatic checkpoints: the tests issue them, so "quiet" means quiet.
    "ICN_CHECKPOINT_EVERY": "10000000",
    "ICN_CHECKPOINT_SECONDS": "86400",
    "ICN_RATE_DID_PER_S": "100000",
    "ICN_RATE_DID_BURST": "100000",
    "ICN_RATE_IP_PER_S": "100000",
    "ICN_RATE_IP_BURST": "100000",
}


@dataclass
class Cluster:
    nats: LocalNatsServer
    nodes: list[ReplNode]
    load: Load
    wallets: dict[str, Wallet]
    icn: str
    env: dict[str, str]

    def node(self, name: str) -> ReplNode:
        return next(n for n in self.nodes if n.name == name)


def _start_all(nodes: list[RunningNode]) -> None:
    threads = [threading.Thread(target=n.start) for n in nodes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for n in nodes:
        assert n.proc is not None and n.proc.poll() is None, n.log.read_text()[-3000:]


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, icn_path_module: str, icn_env_module: dict
) -> Iterator[Cluster]:
    base = tmp_path_factory.mktemp("replication")
    server = LocalNatsServer(base / "nats", users=USERS).start()
    running: list[RunningNode] = []
    try:  # a setup that fails (a node that cannot init) must leave nothing running
        script = CoopScript(COOP)
        events = [script.found(MEMBERS, policy=POLICY, name="Replication coop")]
        names = ["alice", "bob", "carol", "dave", "erin"]
        events += [script.pay(names[i % 5], names[(i + 2) % 5], 100 + i) for i in range(10)]
        founding = write_jsonl(base / "founding.jsonl", events)
        env = dict(icn_env_module, **QUIET_ENV, **AUTH_ENV, ICN_NATS_URL=server.url, ICN_SERVE=COOP)
        for name in ("n1", "n2", "n3"):
            run_icn(icn_path_module, env, "node", "init", "--data-dir", str(base / name))
            clock = {"ICN_CLOCK_OFFSET_MS": str(N3_AHEAD_MS)} if name == "n3" else {}
            running.append(RunningNode(icn_path_module, env | clock, base / name))
        run_icn(
            icn_path_module, env, "log", "import", str(founding), "--data-dir", str(base / "n1")
        )
        _start_all(running)
        nodes = [ReplNode(f"n{i + 1}", r, COOP) for i, r in enumerate(running)]
        wallets = wallets_from_log(COOP, events, {n: key_for(n) for n in MEMBERS})
        by_name = {n: wallets[script.did(n)] for n in MEMBERS}
        load = Load(
            nodes,
            by_name["alice"],
            [by_name[n] for n in ("bob", "carol", "dave", "erin")],
            workers=4,
            newcomer_key=lambda i: key_for(f"newcomer-{i}"),
            rival=by_name["bob"],
        )
    except BaseException:
        for r in running:
            if r.proc is not None and r.proc.poll() is None:
                r.stop()
        server.stop()
        raise
    try:
        yield Cluster(server, nodes, load, by_name, icn_path_module, env)
    finally:
        for n in nodes:
            n.close()
            if n.node.proc is not None and n.node.proc.poll() is None:
                n.node.stop()  # SIGTERM: exit code 0 and no traceback, or the test fails
        server.stop()


# -- agreement ---------------------------------------------------------------------------------


def wait_quiet(
    nodes: list[ReplNode], timeout: float = 60, parked_ok: bool = False, coop: str = COOP
) -> None:
    """Until every node has the same log size, nothing to publish and nothing to consume,
    three looks in a row (the replication numbers are refreshed every second)."""
    deadline = time.monotonic() + timeout
    calm = 0
    last: list[Any] = []
    while calm < 4:
        assert time.monotonic() < deadline, f"no quiescence within {timeout} s: {last}"
        time.sleep(0.4)
        looks = []
        for n in nodes:
            r = n.ready()
            rep = (r.get("replication") or {}).get("coops", {}).get(coop, {})
            looks.append(
                (
                    r.get("coops", {}).get(coop, {}).get("size"),
                    rep.get("consumer_lag"),
                    rep.get("outbox_backlog"),
                    rep.get("parked") if not parked_ok else 0,
                )
            )
        sizes = {look[0] for look in looks}
        quiet = all(look[1:] == (0, 0, 0) for look in looks)
        calm = calm + 1 if len(sizes) == 1 and quiet and looks == last else 0
        last = looks


def assert_identical(c: Cluster, expect_parked: bool = False) -> list[str]:
    """Same ids (each once), same heads, same coop records; every accepted event present."""
    wait_quiet(c.nodes, parked_ok=expect_parked)
    for n in c.nodes:  # what the consumers did, in the test's output (-s) and on failure
        print(n.name, n.ready()["replication"]["coops"][COOP]["intake"], c.load.outcomes)
    logs = {n.name: log_ids(n.data, COOP) for n in c.nodes}
    first = c.nodes[0].name
    for name, ids in logs.items():
        assert len(ids) == len(set(ids)), f"{name} holds an event twice"
        assert set(ids) == set(logs[first]), f"{name} differs from {first}"
    missing = set(c.load.accepted) - set(logs[first])
    assert not missing, f"{len(missing)} accepted events were lost"
    heads = [chain_heads(n.data, COOP) for n in c.nodes]
    assert all(h == heads[0] for h in heads)
    states = [coop_state(n.data, COOP) for n in c.nodes]
    assert all(s == states[0] for s in states), "coop records (balances, members) differ"
    return logs[first]


# -- the story -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_three_nodes_converge_and_each_checkpoint_verifies(cluster: Cluster) -> None:
    cluster.load.run_for(6)
    outcomes = cluster.load.outcomes
    assert outcomes["ok"] > 150, outcomes
    assert cluster.load.newcomers, "no membership changes happened"
    # Conflicts did happen, and were settled the same way everywhere (asserted below).
    assert outcomes["already-member"] > 0 and outcomes["credit-limit-exceeded"] > 0, outcomes
    ids = assert_identical(cluster)
    # Every node signs a checkpoint of its own log; they replicate like any event. The
    # command writes the store, so each node stops for it (a running node holds the lock).
    for n in cluster.nodes:
        n.up = False
        n.node.stop()
        checkpoint(cluster.icn, cluster.env, n.data, COOP)
        n.node.start()
        n.up = True
    assert len(assert_identical(cluster)) == len(ids) + 3
    balances = []
    for n in cluster.nodes:
        report = audit(cluster.icn, cluster.env, n.data, COOP)
        assert report["passed"] and report["stored_tree_matches"], report
        own = [cp for cp in report["checkpoints"] if cp["own"]]
        assert len(own) == 1 and own[0]["matches"], report["checkpoints"]
        balances.append(report["balances"])
    assert all(b == balances[0] for b in balances)
    hours = balances[0]["hours"]
    assert sum(hours.values()) == 0 and len(hours) >= len(set(MEMBERS) - {"tim"}) - 1


@pytest.mark.slow
def test_nodes_whose_clocks_disagree_judge_each_message_at_the_time_it_carries(
    cluster: Cluster,
) -> None:
    tim, dave = cluster.wallets["tim"], cluster.wallets["dave"]
    n1, n3 = cluster.node("n1"), cluster.node("n3")
    # Dated 6.5 minutes ahead of true time: beyond n1's clock plus the skew, within n3's.
    ahead = time.time_ns() // 1_000_000 + SKEW_MS + 90_000
    early = tim.pay(dave.did, 1, ts=ahead)
    assert n1.post(tim, early) == "clock-skew"
    assert n3.post(tim, early) == "ok"
    tim.commit(early)
    ids = assert_identical(cluster)  # n1 took it from the stream, at n3's time
    assert early.id in ids
    stamps = [trusted_times(n.data, COOP) for n in cluster.nodes]
    assert all(s == stamps[0] for s in stamps), "nodes judged one message at different times"
    assert stamps[0][early.id] >= ahead - SKEW_MS


@pytest.mark.slow
def test_a_node_killed_mid_load_catches_up_with_nothing_lost_or_doubled(
    cluster: Cluster,
) -> None:
    victim = cluster.node("n3")
    load = cluster.load.start()
    try:
        time.sleep(1.5)
        victim.up = False
        assert victim.node.proc is not None
        victim.node.proc.kill()  # SIGKILL: no shutdown at all
        victim.node.proc.wait(10)
        time.sleep(2.5)  # the others keep taking writes
        # Catch up while down, from the durable consumer position, then serve again.
        proc = subprocess.run(
            [cluster.icn, "node", "sync", "--data-dir", str(victim.data), "--json"],
            env=cluster.env, capture_output=True, timeout=120,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr.decode()[-3000:]
        synced = json.loads(proc.stdout)["coops"][COOP]
        assert synced["accepted"] > 0 and synced["rejected"] == 0, synced
        victim.node.start()
        victim.up = True
        time.sleep(1.5)
    finally:
        load.stop()
    assert_identical(cluster)


@pytest.mark.slow
def test_a_nats_restart_mid_load_loses_nothing(cluster: Cluster) -> None:
    load = cluster.load.start()
    try:
        time.sleep(1.5)
        cluster.nats.restart()  # same port, same store
        time.sleep(2.5)
    finally:
        load.stop()
    before = len(cluster.load.accepted)
    assert_identical(cluster)
    assert before == len(cluster.load.accepted)


@pytest.mark.slow
def test_conflicting_decisions_on_two_nodes_are_settled_in_stream_order(cluster: Cluster) -> None:
    alice, bob, erin = (cluster.wallets[n] for n in ("alice", "bob", "erin"))
    n1, n2, n3 = (cluster.node(n) for n in ("n1", "n2", "n3"))

    def race(*posts: tuple[ReplNode, Wallet, Any]) -> list[str]:
        """Post each event to its node at the same moment; the outcomes, in order."""
        start = threading.Barrier(len(posts))
        outcomes = [""] * len(posts)

        def post(i: int) -> None:
            node, wallet, event = posts[i]
            start.wait()
            outcomes[i] = node.post(wallet, event)
            if outcomes[i] == "ok":
                wallet.commit(event)

        threads = [threading.Thread(target=post, args=(i,)) for i in range(len(posts))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        return outcomes

    # Two admins admit the same person on two nodes: exactly one admission stands.
    for round_ in range(5):
        did = did_from_public_key(bytes(key_for(f"contested-{round_}").verify_key))
        body = msgspec.to_builtins(cb.MemberAdmitted(member=did, roles=[]))
        outcomes = race(
            (n1, alice, alice.draft(cb.MEMBER_ADMITTED, body)),
            (n2, bob, bob.draft(cb.MEMBER_ADMITTED, body)),
        )
        assert sorted(outcomes) == ["already-member", "ok"], outcomes
    # A freeze races the frozen member's payment: whichever the stream holds first decides,
    # and every node decides the same. (First some credit for erin, who may be at her limit.)
    for payer in (cluster.wallets[n] for n in ("alice", "bob", "carol", "dave")):
        topup = payer.pay(erin.did, 5_000)
        if n2.post(payer, topup) == "ok":
            payer.commit(topup)
            break
    else:
        raise AssertionError("nobody could pay erin")
    # A node refuses with what it knows (docs/replication.md, known limits): let every node
    # have the credit before erin spends it on n3.
    wait_quiet(cluster.nodes)
    freeze = msgspec.to_builtins(lb.AccountFrozen(member=erin.did, reason="audit"))
    froze, paid = race(
        (n1, alice, alice.draft(lb.ACCOUNT_FROZEN, freeze)),
        (n3, erin, erin.pay(alice.did, 100)),
    )
    assert froze == "ok" and paid in ("ok", "account-frozen"), (froze, paid)
    ids = assert_identical(cluster)
    assert alice.prev in ids and bob.prev in ids and erin.prev in ids
    unfreeze = alice.draft(lb.ACCOUNT_UNFROZEN, {"member": erin.did})
    assert n2.post(alice, unfreeze) == "ok"
    alice.commit(unfreeze)


@pytest.mark.slow
def test_a_malicious_publisher_cannot_make_honest_nodes_disagree(cluster: Cluster) -> None:
    mallory = cluster.wallets["mallory"]
    bob = cluster.wallets["bob"]
    # a forged signature: bob's next payment, signed by mallory
    draft = bob.pay(mallory.did, 5_000)
    forged = msgspec.structs.replace(draft, sig=mallory.key.sign(b"x").signature.hex())
    # a fork: two different events at mallory's next seq
    one, two = mallory.pay(bob.did, 10), mallory.pay(cluster.wallets["carol"].did, 10)
    # a replay: an old event again, under a fresh message id to get past the dedupe window
    old = cluster.node("n1").data
    replayed_id = log_ids(old, COOP)[3]
    with sqlite_wire(old, replayed_id) as replay:

        async def publish() -> None:
            # Only node users may publish into a coop's stream: this is a node gone bad.
            nc = await nats.connect(cluster.nats.url, **AS_NODE)
            js = nc.jetstream()
            for event, msg_id in ((forged, forged.id), (one, one.id), (two, two.id)):
                subject = event_subject(COOP, event.type, event.author)
                await js.publish(subject, event.wire_bytes(), headers={"Nats-Msg-Id": msg_id})
            await js.publish(
                f"icn.{COOP}.ledger.EntryRecorded.zReplay", replay, headers={"Nats-Msg-Id": "r"}
            )
            await js.publish(f"icn.{COOP}.junk.Junk.zJunk", b"{not json")
            await nc.close()

        asyncio.run(asyncio.wait_for(publish(), 30))
    ids = assert_identical(cluster)
    assert one.id in ids and two.id not in ids and forged.id not in ids
    for n in cluster.nodes:
        assert quarantined(n.data, COOP) == [(two.id, one.id)], n.name
        intake = n.ready()["replication"]["coops"][COOP]["intake"]
        codes = intake["rejected_codes"]
        assert codes.get("bad-signature") == 1 and codes.get("malformed") == 1, (n.name, intake)
        assert intake["forks"] == 1, (n.name, intake)
    # mallory is flagged everywhere: her next event is refused on every node
    mallory.commit(one)
    nxt = mallory.pay(bob.did, 1)
    for n in cluster.nodes:
        assert n.post(mallory, nxt) == "author-flagged", n.name


class sqlite_wire:
    """The stored wire bytes of one event (read-only), as a context manager."""

    def __init__(self, data: Path, event_id: str) -> None:
        import sqlite3

        db = sqlite3.connect(f"file:{data / 'icn.sqlite3'}?mode=ro", uri=True)
        try:
            self.wire = bytes(
                db.execute(
                    "SELECT s.state FROM log_entries e JOIN stored_events s"
                    " ON s.originator_id = e.coop || '/' || e.author"
                    " AND s.originator_version = e.seq WHERE e.event_id = ?",
                    (bytes.fromhex(event_id),),  # ids are kept as their 32 bytes
                ).fetchone()[0]
            )
        finally:
            db.close()

    def __enter__(self) -> bytes:
        return self.wire

    def __exit__(self, *exc: object) -> None:
        return None


def test_status_and_ready_show_each_coops_replication(cluster: Cluster) -> None:
    wait_quiet(cluster.nodes)
    n1 = cluster.node("n1")
    proc = subprocess.run(
        [cluster.icn, "node", "status", "--data-dir", str(n1.data), "--json"],
        env=cluster.env, capture_output=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode()
    status = json.loads(proc.stdout)
    assert status["nats"]["connected"] and status["nats"]["url"] == cluster.nats.url
    row = status["coops"][COOP]
    assert row["size"] == len(log_ids(n1.data, COOP))
    assert row["stream_seq"] >= row["size"]
    assert (row["consumer_lag"], row["outbox_backlog"], row["parked"]) == (0, 0, 0)
    assert row["quarantined"] == 1
    text = subprocess.run(
        [cluster.icn, "node", "status", "--data-dir", str(n1.data)],
        env=cluster.env, capture_output=True, timeout=60, text=True,
    ).stdout  # fmt: skip
    assert COOP in text and "connected" in text
    ready = n1.ready()
    assert ready["status"] == "ready" and ready["replication"]["connected"]
    assert ready["replication"]["coops"][COOP]["quarantined"] == 1


def test_the_subscriber_example_follows_and_verifies_ledger_events(cluster: Cluster) -> None:
    n1 = cluster.node("n1")
    ledger = _ledger_events(n1.data)
    proc = subprocess.run(
        [sys.executable, str(REPO / "examples" / "subscriber.py"), cluster.nats.url, COOP,
         str(ledger)],
        capture_output=True, text=True, timeout=60,
        env=dict(os.environ, NATS_USER=READER.user, NATS_PASSWORD=READER.password),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    verified = [line for line in lines if line.startswith("verified ledger.")]
    rejected = [line for line in lines if line.startswith("REJECTED")]
    assert len(verified) == ledger and len(verified) + len(rejected) == len(lines)
    assert len(rejected) == 1 and "bad-signature" in rejected[0]  # the malicious test's forgery


def _ledger_events(data: Path) -> int:
    import sqlite3

    db = sqlite3.connect(f"file:{data / 'icn.sqlite3'}?mode=ro", uri=True)
    try:
        return int(
            db.execute(
                "SELECT COUNT(*) FROM log_entries WHERE coop = ? AND type LIKE 'ledger.%'",
                (COOP,),
            ).fetchone()[0]
        )
    finally:
        db.close()


# -- a node's own nats-server ----------------------------------------------------------------


def _local_nats_pid(data: Path) -> int:
    (ports,) = list((data / "nats").glob("nats-server_*.ports"))
    return int(ports.stem.rsplit("_", 1)[1])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "Z" not in _proc_state(pid)


def _proc_state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return "gone"


def _wait(check: Any, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_without_a_nats_url_the_node_runs_and_stops_its_own_nats_server(
    tmp_path: Path, icn_path: str, icn_process_env: dict
) -> None:
    data = tmp_path / "solo"
    script = CoopScript("solo-coop")
    founding = write_jsonl(tmp_path / "f.jsonl", [script.found(), script.pay("alice", "bob", 5)])
    env = dict(icn_process_env, **QUIET_ENV)
    run_icn(icn_path, env, "node", "init", "--data-dir", str(data))
    run_icn(icn_path, env, "log", "import", str(founding), "--data-dir", str(data))
    node = RunningNode(icn_path, env, data).start()
    base = node.base

    def ready() -> dict[str, Any]:
        return dict(httpx.get(f"{base}/v1/ready", timeout=5).json())

    _wait(lambda: (ready().get("replication") or {}).get("coops", {}).get("solo-coop", {})
          .get("outbox_backlog") == 0)  # fmt: skip
    rep = ready()["replication"]
    assert rep["local_server"] and rep["connected"]
    assert rep["coops"]["solo-coop"]["stream_seq"] == 2
    pid = _local_nats_pid(data)
    assert _alive(pid)
    # SIGTERM: the node stops its nats-server by PID and exits 0.
    node.stop()
    _wait(lambda: not _alive(pid))
    # SIGKILL: the server dies with its node (PR_SET_PDEATHSIG), and the next start is clean.
    node.start()
    orphan = _local_nats_pid(data)
    assert node.proc is not None
    node.proc.kill()
    node.proc.wait(10)
    _wait(lambda: not _alive(orphan))
    node.start()
    _wait(lambda: (ready().get("replication") or {}).get("connected") is True)
    assert ready()["replication"]["coops"]["solo-coop"]["stream_seq"] == 2  # same store
    # NATS gone: /v1/ready answers 503 with a problem naming it; the node still stops cleanly.
    own = _local_nats_pid(data)
    os.kill(own, signal.SIGKILL)
    _wait(lambda: httpx.get(f"{base}/v1/ready", timeout=5).status_code == 503)
    problem = httpx.get(f"{base}/v1/ready", timeout=5).json()
    assert problem["code"] == "replication-unavailable" and "NATS" in problem["detail"]
    assert node.stop() < 10


def test_the_nodes_own_nats_refuses_strangers_and_takes_a_reader_added_while_it_runs(
    tmp_path: Path, icn_path: str, icn_process_env: dict
) -> None:
    data = tmp_path / "guarded"
    script = CoopScript("guarded-coop")
    founding = write_jsonl(tmp_path / "f.jsonl", [script.found(), script.pay("alice", "bob", 5)])
    env = dict(icn_process_env, **QUIET_ENV)
    run_icn(icn_path, env, "node", "init", "--data-dir", str(data))
    run_icn(icn_path, env, "log", "import", str(founding), "--data-dir", str(data))
    node = RunningNode(icn_path, env, data).start()
    try:
        _wait(lambda: bool(_get_ok(f"{node.base}/v1/ready")))
        added = subprocess.run(
            [icn_path, "nats", "user", "add", "ledger-feed", "--read-only", "--data-dir",
             str(data), "--json"],
            env=env, capture_output=True, timeout=60,
        )  # fmt: skip
        assert added.returncode == 0, added.stderr.decode()
        reader = json.loads(added.stdout)
        assert reader["reloaded"] and reader["url"]
        url, user, password = reader["url"], reader["user"], reader["password"]

        async def probe() -> None:
            with pytest.raises((nats.errors.Error, OSError)):
                await nats.connect(url, allow_reconnect=False, connect_timeout=2)
            errors: list[str] = []

            async def on_error(exc: Exception) -> None:
                errors.append(str(exc))

            for _ in range(50):  # the reload takes effect within moments
                try:
                    nc = await nats.connect(
                        url, user=user, password=password, allow_reconnect=False,
                        error_cb=on_error,
                    )  # fmt: skip
                    break
                except (nats.errors.Error, OSError):
                    await asyncio.sleep(0.1)
            else:
                raise AssertionError("the node's server never accepted the new reader")
            js = nc.jetstream()
            sub = await js.subscribe("icn.guarded-coop.>", ordered_consumer=True)
            assert [await sub.next_msg(timeout=5) for _ in range(2)]
            with pytest.raises((nats.errors.Error, TimeoutError)):
                await js.publish("icn.guarded-coop.ledger.EntryRecorded.zX", b"{}", timeout=1)
            assert (await js.stream_info("ICN_guarded-coop")).state.last_seq == 2
            await nc.close()

        asyncio.run(asyncio.wait_for(probe(), 60))
    finally:
        node.stop()
    assert "password" not in node.log.read_text(errors="replace").lower()


def test_no_replication_runs_without_nats(
    tmp_path: Path, icn_path: str, icn_process_env: dict
) -> None:
    data = tmp_path / "embedded"
    run_icn(icn_path, icn_process_env, "node", "init", "--data-dir", str(data))
    port = free_port()
    proc = subprocess.Popen(
        [icn_path, "node", "run", "--data-dir", str(data), "--port", str(port),
         "--no-replication"],
        env=icn_process_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        _wait(lambda: _get_ok(f"http://127.0.0.1:{port}/v1/ready"), 30)
        ready = httpx.get(f"http://127.0.0.1:{port}/v1/ready").json()
        assert ready.get("replication") is None
        assert not (data / "nats").exists()
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err.decode()
    assert b"replication: off" in out


def test_an_unreachable_nats_makes_ready_503_and_the_node_still_stops_at_once(
    tmp_path: Path, icn_path: str, icn_process_env: dict
) -> None:
    data = tmp_path / "lonely"
    run_icn(icn_path, icn_process_env, "node", "init", "--data-dir", str(data))
    env = dict(icn_process_env, ICN_NATS_URL=f"nats://127.0.0.1:{free_port()}", ICN_SERVE="x-coop")
    node = RunningNode(icn_path, env, data).start()
    r = httpx.get(f"{node.base}/v1/ready", timeout=5)
    assert r.status_code == 503 and r.json()["code"] == "replication-unavailable"
    assert node.stop() < 5


def _get_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


# -- a 3-server JetStream cluster --------------------------------------------------------------


@pytest.mark.slow
def test_two_nodes_on_a_three_server_cluster_keep_working_when_one_server_dies(
    tmp_path: Path, icn_path: str, icn_process_env: dict
) -> None:
    coop = "cluster-coop"
    nats_cluster = LocalNatsCluster(tmp_path / "nats-cluster", size=3, users=USERS).start()
    nodes: list[RunningNode] = []
    try:
        script = CoopScript(coop)
        founding = write_jsonl(tmp_path / "f.jsonl", [script.found(MEMBERS, policy=POLICY)])
        env = dict(
            icn_process_env,
            **QUIET_ENV,
            **AUTH_ENV,
            ICN_NATS_URL=",".join(nats_cluster.urls),
            ICN_SERVE=coop,
            ICN_RATE_AUTH_BURST="100000",
            ICN_RATE_AUTH_PER_S="100000",
        )
        for name in ("a", "b"):
            run_icn(icn_path, env, "node", "init", "--data-dir", str(tmp_path / name))
            nodes.append(RunningNode(icn_path, env, tmp_path / name))
        run_icn(icn_path, env, "log", "import", str(founding), "--data-dir", str(tmp_path / "a"))
        _start_all(nodes)
        clients = [ReplNode(n, node, coop) for n, node in zip(("a", "b"), nodes, strict=True)]
        wallets = wallets_from_log(coop, [], {n: key_for(n) for n in ("alice", "bob", "carol")})
        alice, bob, carol = (wallets[script.did(n)] for n in ("alice", "bob", "carol"))
        load = Load(clients, alice, [bob, carol], workers=2, newcomer_key=key_for)

        def stream() -> tuple[int, str]:
            async def ask() -> tuple[int, str]:
                nc = await nats.connect(nats_cluster.urls, **AS_NODE)
                info = await nc.jetstream().stream_info(f"ICN_{coop}")
                await nc.close()
                assert info.cluster is not None
                return int(info.config.num_replicas or 0), str(info.cluster.leader)

            return asyncio.run(asyncio.wait_for(ask(), 20))

        load.run_for(2)
        wait_quiet(clients, timeout=60, coop=coop)
        replicas, leader = stream()
        assert replicas == 3
        before = len(load.accepted)
        assert before > 20
        # The stream's leader goes: R3 keeps a quorum, a new leader is elected, writes resume.
        nats_cluster.servers[int(leader.removeprefix("n")) - 1].stop()
        load.run_for(4)
        assert len(load.accepted) > before + 20, load.outcomes
        wait_quiet(clients, timeout=60, coop=coop)
        ids = [log_ids(n.data, coop) for n in nodes]
        assert set(ids[0]) == set(ids[1]) and set(load.accepted) <= set(ids[0])
        # reads on the second node serve what was written on the first, and back
        r = clients[1].http.get(
            f"/v1/coops/{coop}/events", params={"after": -1, "limit": 1000},
            headers={"Authorization": f"Bearer {clients[1].token(carol)}"},
        )  # fmt: skip
        assert r.status_code == 200 and len(r.json()["events"]) == len(ids[1])
        for c in clients:
            c.close()
    finally:
        for n in nodes:
            if n.proc is not None and n.proc.poll() is None:
                n.stop()
        nats_cluster.stop()
