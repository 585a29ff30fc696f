"""How the node's HTTP API holds up under load, against its own write path in-process.

Usage: ``python bench/api.py [--quick] [--reps R] [--duration S] [--rate N] [--read-rate N]
[--sse-rate N] [--batch-concurrency C]``.

Each repetition starts a fresh ``icn node run`` on a free loopback port and
drives it from a separate process (``bench/_api_load.py``: aiohttp for the single
posts, httpx elsewhere), so the
load generator never shares the server's interpreter. Phases, in order:
single posts at a fixed offered rate (open loop, latency from the scheduled
send time), SSE delivery latency at a moderate rate, batches of 100 as fast
as they are answered, and page reads at a fixed rate. Then, in this process
and on a fresh temporary store, the same single and batched appends through
``AppendEvents`` without HTTP: the baselines the HTTP figures are divided by.
Events are signed once, up front, untimed; every member posts only its own
chain, so concurrent posts by different members never conflict. The coop is
founded (untimed, ``icn log import`` before the node starts; the first append
of each in-process store) with every member of every phase and a credit limit
no run reaches, so the coop's rules judge every event and refuse none.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import multiprocessing
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx
import msgspec
from _api_load import latency_summary
from _common import (
    append_section,
    chunks_progress,
    coop_founded,
    machine_info,
    markdown_table,
    print_table,
    progress_bar,
    utc_now,
)
from log_append import icn_appender
from nacl.signing import SigningKey

from icn.domain.events.envelope import sign_event
from icn.domain.identity.did import did_from_public_key

COOP = "bench-api"
BATCH = 100
MEMBERS = {"single": 50, "sse": 10, "batch": 50}
BATCH_CEILING = 12_000
"""Events per second of batch phase signed up front; a faster node runs out and stops early."""
HERE = Path(__file__).resolve().parent
LOAD = HERE / "_api_load.py"
DOCS = HERE.parent / "docs" / "benchmarks.md"
ICN = Path(sys.executable).with_name("icn")
TARGET_HEAD = ["check", "value", "target", "verdict"]
METRIC_HEAD = ["measurement", "median", "range"]
Advance = Callable[[int], None]
Run = dict[str, Any]
START_S = 120.0
"""How long a node may take to answer at start (a loaded shared machine took 25 s)."""


# -- workload ------------------------------------------------------------------------


@dataclass
class Phase:
    """The members of one phase (32-byte seeds) and each member's signed chain."""

    seeds: list[bytes]
    chains: list[list[bytes]]


def sign_chain(seed: bytes, to: str, count: int, ts0: int) -> list[bytes]:
    """``count`` ledger entries of ``seed``'s chain, seq 1.., each paying ``to``."""
    key = SigningKey(seed)
    did = did_from_public_key(bytes(key.verify_key))
    prev: str | None = None
    lines = []
    for k in range(count):
        tx = {"from": did, "to": to, "amount": k % 1000 + 1, "currency": "hours", "memo": "bench"}
        ev = sign_event(
            key, coop=COOP, seq=k + 1, prev=prev, ts=ts0 + k, type="ledger.EntryRecorded",
            body={"transactions": [tx]},
        )  # fmt: skip
        prev = ev.id
        lines.append(ev.wire_bytes())
    return lines


def _sign_job(job: tuple[bytes, str, int, int]) -> list[bytes]:
    return sign_chain(*job)


def generate(sizes: dict[str, int], advance: Advance) -> tuple[dict[str, Phase], bytes]:
    """Sign ``sizes[phase]`` events per member of every phase, on every core.

    Returns the phases and the ``coop.Founded`` line that makes them members.
    """
    ts0 = int(time.time() * 1000)
    phases: dict[str, Phase] = {}
    jobs: list[tuple[bytes, str, int, int]] = []
    everyone: list[str] = []
    for name, per_member in sizes.items():
        seeds = [secrets.token_bytes(32) for _ in range(MEMBERS[name])]
        dids = [did_from_public_key(bytes(SigningKey(s).verify_key)) for s in seeds]
        everyone += dids
        phases[name] = Phase(seeds, [])
        jobs += [(s, dids[(i + 1) % len(dids)], per_member, ts0) for i, s in enumerate(seeds)]
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(os.cpu_count() or 1, mp_context=ctx) as pool:
        chains = iter(pool.map(_sign_job, jobs))
        for name in sizes:
            for _ in range(MEMBERS[name]):
                chain = next(chains)
                phases[name].chains.append(chain)
                advance(len(chain))
    return phases, coop_founded(COOP, everyone, ts0 - 1)


def interleave(chains: list[list[bytes]], per: int) -> list[list[bytes]]:
    """Units of ``per`` consecutive events, members round-robin: every prefix is a valid log."""
    longest = max(len(c) for c in chains)
    return [c[i : i + per] for i in range(0, longest, per) for c in chains if c[i : i + per]]


# -- the node ------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def node_env() -> dict[str, str]:
    """Secrets for a throwaway node, limits high enough not to be what is measured."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ICN_")}
    if "ICN_WRITER_PROCESS" in os.environ:  # to compare the node writing in-process (0)
        env["ICN_WRITER_PROCESS"] = os.environ["ICN_WRITER_PROCESS"]
    env["ICN_PASSPHRASE"] = "bench-api-" + secrets.token_hex(8)
    env["ICN_JWT_SECRET"] = secrets.token_hex(32)
    env["ICN_CHECKPOINT_SECONDS"] = "86400"
    for name in ("IP", "DID", "AUTH"):
        env[f"ICN_RATE_{name}_BURST"] = env[f"ICN_RATE_{name}_PER_S"] = "1000000"
    return env


@contextmanager
def running_node(root: Path, founding: Path) -> Iterator[tuple[str, int]]:
    """``icn node init`` + ``icn log import founding`` + ``icn node run`` in ``root``.

    Yields (base URL, pid). Stopped with SIGTERM at the end, and it must exit
    0 without a traceback.
    """
    env, data, log_path = node_env(), root / "node", root / "node.log"
    init = [str(ICN), "node", "init", "--data-dir", str(data)]
    subprocess.run(init, env=env, check=True, capture_output=True, timeout=120)
    found = [str(ICN), "log", "import", str(founding), "--data-dir", str(data)]
    subprocess.run(found, env=env, check=True, capture_output=True, timeout=120)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [str(ICN), "node", "run", "--data-dir", str(data), "--port", str(port)]
    with log_path.open("ab") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=log)
    tail = lambda: log_path.read_text(errors="replace")[-3000:]  # noqa: E731
    failed = True
    try:
        deadline = time.monotonic() + START_S
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"the node exited with {proc.returncode}:\n{tail()}")
            try:
                httpx.get(f"{base}/v1/health", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise SystemExit(
                        f"the node did not answer in {START_S:g} s:\n{tail()}"
                    ) from None
                time.sleep(0.1)
        yield base, proc.pid
        failed = False
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        if not failed and (code != 0 or "Traceback" in tail()):
            raise SystemExit(f"the node did not stop cleanly (exit {code}):\n{tail()}")


def run_load(spec: dict[str, Any], tmp: Path, advance: Advance) -> Run:
    """Run ``_api_load.py`` on ``spec``; advance once per step it reports; its results."""
    spec = {**spec, "out": str(tmp / "results.json")}
    (tmp / "spec.json").write_text(json.dumps(spec))
    err = tmp / "load.err"
    with err.open("wb") as errf:
        proc = subprocess.Popen(
            [sys.executable, str(LOAD), str(tmp / "spec.json")],
            stdout=subprocess.PIPE, stderr=errf, text=True,
        )  # fmt: skip
        watchdog = threading.Timer(6 * spec["duration"] + 120, proc.kill)
        watchdog.start()
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                if line.startswith("step "):
                    advance(1)
            code = proc.wait()
        finally:
            watchdog.cancel()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    if code != 0:
        raise SystemExit(f"the load generator failed ({code}):\n{err.read_text()[-3000:]}")
    return dict(json.loads((tmp / "results.json").read_text()))


# -- baselines -----------------------------------------------------------------------


def in_process(
    units: list[list[bytes]], founding: bytes, advance: Advance
) -> dict[str, float | None]:
    """``AppendEvents.append(unit, atomic=True)`` per unit on a fresh store, as the POST does.

    The store is founded first (``founding``, untimed), as the node is.
    """
    latencies = []
    with icn_appender(founding) as appender:
        cpu, start = time.process_time(), time.perf_counter()
        for unit in units:
            t = time.perf_counter()
            outcomes = appender.append(unit, atomic=True)
            latencies.append(time.perf_counter() - t)
            if not all(o.stored for o in outcomes):
                raise SystemExit(f"in-process append refused a generated event: {outcomes}")
            advance(len(unit))
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    n = sum(len(u) for u in units)
    return {"events_per_s": n / wall, "cpu_us_per_event": cpu / n * 1e6,
            **latency_summary(latencies)}  # fmt: skip


# -- report --------------------------------------------------------------------------


def _per(num: float | None, den: float | None, scale: float = 1.0) -> float:
    return math.nan if num is None or not den else num / den * scale


def metrics(a: argparse.Namespace) -> list[tuple[str, Callable[[Run], float], str]]:
    """(label, value of one run, format) for every row of the medians table."""
    s, b, r, e, w = "single", "batch", "reads", "sse", "reads_writing"
    rows: list[tuple[str, Callable[[Run], float], str]] = [
        (f"single post @ {a.rate:g} req/s: achieved req/s",
         lambda x: x[s]["achieved_per_s"], "{:,.0f}"),
        ("single post: p50 ms (from scheduled send)", lambda x: x[s]["p50_ms"], "{:.1f}"),
        ("single post: p99 ms", lambda x: x[s]["p99_ms"], "{:.1f}"),
        ("single post: max ms", lambda x: x[s]["max_ms"], "{:.1f}"),
        ("single post: generator's own send lag p99 ms",
         lambda x: x[s]["lag_p99_ms"], "{:.1f}"),
        ("single post: node CPU ms / request",
         lambda x: _per(x[s]["node_cpu_s"], x[s]["requests"], 1e3), "{:.2f}"),
        ("single post: node CPU-bound ceiling req/s (1 / CPU per request)",
         lambda x: _per(x[s]["requests"], x[s]["node_cpu_s"]), "{:,.0f}"),
        (f"batch post (100) x{a.batch_concurrency} concurrent: events/s",
         lambda x: x[b]["events_per_s"], "{:,.0f}"),
        ("batch post: request p50 ms", lambda x: x[b]["p50_ms"], "{:.1f}"),
        ("batch post: request p99 ms", lambda x: x[b]["p99_ms"], "{:.1f}"),
        ("batch post: node CPU µs / event",
         lambda x: _per(x[b]["node_cpu_s"], x[b]["events"], 1e6), "{:.0f}"),
        (f"reads (limit 100) @ {a.read_rate:g} req/s: achieved req/s",
         lambda x: x[r]["achieved_per_s"], "{:,.0f}"),
        ("reads: p50 ms", lambda x: x[r]["p50_ms"], "{:.1f}"),
        ("reads: p99 ms", lambda x: x[r]["p99_ms"], "{:.1f}"),
        ("reads: node CPU ms / request",
         lambda x: _per(x[r]["node_cpu_s"], x[r]["requests"], 1e3), "{:.2f}"),
        ("reads while batches post: p50 ms", lambda x: x[w]["p50_ms"], "{:.1f}"),
        ("reads while batches post: p99 ms", lambda x: x[w]["p99_ms"], "{:.1f}"),
        ("/v1/health @ 50 req/s beside the reads: p50 ms",
         lambda x: x["health"]["p50_ms"], "{:.1f}"),
        ("/v1/health: p99 ms", lambda x: x["health"]["p99_ms"], "{:.1f}"),
        ("/v1/health while batches post: p50 ms",
         lambda x: x["health_writing"]["p50_ms"], "{:.1f}"),
        ("/v1/health while batches post: p99 ms",
         lambda x: x["health_writing"]["p99_ms"], "{:.1f}"),
        ("batches posted meanwhile: events/s",
         lambda x: x["batch_reading"]["events_per_s"], "{:,.0f}"),
        (f"SSE delivery @ {a.sse_rate:g} ev/s: p50 ms", lambda x: x[e]["p50_ms"], "{:.1f}"),
        ("SSE delivery: p99 ms", lambda x: x[e]["p99_ms"], "{:.1f}"),
        ("SSE delivery: max ms", lambda x: x[e]["max_ms"], "{:.1f}"),
        ("in-process single append: ev/s", lambda x: x["in_single"]["events_per_s"], "{:,.0f}"),
        ("in-process single append: p50 ms", lambda x: x["in_single"]["p50_ms"], "{:.2f}"),
        ("in-process single append: p99 ms", lambda x: x["in_single"]["p99_ms"], "{:.2f}"),
        ("in-process single append: CPU µs / event",
         lambda x: x["in_single"]["cpu_us_per_event"], "{:.0f}"),
        ("in-process batch append (100): ev/s",
         lambda x: x["in_batch"]["events_per_s"], "{:,.0f}"),
        ("in-process batch append: CPU µs / event",
         lambda x: x["in_batch"]["cpu_us_per_event"], "{:.0f}"),
    ]  # fmt: skip
    for phase in (s, b, r, e):
        rows.append(
            (
                f"node CPU, {phase} phase (cores)",
                lambda x, p=phase: _per(x[p]["node_cpu_s"], x[p]["wall_s"]),
                "{:.2f}",
            )
        )
        rows.append((f"load generator CPU, {phase} phase (cores)",
                     lambda x, p=phase: x[p]["load_cores"], "{:.2f}"))  # fmt: skip
    for phase in (s, b, r, w):
        rows.append((f"other processes' CPU, {phase} phase (cores)",
                     lambda x, p=phase: x[p]["others_cores"], "{:.2f}"))  # fmt: skip
    return rows


def _fmt(fmt: str, v: float) -> str:
    return "n/a" if v is None or math.isnan(v) else fmt.format(v)


def median_of(runs: list[Run], fn: Callable[[Run], float]) -> float:
    values = [v for v in (fn(x) for x in runs) if v is not None and not math.isnan(v)]
    return statistics.median(values) if values else math.nan


def ratios(runs: list[Run]) -> list[tuple[str, float]]:
    """HTTP against in-process, paired within each run, then the median over runs."""
    pairs: list[tuple[str, Callable[[Run], float]]] = [
        ("HTTP single post p50 (queueing included) / in-process single append p50",
         lambda x: x["single"]["p50_ms"] / x["in_single"]["p50_ms"]),
        ("node CPU per single post / in-process CPU per single append",
         lambda x: _per(x["single"]["node_cpu_s"], x["single"]["requests"], 1e6)
         / x["in_single"]["cpu_us_per_event"]),
        ("HTTP batch ev/s / in-process batch ev/s",
         lambda x: x["batch"]["events_per_s"] / x["in_batch"]["events_per_s"]),
        ("node CPU per batched event / in-process CPU per batched event",
         lambda x: _per(x["batch"]["node_cpu_s"], x["batch"]["events"], 1e6)
         / x["in_batch"]["cpu_us_per_event"]),
    ]  # fmt: skip
    return [(label, median_of(runs, fn)) for label, fn in pairs]


def checks(runs: list[Run], a: argparse.Namespace) -> list[list[str]]:
    """(target, value, target, verdict) rows, judged on this run's medians."""
    verdict = {True: "PASS", False: "FAIL"}
    p99 = median_of(runs, lambda x: x["single"]["p99_ms"])
    share = median_of(runs, lambda x: x["single"]["achieved_per_s"] / a.rate)
    batch = median_of(runs, lambda x: x["batch"]["events_per_s"])
    sse = median_of(runs, lambda x: x["sse"]["p99_ms"])
    missing = sum(x["sse"]["missing"] for x in runs)
    phases = ("single", "sse", "batch", "reads", "reads_writing", "batch_reading", "health",
              "health_writing")  # fmt: skip
    errors = sum(x[p]["errors"] for x in runs for p in phases)
    reads = median_of(runs, lambda x: x["reads"]["p99_ms"])
    writing = median_of(runs, lambda x: x["reads_writing"]["p99_ms"])
    others = median_of(runs, lambda x: x["reads_writing"]["others_cores"])
    rows = [
        [f"single post p99 @ {a.rate:g} req/s (ms)", f"{p99:.1f}", "< 50", verdict[p99 < 50]],
        ["single post achieved / offered rate", f"{share:.2f}", "≥ 0.95", verdict[share >= 0.95]],
        ["batch post (100) events/s", f"{batch:,.0f}", "≥ 3,000", verdict[batch >= 3000]],
        [f"SSE delivery p99 @ {a.sse_rate:g} ev/s (ms)", f"{sse:.1f}", "< 100", verdict[sse < 100]],
        ["SSE events never delivered (all runs)", f"{missing}", "0", verdict[missing == 0]],
        ["failed requests (all phases, all runs)", f"{errors}", "0", verdict[errors == 0]],
        [f"reads p99 @ {a.read_rate:g} req/s (ms)", f"{reads:.1f}", "", "info"],
        [
            f"reads p99 @ {a.read_rate:g} req/s while batches post (ms)",
            f"{writing:.1f}",
            "< 20",
            verdict[writing < 20],
        ],
        [f"other processes' cores meanwhile (of {os.cpu_count()})", f"{others:.2f}", "", "info"],
    ]
    rows += [[label, f"{v:.2f}", "", "info"] for label, v in ratios(runs)]
    return rows


def report(runs: list[Run], a: argparse.Namespace, params: dict[str, str]) -> None:
    """Print both tables and append the run's section to docs/benchmarks.md."""
    rows = []
    for label, fn, fmt in metrics(a):
        values = [v for v in (fn(x) for x in runs) if v is not None and not math.isnan(v)]
        spread = f"{_fmt(fmt, min(values))}–{_fmt(fmt, max(values))}" if values else "n/a"
        rows.append([label, _fmt(fmt, median_of(runs, fn)), spread])
    verdicts = checks(runs, a)
    print_table(f"medians of {len(runs)} runs", METRIC_HEAD, rows)
    print_table("targets and ratios", TARGET_HEAD, verdicts)
    notes = []
    for x in runs:
        for p in ("single", "sse", "batch", "reads"):
            if x[p]["errors"]:
                notes.append(f"{p}: {x[p]['kinds']} e.g. {x[p]['samples'][:1]}")
    if any(x["batch"]["exhausted"] for x in runs):
        notes.append("batch phase used every pre-signed event before its deadline in some runs")
    for n in notes:
        print(f"note: {n}")
    facts = {**machine_info(), **params}
    text = "\n".join(f"- {k}: {v}" for k, v in facts.items())
    text += "".join(f"\n- note: {n}" for n in notes)
    text += "\n\n" + markdown_table(METRIC_HEAD, rows)
    text += "\n\n" + markdown_table(TARGET_HEAD, verdicts)
    append_section(DOCS, f"api, {utc_now()}", text)
    print(f"appended to {DOCS}")


# -- main ----------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Defaults keep a full run under ~4 minutes on two cores; --quick under ~90 s."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="3 s phases, smaller baselines")
    p.add_argument("--reps", type=int, default=3, choices=range(3, 21), metavar="R (3..20)")
    p.add_argument("--duration", type=float, help="seconds per HTTP phase (10; quick 3)")
    p.add_argument("--rate", type=float, default=500, help="offered single posts per second")
    p.add_argument("--read-rate", type=float, default=200, help="offered page reads per second")
    p.add_argument("--sse-rate", type=float, default=50, help="events posted per second (SSE)")
    p.add_argument("--batch-concurrency", type=int, default=4, help="batch posters at once")
    p.add_argument("--poster-nice", type=int, default=0, choices=range(20), metavar="N (0..19)",
                   help="niceness of the batch posters while the reads run beside them: a"
                   " node's clients are elsewhere, here they share its cores")  # fmt: skip
    p.add_argument("--writer-ab", action="store_true",
                   help="single posts, batches, reads alone and while batches post: writer"
                   " in-process against writer process, alternating pairs; appended to"
                   " docs/benchmarks.md")  # fmt: skip
    a = p.parse_args(argv)
    a.duration = a.duration or (3.0 if a.quick else 10.0)
    a.base_single = 1000 if a.quick else 3000
    a.base_batch = 5000 if a.quick else 20_000
    return a


AB_ROWS: list[tuple[str, Callable[[Run], float | None], str]] = [
    ("reads p99 while batches post (ms)", lambda x: x["reads_writing"]["p99_ms"], "{:,.1f}"),
    ("reads p50 while batches post (ms)", lambda x: x["reads_writing"]["p50_ms"], "{:,.1f}"),
    ("reads p99 alone (ms)", lambda x: x["reads"]["p99_ms"], "{:,.1f}"),
    ("reads p50 alone (ms)", lambda x: x["reads"]["p50_ms"], "{:,.1f}"),
    ("/v1/health p99 while batches post (ms)", lambda x: x["health_writing"]["p99_ms"],
     "{:,.1f}"),
    ("single post p99 (ms)", lambda x: x["single"]["p99_ms"], "{:,.1f}"),
    ("single post p50 (ms)", lambda x: x["single"]["p50_ms"], "{:,.1f}"),
    ("single posts achieved / s", lambda x: x["single"]["achieved_per_s"], "{:,.0f}"),
    ("node CPU per single post (µs, process tree)",
     lambda x: _per(x["single"]["node_cpu_s"], x["single"]["requests"], 1e6), "{:,.0f}"),
    ("batch post (100) alone: events/s", lambda x: x["batch"]["events_per_s"], "{:,.0f}"),
    ("batches posted beside the reads: events/s",
     lambda x: x["batch_reading"]["events_per_s"], "{:,.0f}"),
    ("node CPU per batched event (µs, process tree)",
     lambda x: _per(x["batch"]["node_cpu_s"], x["batch"]["events"], 1e6), "{:,.0f}"),
    ("load average (1 min) at the reads while writing",
     lambda x: x["reads_writing"]["load_1m"], "{:.1f}"),
    ("other processes' cores, reads while writing",
     lambda x: x["reads_writing"]["others_cores"], "{:.2f}"),
]  # fmt: skip
AB_PER_RUN = [
    "reads p99 while batches post (ms)",
    "reads p99 alone (ms)",
    "single post p99 (ms)",
    "batch post (100) alone: events/s",
    "node CPU per single post (µs, process tree)",
]
"""What each run's own row shows, beside the load average when it ran."""


def writer_ab(a: argparse.Namespace, phases: dict[str, Phase], founded: Path, tmp: Path) -> None:
    """``--writer-ab``: per repetition a node writing in-process (ICN_WRITER_PROCESS=0) and
    one with its writer process (1), back to back, the first of the pair alternating;
    single posts, batches, reads alone and reads while batches post (no SSE). Medians
    side by side, each pair's ratio, and every run's figures beside the machine's load
    average; appended to docs/benchmarks.md."""
    workload = tmp / "workload.msgpack"
    runs: dict[str, list[Run]] = {"0": [], "1": []}
    order: list[tuple[int, str, Run]] = []
    with progress_bar() as progress:
        for rep in range(a.reps):
            for mode in ("0", "1") if rep % 2 == 0 else ("1", "0"):
                os.environ["ICN_WRITER_PROCESS"] = mode
                rep_dir = tmp / f"ab-{rep}-{mode}"
                rep_dir.mkdir()
                load_before = os.getloadavg()
                with (
                    chunks_progress(progress, f"rep {rep + 1} writer process {mode}", 5) as adv,
                    running_node(rep_dir, founded) as (base, pid),
                ):
                    spec = {
                        "base": base, "node_pid": pid, "coop": COOP, "workload": str(workload),
                        "events_url": f"/v1/coops/{COOP}/events", "duration": a.duration,
                        "rate": a.rate, "read_rate": a.read_rate, "sse_rate": a.sse_rate,
                        "batch_concurrency": a.batch_concurrency, "reads_only": True,
                        "poster_nice": a.poster_nice,
                    }  # fmt: skip
                    run = run_load(spec, rep_dir, adv)
                run["load_before"], run["load_after"] = load_before, os.getloadavg()
                runs[mode].append(run)
                order.append((rep, mode, run))
    names = {"0": "in-process", "1": "writer process"}
    rows = []
    for label, fn, fmt in AB_ROWS:
        cells = []
        for mode in ("0", "1"):
            values = [v for v in (fn(r) for r in runs[mode]) if v is not None and v == v]
            cells.append(_fmt(fmt, statistics.median(values)) if values else "n/a")
            cells.append(f"{_fmt(fmt, min(values))}–{_fmt(fmt, max(values))}" if values else "n/a")
        ratios = []
        for p, q in zip(runs["1"], runs["0"], strict=True):  # the same repetition's pair
            b, c = fn(p), fn(q)
            if b is not None and c and b == b and c == c:
                ratios.append(b / c)
        ratio = statistics.median(ratios) if ratios else math.nan
        rows.append([label, *cells, _fmt("{:.2f}", ratio)])
    head = ["measurement", "in-process median", "range", "writer process median", "range",
            "writer / in-process (median of pairs)"]  # fmt: skip
    title = f"writer in-process against writer process, {a.reps} alternating pairs"
    print_table(title, head, rows)
    by_label = {label: (fn, fmt) for label, fn, fmt in AB_ROWS}
    per_run = []
    for rep, mode, run in order:
        loads = (*run["load_before"], *run["load_after"][:1])
        cells = [_fmt(by_label[k][1], by_label[k][0](run)) for k in AB_PER_RUN]
        per_run.append([f"pair {rep + 1}, {names[mode]}",
                        "{:.1f} / {:.1f} / {:.1f} → {:.1f}".format(*loads), *cells])  # fmt: skip
    run_head = ["run (in the order run)", "load 1/5/15 min before → 1 min after", *AB_PER_RUN]
    print_table("every run, with the machine's load average", run_head, per_run)
    facts = {**machine_info(), "pairs": str(a.reps), "phase seconds": f"{a.duration:g}",
             "offered single posts/s": f"{a.rate:g}", "offered reads/s": f"{a.read_rate:g}",
             "batch posters": str(a.batch_concurrency),
             "batch posters' niceness while reads run": str(a.poster_nice),
             "node CPU": "the node's whole process tree (serving process, writer process,"
             " verifier workers, embedded nats-server)"}  # fmt: skip
    text = "\n".join(f"- {k}: {v}" for k, v in facts.items())
    text += "\n\n" + markdown_table(head, rows) + "\n\n" + markdown_table(run_head, per_run)
    append_section(DOCS, f"api --writer-ab, {utc_now()}", text)
    print(f"appended to {DOCS}")


def main(argv: list[str]) -> None:
    """Sign once; per repetition a fresh node under load, then the in-process baselines."""
    a = parse_args(argv)
    sizes = {
        "single": math.ceil(a.rate * a.duration / MEMBERS["single"]),
        "sse": math.ceil(a.sse_rate * a.duration / MEMBERS["sse"]) + 1,
        "batch": BATCH * math.ceil(BATCH_CEILING * a.duration / MEMBERS["batch"] / BATCH),
    }
    total = sum(sizes[k] * MEMBERS[k] for k in sizes)
    runs: list[Run] = []
    with progress_bar() as progress, tempfile.TemporaryDirectory(prefix="icn-bench-api-") as t:
        tmp = Path(t)
        with chunks_progress(progress, "signing events (untimed)", total) as advance:
            phases, founding = generate(sizes, advance)
        founded = tmp / "founded.jsonl"
        founded.write_bytes(founding + b"\n")
        workload = tmp / "workload.msgpack"
        plain = {k: {"seeds": v.seeds, "chains": v.chains} for k, v in phases.items()}
        workload.write_bytes(msgspec.msgpack.encode(plain))
        if a.writer_ab:
            writer_ab(a, phases, founded, tmp)
            return
        singles = interleave(phases["single"].chains, 1)[: a.base_single]
        batches = interleave(phases["batch"].chains, BATCH)[: a.base_batch // BATCH]
        for rep in range(a.reps):
            label = f"{rep + 1}/{a.reps}"
            rep_dir = tmp / f"run-{rep}"
            rep_dir.mkdir()
            with (
                chunks_progress(progress, f"HTTP run {label}", 6) as advance,
                running_node(rep_dir, founded) as (base, pid),
            ):
                spec = {
                    "base": base, "node_pid": pid, "coop": COOP, "workload": str(workload),
                    "events_url": f"/v1/coops/{COOP}/events", "duration": a.duration,
                    "rate": a.rate, "read_rate": a.read_rate, "sse_rate": a.sse_rate,
                    "batch_concurrency": a.batch_concurrency, "poster_nice": a.poster_nice,
                }  # fmt: skip
                run = run_load(spec, rep_dir, advance)
            with chunks_progress(progress, f"in-process single {label}", len(singles)) as adv:
                run["in_single"] = in_process(singles, founding, adv)
            n_batch = sum(len(u) for u in batches)
            with chunks_progress(progress, f"in-process batch {label}", n_batch) as adv:
                run["in_batch"] = in_process(batches, founding, adv)
            runs.append(run)
    report(runs, a, params(argv, a, phases))


def params(argv: list[str], a: argparse.Namespace, phases: dict[str, Phase]) -> dict[str, str]:
    """The run's parameters for the report."""
    lines = [x for c in phases["single"].chains for x in c]
    has = {m: importlib.util.find_spec(m) is not None for m in ("uvloop", "httptools")}
    server = (
        f"icn node run on 127.0.0.1 (uvicorn {version('uvicorn')},"
        f" writer process {os.environ.get('ICN_WRITER_PROCESS', '1 (default)')},"
        f" loop {'uvloop' if has['uvloop'] else 'asyncio'},"
        f" HTTP {'httptools' if has['httptools'] else 'h11 ' + version('h11')},"
        f" litestar {version('litestar')}); SQLite store; rate limits 1e6;"
        " checkpoints every 1000 events"
    )
    return {
        "command": " ".join(["python bench/api.py", *argv]),
        "repetitions": f"{a.reps} (medians; each on a fresh node and a fresh in-process store)",
        "coop": f"{COOP}, founded (untimed) with all {sum(MEMBERS.values())} members as"
        " founders and a credit limit no run reaches: the coop's rules judge every event",
        "server": server,
        "load generator": f"separate process, asyncio; single posts: aiohttp {version('aiohttp')}"
        f" (one pooled session), other phases: httpx {version('httpx')} AsyncClient",
        "phase duration": f"{a.duration:g} s (single, SSE, batch, reads)",
        "single posts": f"open loop, {a.rate:g} req/s offered, {MEMBERS['single']} members"
        " (request i by member i mod 50, each member's posts in order),"
        " latency from the scheduled send time",
        "SSE": f"1 subscriber, {a.sse_rate:g} ev/s posted open loop by {MEMBERS['sse']} members;"
        " latency = arrival on the stream − the POST's send time (same process clock)",
        "batch posts": f"100 events per request, {a.batch_concurrency} members posting at once,"
        f" closed loop; {MEMBERS['batch']} members, {BATCH_CEILING:,} ev/s × duration pre-signed",
        "reads": f"GET events?after=<random>&limit=100, open loop at {a.read_rate:g} req/s,"
        " on the log left by the earlier phases; then the same reads while the batch members"
        " post again (closed loop, where their first phase stopped)",
        "in-process baselines": f"AppendEvents.append(unit, atomic=True) on a fresh SQLite store:"
        f" first {a.base_single:,} single-phase events one by one, first {a.base_batch:,}"
        " batch-phase events 100 at a time",
        "mean wire bytes": f"{statistics.mean(len(x) for x in lines):.0f}",
    }


if __name__ == "__main__":
    main(sys.argv[1:])
