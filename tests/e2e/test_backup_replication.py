"""A backup taken while a replicating node takes writes, restored, then caught up from JetStream.

Node A (``icn node run``, replicating through a real ``nats-server -js``) takes
payments over HTTP from a background thread; ``icn backup`` runs in the middle
of that load; A takes more payments after it. ``icn restore`` builds a new data
dir from the file and audits every coop. The restored node, started on the same
NATS, must catch up from the stream to exactly A's log: the same size and root;
then a payment posted to it reaches A.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from support.coops import GENEROUS_POLICY, CoopScript, key_for, write_jsonl
from support.nodes import RunningNode, run_icn
from support.replication import ReplNode, Wallet, wallets_from_log

from icn.infrastructure.replication.nats_auth import NatsUser, NatsUsers, new_password
from icn.infrastructure.replication.nats_server import LocalNatsServer
from icn.infrastructure.store.database import parse_database_url
from icn.infrastructure.store.event_store import SqlEventStore

COOP = "backup-coop"
MEMBERS = {"alice": ["admin"], "bob": [], "carol": [], "dave": [], "zoe": []}
NODE_USER = NatsUser("icn-node", new_password())
QUIET_ENV = {
    "ICN_CHECKPOINT_EVERY": "10000000",
    "ICN_CHECKPOINT_SECONDS": "86400",
    "ICN_RATE_DID_PER_S": "100000",
    "ICN_RATE_DID_BURST": "100000",
    "ICN_RATE_IP_PER_S": "100000",
    "ICN_RATE_IP_BURST": "100000",
}


def _roots(data_dir: Path, url: str | None = None) -> dict[str, tuple[int, str]]:
    store = SqlEventStore(parse_database_url(url, data_dir))
    try:
        return {c: (n, store.root(c, n).hex()) for c in store.coops() for n in [store.tree_size(c)]}
    finally:
        store.close()


class Payments:
    """Payers posting payments to one node, one thread each, until stopped."""

    def __init__(self, node: ReplNode, payers: list[Wallet], payee: str) -> None:
        self.node, self.payers, self.payee = node, payers, payee
        self.outcomes: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.stop_flag = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(w,), daemon=True) for w in payers]

    def start(self) -> Payments:
        for t in self.threads:
            t.start()
        return self

    def accepted(self) -> int:
        with self.lock:
            return self.outcomes["ok"]

    def wait_for(self, n: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while self.accepted() < n:
            assert time.monotonic() < deadline, dict(self.outcomes)
            time.sleep(0.05)

    def stop(self) -> None:
        self.stop_flag.set()
        for t in self.threads:
            t.join(timeout=30)

    def _run(self, wallet: Wallet) -> None:
        amount = 1
        while not self.stop_flag.is_set():
            event = wallet.pay(self.payee, amount)
            outcome = self.node.post(wallet, event)
            if outcome in ("ok", "duplicate"):
                wallet.commit(event)
                amount += 1
            else:
                time.sleep(0.05)  # e.g. stream-unavailable while the coop's gates open
            with self.lock:
                self.outcomes[outcome] += 1


def test_a_backup_under_load_restores_audits_clean_and_catches_up_from_jetstream(
    tmp_path: Path, icn_path: str, icn_process_env: dict[str, str]
) -> None:
    _story(tmp_path, icn_path, icn_process_env, None, None)


@pytest.mark.postgres
def test_the_same_on_postgresql(
    tmp_path: Path, icn_path: str, icn_process_env: dict[str, str], pg_cluster: Any
) -> None:
    """Node A on PostgreSQL (its backup: each coop's log up to its size at the start),
    restored into another PostgreSQL database, caught up from the same JetStream."""
    names = [pg_cluster.create_database() for _ in range(2)]
    try:
        _story(tmp_path, icn_path, icn_process_env, *(pg_cluster.url(n) for n in names))
    finally:
        for n in names:
            pg_cluster.drop_database(n)


def _story(
    tmp_path: Path, icn_path: str, base_env: dict[str, str], a_url: str | None, r_url: str | None
) -> None:
    server = LocalNatsServer(tmp_path / "nats", users=NatsUsers(node=NODE_USER)).start()
    nodes: list[RunningNode] = []
    try:
        common = base_env | QUIET_ENV | {
            "ICN_NATS_URL": server.url, "ICN_SERVE": COOP,
            "ICN_NATS_USER": NODE_USER.user, "ICN_NATS_PASSWORD": NODE_USER.password,
        }  # fmt: skip
        env = common | ({"ICN_DATABASE_URL": a_url} if a_url else {})
        r_env = common | ({"ICN_DATABASE_URL": r_url} if r_url else {})
        script = CoopScript(COOP)
        events = [script.found(MEMBERS, policy=GENEROUS_POLICY, name="Backup coop")]
        a_dir, r_dir, file = tmp_path / "a", tmp_path / "restored", tmp_path / "a.backup"
        run_icn(icn_path, env, "node", "init", "--data-dir", str(a_dir))
        founding = write_jsonl(tmp_path / "founding.jsonl", events)
        run_icn(icn_path, env, "log", "import", str(founding), "--data-dir", str(a_dir))
        a = RunningNode(icn_path, env, a_dir).start()
        nodes.append(a)
        wallets = wallets_from_log(COOP, events, {n: key_for(n) for n in MEMBERS})
        payers = [wallets[script.did(n)] for n in ("alice", "bob", "carol", "dave")]
        load = Payments(ReplNode("a", a, COOP), payers, script.did("zoe")).start()
        try:
            load.wait_for(40)
            started = time.monotonic()
            proc = subprocess.run(
                [icn_path, "backup", "--to", str(file), "--data-dir", str(a_dir), "--json"],
                env=env, capture_output=True, timeout=120, check=True,
            )  # fmt: skip
            backup_s = time.monotonic() - started
            taken = json.loads(proc.stdout)
            at_backup = load.accepted()
            load.wait_for(at_backup + 80)  # writes the backup does not hold
        finally:
            load.stop()
        snap = {c["coop"]: (c["size"], c["root"]) for c in taken["coops"]}
        assert set(snap) == {COOP}
        live = _roots(a_dir, a_url)
        assert snap[COOP][0] >= 1 + 40 and live[COOP][0] > snap[COOP][0] + 60, (snap, live)

        started = time.monotonic()
        proc = subprocess.run(
            [icn_path, "restore", str(file), "--data-dir", str(r_dir), "--json"],
            env=r_env, capture_output=True, timeout=120,
        )  # fmt: skip
        restore_s = time.monotonic() - started
        assert proc.returncode == 0, proc.stderr.decode()
        report = json.loads(proc.stdout)
        assert report["passed"] and [c["passed"] for c in report["coops"]] == [True], report
        assert _roots(r_dir, r_url) == snap  # exactly the snapshot, before any catch-up

        started = time.monotonic()
        r = RunningNode(icn_path, r_env, r_dir).start()
        nodes.append(r)
        deadline = time.monotonic() + 90
        while _roots(r_dir, r_url) != live:
            assert time.monotonic() < deadline, (_roots(r_dir, r_url), live)
            time.sleep(0.2)
        catch_up_s = time.monotonic() - started
        assert _roots(a_dir, a_url) == live  # A took nothing new meanwhile
        # The restored node takes writes again (sequenced through the stream), and A gets them.
        on_r = ReplNode("r", r, COOP)
        payment = payers[0].pay(script.did("zoe"), 7)
        assert on_r.post(payers[0], payment) == "ok"
        deadline = time.monotonic() + 30
        while (now := _roots(a_dir, a_url)) != _roots(r_dir, r_url) or now[COOP][0] != live[COOP][
            0
        ] + 1:
            assert time.monotonic() < deadline, (now, _roots(r_dir, r_url))
            time.sleep(0.1)
        on_r.close()
        live = _roots(a_dir, a_url)
        r.stop()
        nodes.remove(r)
        proc = subprocess.run(
            [icn_path, "audit", "verify", "--coop", COOP, "--data-dir", str(r_dir), "--json"],
            env=r_env, capture_output=True, timeout=120, check=True,
        )  # fmt: skip
        audit = json.loads(proc.stdout)
        assert audit["passed"] and audit["size"] == live[COOP][0]
        assert audit["root"] == live[COOP][1]
        print(
            f"{'PostgreSQL' if a_url else 'SQLite'}: backup of {snap[COOP][0]} events"
            f" under load in {backup_s:.2f} s,"
            f" restore+audit {restore_s:.2f} s, catch-up of {live[COOP][0] - snap[COOP][0]}"
            f" events in {catch_up_s:.2f} s (outcomes {dict(load.outcomes)})"
        )
    finally:
        for n in nodes:
            n.stop()
        server.stop()
