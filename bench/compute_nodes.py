"""Paid compute end to end on two executor nodes: tasks settled per second, submit→settled.

Two real ``icn node run --executor`` processes replicate one coop through one
``nats-server -js`` (each its own SQLite store); both are registered executors,
so every task (2 replicas) runs once on each. A member uploads the module to
node A (node B reads its bytes from the coop's bucket) and submits N tasks over
HTTP (``--batch`` to a request, one client); each node's executor thread polls its
own API (once a second), runs what is placed on it, commits, and reveals once
both have committed; node A holds the coop key and settles (duty rounds every
0.2 s). Measured: tasks settled per second (N over first submit to last
settled), the median and p90 submit→settled latency (seen by polling the
settled list every 0.1 s), and the CPU the two nodes and NATS spent per settled
task. Baselines in the same run, in this process: one sandboxed execution's
CPU, and a whole 2-replica task (submit, two runs, commits, reveals,
settlement) on one SQLite store with no HTTP or NATS
(:mod:`compute_settlement`'s rig). The machine is shared: the load average is
recorded beside every figure.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from _common import append_section, machine_info, markdown_table, print_table, utc_now
from replication import cpu_seconds

from icn.domain.compute import task_bodies as tb
from icn.infrastructure.keystore import Keystore
from icn.infrastructure.replication.nats_auth import NatsUser, NatsUsers, new_password
from icn.infrastructure.replication.nats_server import LocalNatsServer
from icn.interfaces.cli.identity import NODE_KEY
from icn.interfaces.cli.writes import RemoteWriter
from icn.interfaces.client.api import IcnClient
from icn.interfaces.client.compute import list_tasks

ICN = str(Path(sys.executable).with_name("icn"))
COOP = "bench-compute"
WAT = Path(__file__).resolve().parents[1] / "examples" / "compute" / "swapcase.wat"
INPUT = bytes(range(256)) * 16
"""4 KiB, as in compute_settlement.py."""
FUEL = 10**6
IDLE_S = 5.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def load() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


class Cluster:
    """NATS, nodes A and B (both executors), the coop founded on A with its key there."""

    def __init__(self, root: Path) -> None:
        self.root = root
        user = NatsUser("icn-node", new_password())
        self.nats = LocalNatsServer(root / "nats", users=NatsUsers(node=user)).start()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("ICN_")}
        self.env.update(
            ICN_PASSPHRASE="bench-" + secrets.token_hex(8),
            ICN_JWT_SECRET=secrets.token_hex(32),
            ICN_NATS_URL=self.nats.url,
            ICN_NATS_USER=user.user,
            ICN_NATS_PASSWORD=user.password,
            ICN_SERVE=COOP,
            ICN_DUTIES_INTERVAL_S="0.2",
            ICN_CHECKPOINT_SECONDS="86400",
            ICN_TELEMETRY="off",
        )
        for name in ("IP", "DID", "AUTH"):
            self.env[f"ICN_RATE_{name}_BURST"] = self.env[f"ICN_RATE_{name}_PER_S"] = "1000000"
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.urls: dict[str, str] = {}

    def icn(self, *args: str, data: str = "a") -> str:
        done = subprocess.run(
            [ICN, *args, "--data-dir", str(self.root / data)],
            env=self.env, capture_output=True, timeout=300,
        )  # fmt: skip
        if done.returncode != 0:
            raise SystemExit(f"icn {' '.join(args)}: {done.stderr.decode()[-2000:]}")
        return done.stdout.decode()

    def did(self, data: str, name: str = NODE_KEY) -> str:
        return Keystore(self.root / data / "keys").info(name).did

    def found(self) -> None:
        for data in ("a", "b"):
            self.icn("node", "init", data=data)
        for name in ("alice", "bob"):
            self.icn("id", "init", name)
        nodes = [self.did("a"), self.did("b")]
        self.icn("coop", "found", "--coop", COOP, "--name", "Bench compute",
                 "--currency", "hours:hour:2", "--member", "alice:admin", "--member", "bob",
                 *[a for d in nodes for a in ("--member", d)], "--baseline", "1000000")  # fmt: skip

    def start(self) -> None:
        for data in ("a", "b"):
            port = free_port()
            log = (self.root / f"{data}.log").open("ab")
            self.procs[data] = subprocess.Popen(
                [ICN, "node", "run", "--data-dir", str(self.root / data), "--port", str(port),
                 "--executor"],
                env=self.env, stdout=log, stderr=log,
            )  # fmt: skip
            self.urls[data] = f"http://127.0.0.1:{port}"
        for data, url in self.urls.items():
            deadline = time.monotonic() + 180
            while True:
                if self.procs[data].poll() is not None:
                    raise SystemExit((self.root / f"{data}.log").read_text()[-3000:])
                with contextlib.suppress(httpx.TransportError):
                    httpx.get(f"{url}/v1/health", timeout=1)
                    break
                if time.monotonic() > deadline:
                    raise SystemExit(f"node {data} did not start")
                time.sleep(0.2)

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.nats.stop()


@contextlib.contextmanager
def cluster() -> Iterator[Cluster]:
    with tempfile.TemporaryDirectory(prefix="icn-bench-nodes-") as tmp:
        c = Cluster(Path(tmp))
        try:
            c.found()
            c.start()
            yield c
        finally:
            c.stop()


def run_tasks(c: Cluster, n: int, batch: int) -> dict[str, float]:
    """Submit ``n`` tasks to node A over HTTP, ``batch`` to a request; wait until all are
    settled."""
    a = ["--coop", COOP, "--url", c.urls["a"]]
    for data in ("a", "b"):
        c.icn("compute", "executor", "add", c.did(data), "--cpu-millis", "1000",
              "--memory-mib", "64", "--region", "eu-1", *a, "--key", "alice")  # fmt: skip
    module = json.loads(c.icn("compute", "upload", str(WAT), *a, "--key", "bob", "--json"))
    bob = Keystore(c.root / "a" / "keys").unlock("bob", c.env["ICN_PASSPHRASE"])
    client = IcnClient(c.urls["a"], timeout=60)
    client.login(bob, COOP)
    writer = RemoteWriter(client, bob, COOP)
    body = {
        "module": module["module"],
        "input": base64.b64encode(INPUT).decode(),
        "fuel_limit": FUEL,
        "max_fee": 100,
        "currency": "hours",
        "replicas": 2,
    }
    pids = {"a": c.procs["a"].pid, "b": c.procs["b"].pid, "nats": c.nats.pid}
    idle0, wall0 = sum(cpu_seconds(p) for p in pids.values()), time.perf_counter()
    time.sleep(IDLE_S)  # what the nodes spend with nothing to do (polls, duty rounds)
    idle = (sum(cpu_seconds(p) for p in pids.values()) - idle0) / (time.perf_counter() - wall0)
    cpu0 = {k: cpu_seconds(p) for k, p in pids.items()}
    submitted: dict[str, float] = {}
    settled: dict[str, float] = {}
    first = time.perf_counter()
    for start in range(0, n, batch):
        count = min(batch, n - start)
        written = writer.submit([(tb.TASK_SUBMITTED, body)] * count)
        now = time.perf_counter()
        submitted.update((w.event.id, now) for w in written)
        poll_settled(client, settled)
    deadline = time.monotonic() + 60 + 2 * n
    while len(settled.keys() & submitted.keys()) < n:
        if time.monotonic() > deadline:
            raise SystemExit(f"only {len(settled)} of {n} settled: see {c.root}/*.log")
        time.sleep(0.1)
        poll_settled(client, settled)
    last = max(settled[t] for t in submitted)
    cpu = {k: cpu_seconds(p) - cpu0[k] for k, p in pids.items()}
    latencies = sorted(settled[t] - submitted[t] for t in submitted)
    return {
        "tasks": n,
        "seconds": last - first,
        "per_s": n / (last - first),
        "median_s": statistics.median(latencies),
        "p90_s": latencies[int(0.9 * (n - 1))],
        "submit_s": max(submitted.values()) - first,
        "cpu_a": cpu["a"] / n,
        "cpu_b": cpu["b"] / n,
        "cpu_nats": cpu["nats"] / n,
        "idle_cores": idle,
    }


def poll_settled(client: IcnClient, settled: dict[str, float]) -> None:
    """Note when each task is first seen settled (the list holds the newest 200)."""
    found = list_tasks(client, COOP, state="settled")
    now = time.perf_counter()
    for t in found.tasks:
        settled.setdefault(t.id, now)


def baselines(reps: int) -> dict[str, float]:
    """In this process: one execution's CPU; a whole 2-replica task's CPU and wall."""
    import compute_settlement as cs

    from icn.infrastructure.compute.executor import execute
    from icn.infrastructure.compute.sandbox import installed_engine

    with tempfile.TemporaryDirectory(prefix="icn-bench-nodes-base-") as tmp:
        rig = cs.Rig(Path(tmp))
        try:
            rig.task(2)  # warm
            runs = []
            for _ in range(reps * 10):
                cpu = time.process_time()
                execute(rig.cache, lambda h: rig.module.binary, task="0" * 64,
                        executor=rig.s.did("ex1"), module=rig.module.hash, input=INPUT,
                        fuel_limit=FUEL, engine=installed_engine())  # fmt: skip
                runs.append(time.process_time() - cpu)
            cpus, walls = [], []
            for _ in range(reps):
                cpu, wall = time.process_time(), time.perf_counter()
                rig.task(2)
                cpus.append(time.process_time() - cpu)
                walls.append(time.perf_counter() - wall)
        finally:
            rig.sandbox.close()
            rig.store.close()
    return {
        "execution_cpu": statistics.median(runs),
        "task_cpu": statistics.median(cpus),
        "task_wall": statistics.median(walls),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--tasks", type=int, default=100, help="at most 200")
    parser.add_argument("--batch", type=int, default=10, help="tasks submitted per request")
    parser.add_argument("--no-append", action="store_true", help="print only")
    args = parser.parse_args()
    load_before = load()
    base = baselines(10)
    with cluster() as c:
        e2e = run_tasks(c, min(args.tasks, 200), args.batch)
    load_after = load()
    node_cpu = e2e["cpu_a"] + e2e["cpu_b"] + e2e["cpu_nats"]
    rows = [
        ["tasks settled per second, 2 executor nodes over HTTP + NATS", f"{e2e['per_s']:.2f}"],
        ["  in process, one store, no HTTP/NATS (baseline)", f"{1 / base['task_wall']:.1f}"],
        ["submit→settled median / p90 (s)", f"{e2e['median_s']:.2f} / {e2e['p90_s']:.2f}"],
        ["submitting all N took (s)", f"{e2e['submit_s']:.2f}"],
        ["CPU per settled task: node A / node B / NATS (ms)",
         f"{e2e['cpu_a'] * 1e3:.1f} / {e2e['cpu_b'] * 1e3:.1f} / {e2e['cpu_nats'] * 1e3:.1f}"],
        ["nodes + NATS idle, before the tasks (CPU ms per s)", f"{e2e['idle_cores'] * 1e3:.0f}"],
        ["  in process, whole 2-replica task (baseline, ms)", f"{base['task_cpu'] * 1e3:.1f}"],
        ["  one sandboxed execution (baseline, ms)", f"{base['execution_cpu'] * 1e3:.2f}"],
        ["nodes' CPU per task / in-process task CPU", f"{node_cpu / base['task_cpu']:.1f}×"],
        ["nodes' CPU per task / one execution's CPU",
         f"{node_cpu / base['execution_cpu']:.0f}×"],
    ]  # fmt: skip
    print_table(f"compute on two executor nodes ({args.tasks} tasks)", ["measure", "value"], rows)
    text = "\n".join(
        [
            f"{args.tasks} paid tasks (2 replicas, 4 KiB input, swapcase) submitted over HTTP",
            f"to node A, {args.batch} to a request from one client; two `icn node run",
            "--executor` nodes replicating through one nats-server run each (node B reads",
            "the module from the coop's bucket), commit, reveal; node A's coop key settles.",
            "Executors poll their node once a second, so latency has a floor of about two",
            "polls (commit, then reveal). Baselines in the same run, in process. The machine",
            "is shared (several engineers' work): read the CPU figures and ratios, not the",
            "wall-clock ones.",
            "",
            markdown_table(["measure", "value"], rows),
            "",
            *(f"- {k}: {v}" for k, v in machine_info().items()),
            f"- load average (1/5/15 min) before: {load_before}; after: {load_after}",
        ]
    )
    if not args.no_append:
        docs = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
        append_section(docs, f"compute: tasks settled on two executor nodes ({utc_now()})", text)


if __name__ == "__main__":
    main()
