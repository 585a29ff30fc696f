"""``icn dev cluster``, and chaos on the cluster it starts.

The command itself runs as a person runs it (a subprocess, with ``--postgres``):
it prints every URL and credential file and no secret, the PostgreSQL node
serves the demo coop like the others, and Ctrl-C stops every process it
started and removes its temporary folder.

The chaos test drives :class:`DevCluster`, the class the command is a thin
shell over: members of the demo coop post signed payments to random nodes
while the stream's NATS leader is killed (``kill -9``), then a node, and both
come back. Afterwards every node holds every acknowledged payment, and the
nodes agree on ids, chain heads, coop records, log roots and balances; each
node's own checkpoints verify. The longest pause between acknowledged writes
while the leader was gone is printed (docs/operations.md, Chaos run), not
asserted: it depends on the machine's load.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import select
import signal
import subprocess
import sys
import threading
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
import sqlalchemy
from support.replication import ReplNode, Wallet, audit, chain_heads

from icn.infrastructure.dev_cluster import DEMO_COOP, DevCluster
from icn.infrastructure.keystore import Keystore

REPO = Path(__file__).resolve().parents[2]
LOAD_ENV = {
    "ICN_RATE_DID_PER_S": "100000", "ICN_RATE_DID_BURST": "100000",
    "ICN_RATE_IP_PER_S": "100000", "ICN_RATE_IP_BURST": "100000",
    "ICN_RATE_AUTH_PER_S": "100000", "ICN_RATE_AUTH_BURST": "100000",
    # The demo coop publishes trust epochs, so its members are limited by their class
    # (Isolated 10/s …); on a quiet machine the load's retries during an election exceed it.
    **{
        f"ICN_RATE_{c}_{k}": "100000"
        for c in ("ISOLATED", "KNOWN", "PARTNER", "FEDERATED")
        for k in ("PER_S", "BURST")
    },
    # Every node checkpoints on its own within seconds, during the chaos too.
    "ICN_CHECKPOINT_EVERY": "100000", "ICN_CHECKPOINT_SECONDS": "2",
}  # fmt: skip
MAX_WRITES = 2000
"""The load is bounded: at most this many acknowledged payments, whatever the timings (a
phase waits for 30 more; a run takes a few hundred)."""


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("ICN_")} | LOAD_ENV


# -- the command -------------------------------------------------------------------------------


def _children(pid: int) -> set[int]:
    """Processes whose parent is ``pid`` (Linux /proc)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _read_until(proc: subprocess.Popen[bytes], marker: str, timeout: float) -> str:
    assert proc.stdout is not None
    text, deadline = "", time.monotonic() + timeout
    while marker not in text:
        left = deadline - time.monotonic()
        assert left > 0 and proc.poll() is None, f"no {marker!r} (exit {proc.poll()}):\n{text}"
        if select.select([proc.stdout], [], [], min(left, 1))[0]:
            chunk = os.read(proc.stdout.fileno(), 65536)
            text += chunk.decode(errors="replace")
    return text


def test_icn_dev_cluster_with_postgres_serves_the_demo_and_ctrl_c_leaves_nothing() -> None:
    reference = (REPO / "docs" / "cli.md").read_text()
    assert "icn dev cluster" in reference and "--postgres" in reference
    icn = str(Path(sys.executable).with_name("icn"))
    proc = subprocess.Popen(
        [icn, "dev", "cluster", "--nodes", "2", "--port", "0", "--postgres"], env=_env(),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        text = _read_until(proc, "cluster ready", 150)
        base = Path(text.split("ICN dev cluster in ", 1)[1].split(" ", 1)[0])
        apis = [line.split()[1] for line in text.splitlines() if "API:" in line]
        # Two nodes keep it short: node2, on PostgreSQL, gets the coop seeded on node1.
        assert len(apis) == 2 and "node2 (PostgreSQL" in text, text
        assert text.count("nats://127.0.0.1:") == 3 and "dashboard: http://127.0.0.1:" in text
        for name in ("passphrase", "jwt-secret", "nats-node.password", "nats-users.json"):
            assert str(base / name) in text
        for secret in ("passphrase", "jwt-secret", "nats-node.password"):
            assert (base / secret).read_text().strip() not in text, f"{secret} was printed"
        sizes = set()
        for api in apis:
            ready = httpx.get(f"{api}/ready", timeout=10).json()
            assert ready["replication"]["connected"], ready
            sizes.add(ready["coops"][DEMO_COOP]["size"])
        assert len(sizes) == 1 and sizes.pop() > 400  # the demo, served by both
        metrics = [line.split()[1] for line in text.splitlines() if "metrics:" in line]
        assert len(set(metrics)) == 2, text  # each node its own /metrics, none left without
        for url in metrics:  # the lag has a sample once JetStream's consumer info is in
            deadline = time.monotonic() + 30
            while "# TYPE icn_replication_lag_events gauge" not in httpx.get(url, timeout=10).text:
                assert time.monotonic() < deadline, f"no replication lag at {url}"
                time.sleep(0.5)
        started = _children(proc.pid)
        postmaster = base / "postgres" / "data" / "postmaster.pid"
        started.add(int(postmaster.read_text().split()[0]))
        assert len(started) == 6, started  # 3 nats-server, 2 nodes, postgres
    finally:
        proc.send_signal(signal.SIGINT)
        rest = proc.communicate(timeout=90)[0].decode(errors="replace")
    assert proc.returncode == 0, rest
    assert "Traceback" not in rest and "stopped; removed" in rest, rest
    assert not [pid for pid in started if _alive(pid)], "a process outlived the cluster"
    assert not base.exists()


# -- chaos ----------------------------------------------------------------------------------------


@dataclass
class _Served:
    """What :class:`ReplNode` needs of a node: its URL and data dir."""

    base: str
    data: Path


class PaymentLoad:
    """Members paying each other small amounts on random live nodes, one thread per chain
    group; every acknowledged payment is kept with the moment its answer came."""

    def __init__(self, nodes: list[ReplNode], wallets: list[Wallet], workers: int = 3) -> None:
        self.nodes = nodes
        self.dids = [w.did for w in wallets]
        self.groups = [wallets[i::workers] for i in range(workers)]
        self.acked: list[tuple[float, str]] = []
        self.outcomes: dict[str, int] = {}
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> PaymentLoad:
        self._threads = [
            threading.Thread(target=self._work, args=(i,), daemon=True)
            for i in range(len(self.groups))
        ]
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(60)
        assert not self.errors, (self.errors[:3], self.outcomes)

    def _work(self, index: int) -> None:
        rng = random.Random(index)
        try:
            while not self._stop.is_set() and len(self.acked) < MAX_WRITES:
                wallet = rng.choice(self.groups[index])
                payee = rng.choice([d for d in self.dids if d != wallet.did])
                self._submit(wallet, wallet.pay(payee, rng.randint(1, 25)), rng)
                time.sleep(0.01)
        except BaseException as exc:  # surfaced by stop()
            self.errors.append(exc)

    def _submit(self, wallet: Wallet, event: Any, rng: random.Random) -> None:
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline:
            node = rng.choice([n for n in self.nodes if n.up])
            outcome = node.post(wallet, event)
            with self._lock:
                self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
            if outcome in ("ok", "duplicate"):
                wallet.commit(event)
                with self._lock:
                    self.acked.append((time.monotonic(), event.id))
                return
            if outcome in ("down", "stream-unavailable", "gap", "unknown-member"):
                time.sleep(0.02)  # gone, or NATS electing: post the same bytes again
                continue
            if outcome == "credit-limit-exceeded":
                return  # judged in stream order: a wallet drops the payment, its chain unmoved
            raise AssertionError(f"{node.name} refused {event.type}: {outcome}")
        raise AssertionError(f"no node took {event.id} within 45 s")

    def count(self) -> int:
        with self._lock:
            return len(self.acked)

    def more(self, than: int) -> bool:
        """At least 30 payments acknowledged after the first ``than`` (or the bound reached)."""
        return self.count() >= min(than + 30, MAX_WRITES)


def _wallets(cluster: DevCluster) -> list[Wallet]:
    """The demo members' keys (custodial in node1's keystore) and their chains' heads."""
    data = cluster.files.node(1)
    passphrase = cluster.files.passphrase.read_text().strip()
    keys = Keystore(data / "keys")
    heads = chain_heads(data, DEMO_COOP)
    wallets = []
    for info in keys.list():
        # Dev's account is frozen in the demo; the coop's own key is no member.
        if not info.name.startswith(f"{DEMO_COOP}-") or info.name == f"{DEMO_COOP}-dev":
            continue
        seq, prev = heads.get(info.did, (0, None))
        wallets.append(Wallet(DEMO_COOP, keys.unlock(info.name, passphrase), seq=seq, prev=prev))
    assert len(wallets) == 19, [w.did for w in wallets]
    return wallets


def _stream(cluster: DevCluster) -> tuple[int, int]:
    """The coop's stream, which must be R3: the index of the NATS server leading it (its
    name is ``n<index+1>``) and its last sequence."""
    password = cluster.files.nats_password.read_text().strip()

    async def ask() -> tuple[int, str, int]:
        nc = await nats.connect(cluster.nats_urls, user="icn-node", password=password)
        try:
            info = await nc.jetstream().stream_info(f"ICN_{DEMO_COOP}")
        finally:
            await nc.close()
        assert info.cluster is not None and info.cluster.leader
        return int(info.config.num_replicas or 0), info.cluster.leader, info.state.last_seq

    replicas, leader, last = asyncio.run(asyncio.wait_for(ask(), 20))
    assert replicas == 3
    return int(leader.removeprefix("n")) - 1, last


def _stream_leader(cluster: DevCluster) -> int:
    return _stream(cluster)[0]


@dataclass
class _Held:
    """What one node's store holds of the demo coop (SQLite file or PostgreSQL alike)."""

    ids: list[str]
    """Event ids in log order."""
    heads: dict[str, tuple[int, str]]
    """Every author's (seq, id) head."""
    state: dict[tuple[str, str], bytes]
    """The coop rules' records (members, accounts, …)."""


def _store_url(data: Path) -> str:
    """A node's database: the one its icn.toml names (the PostgreSQL node), else its file."""
    config = data / "icn.toml"
    url = tomllib.loads(config.read_text()).get("database_url") if config.exists() else None
    return str(url) if url else f"sqlite:///{data / 'icn.sqlite3'}"


def _held(data: Path) -> _Held:
    engine = sqlalchemy.create_engine(_store_url(data))
    coop = {"coop": DEMO_COOP}
    try:
        with engine.connect() as db:
            ids = db.execute(
                sqlalchemy.text(
                    "SELECT event_id FROM log_entries WHERE coop = :coop ORDER BY leaf_index"
                ),
                coop,
            ).all()
            heads = db.execute(
                # Authors by DID: each store numbers its authors in the order it met them.
                sqlalchemy.text(
                    "SELECT a.did, e.seq, e.event_id FROM log_entries e"
                    " JOIN log_authors a ON a.id = e.author WHERE e.coop = :coop AND e.seq ="
                    " (SELECT MAX(seq) FROM log_entries f"
                    "  WHERE f.coop = e.coop AND f.author = e.author)"
                ),
                coop,
            ).all()
            state = db.execute(
                sqlalchemy.text("SELECT kind, key, value FROM coop_state WHERE coop = :coop"), coop
            ).all()
    finally:
        engine.dispose()
    return _Held(
        [bytes(i).hex() for (i,) in ids],
        {a: (int(q), bytes(i).hex()) for a, q, i in heads},
        {(k, key): bytes(v) for k, key, v in state},
    )


def _wait_for(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _settled(cluster: DevCluster) -> int:
    """Until the coop stops growing (nodes checkpoint within 2 s of their last event)."""
    size = cluster.wait_replicated(90)
    while True:
        time.sleep(3)
        again = cluster.wait_replicated(90)
        if again == size:
            return size
        size = again


def _longest_gap(times: list[float], start: float, end: float) -> float:
    """The longest pause between acknowledged writes in [start, end]."""
    inside = [start, *(t for t in times if start < t < end)]
    nxt = [t for t in times if t >= end]
    inside.append(nxt[0] if nxt else end)
    return max(b - a for a, b in itertools.pairwise(inside))


ENGINES = os.environ.get("CHAOS_ENGINES", "postgres").split(",")
"""Where node3 (the node killed) keeps its store: ``postgres`` (``icn dev cluster
--postgres``: node3 on PostgreSQL, node1 and node2 on SQLite), ``sqlite`` (all three on
SQLite). The suite runs one chaos test, on PostgreSQL, which has SQLite beside it;
``CHAOS_ENGINES=sqlite,postgres`` runs both."""


@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES)
def test_killing_the_stream_leader_and_a_node_mid_load_loses_no_acknowledged_write(
    tmp_path: Path, engine: str
) -> None:
    began = time.monotonic()
    phases: list[str] = []

    def phase(what: str) -> None:
        phases.append(f"{time.monotonic() - began:.1f}s {what}")

    postgres = engine == "postgres"
    folder = tmp_path / "cluster"
    cluster = DevCluster(folder, http_port=0, environ=_env(), postgres=postgres).start()
    phase("cluster started")
    restarted: DevCluster | None = None
    try:
        assert cluster.nats is not None
        assert cluster.nodes[2].database == ("PostgreSQL" if postgres else "SQLite")
        served = [
            ReplNode(n.name, _Served(n.base_url, n.data_dir), DEMO_COOP)  # type: ignore[arg-type]
            for n in cluster.nodes
        ]
        wallets = _wallets(cluster)
        load = PaymentLoad(served, wallets).start()
        try:
            _wait_for(lambda: load.count() >= 40, 60, "the first writes")
            leader = cluster.nats.servers[_stream_leader(cluster)]
            victim, victim_client = cluster.nodes[2], served[2]
            assert leader.pid is not None
            before = load.count()
            os.kill(leader.pid, signal.SIGKILL)
            killed_at = time.monotonic()
            phase(f"NATS stream leader killed at {before} acks")
            # Writes go on through the survivors once a new leader is elected.
            _wait_for(lambda: load.more(before), 60, "writes after the leader's loss")
            node_killed_at = time.monotonic()
            victim_client.up = False
            victim.kill()
            mid = load.count()
            phase(f"node3 killed at {mid} acks")
            _wait_for(lambda: load.more(mid), 60, "writes on two nodes")
            # node3 first, while its cluster counts two servers: the stream must stay R3.
            victim.start()
            victim_client.up = True
            phase("node3 back")
            leader.start()  # same ports, same store: it catches up as a follower
            back = load.count()
            phase(f"NATS server back at {back} acks")
            _wait_for(lambda: load.more(back), 60, "writes after both came back")
        finally:
            load.stop()
        phase("load stopped")
        times = sorted(t for t, _ in load.acked)
        stall = _longest_gap(times, killed_at, node_killed_at)
        print(
            f"\nchaos ({engine}): {len(times)} payments acknowledged, outcomes {load.outcomes}; "
            f"write stall during the NATS leader loss {stall:.2f} s; "
            f"longest pause in the whole run {_longest_gap(times, times[0], times[-1]):.2f} s; "
            f"load average {os.getloadavg()[0]:.2f}"
        )
        size = _settled(cluster)
        phase(f"converged at {size} events")
        _, stream_last = _stream(cluster)  # still R3
        acked = {event_id for _, event_id in load.acked}
        datas = [n.data_dir for n in cluster.nodes]
        held = [_held(d) for d in datas]
        for h in held:
            assert len(h.ids) == len(set(h.ids)) == size, "a node holds an event twice or lacks one"
            assert set(h.ids) == set(held[0].ids), "the nodes hold different events"
        assert not acked - set(held[0].ids), (
            f"{len(acked - set(held[0].ids))} acknowledged writes lost"
        )
        assert all(h.heads == held[0].heads for h in held), "chain heads differ"
        assert all(h.state == held[0].state for h in held), (
            "coop records (members, accounts) differ"
        )
        env = _env() | {"ICN_PASSPHRASE_FILE": str(cluster.files.passphrase)}
        icn = str(Path(sys.executable).with_name("icn"))
        with ThreadPoolExecutor(3) as pool:  # three processes: their start-ups overlap
            reports = list(pool.map(lambda d: audit(icn, env, d, DEMO_COOP), datas))
        for name, report in zip(("node1", "node2", "node3"), reports, strict=True):
            assert report["passed"] and report["stored_tree_matches"], (name, report["problems"])
            own = [c for c in report["checkpoints"] if c["own"]]
            assert own and all(c["matches"] for c in own), (name, report["checkpoints"])
        assert all(r["balances"] == reports[0]["balances"] for r in reports)
        if len({r["root"] for r in reports}) != 1:
            # Every node applies the stream in its order, so the logs are the same list.
            # This failed in about half the runs before the consumer started over in
            # stream order after a crash (infrastructure/replication/consumer.py).
            logs = [h.ids for h in held]
            part = next(i for i, ids in enumerate(zip(*logs, strict=True)) if len(set(ids)) > 1)
            raise AssertionError(
                f"log roots differ: the orders part at leaf {part} of {size}: "
                f"{[ids[part][:12] for ids in logs]}"
            )
        assert sum(reports[0]["balances"]["hours"].values()) == 0
        phase("audited")
        codes = cluster.stop()
        assert codes == {"node1": 0, "node2": 0, "node3": 0}, codes
        assert not cluster.pids()
        # `icn dev cluster --data-dir` again on the same folder: the NATS servers come back
        # with their streams, the nodes with their stores (nothing seeded twice), and the
        # cluster takes writes again where it stopped.
        restarted = DevCluster(folder, http_port=0, environ=_env(), postgres=postgres).start()
        phase("restarted on the same folder")
        again = [_held(d) for d in datas]
        assert all(h.ids[:size] == held[0].ids for h in again), "a node lost or reordered events"
        assert _stream(restarted)[1] >= stream_last, "the stream lost messages"
        wallet, other = wallets[:2]  # their chains' heads as the load left them
        node3 = restarted.nodes[2]
        client = ReplNode("node3", _Served(node3.base_url, datas[2]), DEMO_COOP)  # type: ignore[arg-type]
        payment = wallet.pay(other.did, 1)
        assert client.post(wallet, payment) == "ok"
        grown = restarted.wait_replicated(60)
        # The payment and perhaps a checkpoint per node; the demo seeded again would be ~400.
        assert size < grown < size + 10, (size, grown)
        assert all(payment.id in _held(d).ids for d in datas)
        phase(f"took a write after the restart ({grown} events)")
    finally:
        codes = cluster.stop()
        again_codes = restarted.stop() if restarted is not None else {}
        print("phases:", "; ".join(phases))
    assert set(codes.values()) <= {0, None} and set(again_codes.values()) == {0}, again_codes
    for node in cluster.nodes:
        assert "Traceback" not in node.log_path.read_text(errors="replace"), node.name
    assert not cluster.pids() and not (restarted is not None and restarted.pids())
