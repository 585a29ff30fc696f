"""What telemetry costs: single posts and batch posts with telemetry on and off, one run.

Usage: ``python bench/telemetry.py [--quick] [--rounds N] [--duration S] [--rate N]
[--sample R] [--modes off,...] [--together [--perf DIR] [--single-only]] [--dry]``.

Each round starts a fresh ``icn node run`` (the same pre-signed workload every time, as
``bench/api.py`` signs it) once per mode: ``off`` (``ICN_TELEMETRY=off``), ``on`` (the
default: metrics, the HTTP middleware, JSON logs; no trace exporter configured),
``traced`` (also ``ICN_OTLP_ENDPOINT``: spans recorded for the default share of the writes,
or ``--sample``, and exported over OTLP/HTTP to a sink in this process, so the export is
paid for) and ``traced-all`` (every write traced: ``ICN_TRACE_SAMPLE=1``). The order
rotates from round to round so drift in the machine's load falls on every mode. A
separate process drives each node (``bench/_api_load.py``'s single-post and batch
phases): single posts open loop at an offered rate above what the node sustains (its
throughput is what it achieves), then batches of 100 closed loop. Reported: the medians
per mode and their ratios to ``off``.

``traced-none`` (``ICN_TRACE_SAMPLE=0``) has the tracer provider, its span processor and
exporter set up but records nothing: what tracing costs before any write is recorded.

``--together``: each round runs every mode's node at the same time, each under its own
load generator, so what the shared machine's other work does in those seconds falls on
every mode alike (one after another, the rounds of one mode moved by up to 37 % while the
budget is 5 %). The nodes share the two cores, so throughput is each one's share; CPU time
per post is what to compare. ``--perf DIR`` records a native profile of each node
(``perf record``) for comparing where their CPU goes (GC, the GIL, the interpreter).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import api  # noqa: E402
from _common import (  # noqa: E402
    append_section,
    chunks_progress,
    machine_info,
    markdown_table,
    print_table,
    progress_bar,
    utc_now,
)
from _otlp import collector  # noqa: E402

from icn.infrastructure.telemetry import DEFAULT_TRACE_SAMPLE  # noqa: E402

DOCS = HERE.parent / "docs" / "benchmarks.md"
MEMBERS = {"single": api.MEMBERS["single"], "batch": api.MEMBERS["batch"]}
MODES = ["off", "off-again", "on", "traced-none", "traced", "traced-all"]
BUDGET = 0.05
"""Telemetry may cost at most this share of throughput (issue 16)."""


@contextlib.contextmanager
def node_with(extra: dict[str, str]) -> Iterator[None]:
    """``api.running_node`` starts its nodes with ``extra`` in their environment."""
    plain = api.node_env
    api.node_env = lambda: {**plain(), **extra}
    try:
        yield
    finally:
        api.node_env = plain


# -- the load generator (a process of its own) ---------------------------------------------


async def _load(spec: dict[str, Any]) -> dict[str, Any]:
    import _api_load as load
    import httpx

    raw = msgspec.msgpack.decode(Path(spec["workload"]).read_bytes())
    phases = {name: {"seeds": p["seeds"], "chains": p["chains"]} for name, p in raw.items()}
    async with contextlib.AsyncExitStack() as stack:
        for ph in phases.values():
            ph["clients"] = [
                await stack.enter_async_context(
                    httpx.AsyncClient(base_url=spec["base"], timeout=30, limits=load.LIMITS)
                )
                for _ in ph["seeds"]
            ]
            jobs = [
                lambda c=c, s=s: load.login(c, s, spec["coop"])
                for c, s in zip(ph["clients"], ph["seeds"], strict=True)
            ]
            ph["tokens"] = await load.gather_limited(jobs, 8)
        load.step("login")
        results = {"single": await load.single_phase(spec, phases["single"])}
        load.step("single")
        if not spec.get("single_only"):
            results["batch"] = await load.batch_phase(spec, phases["batch"])
        load.step("batch")
    return results


# -- the run ------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    assert __doc__ is not None
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="3 rounds of 3 s phases")
    p.add_argument("--rounds", type=int, help="rounds, each running every mode once (5; quick 3)")
    p.add_argument("--duration", type=float, help="seconds per phase (6; quick 3)")
    p.add_argument("--rate", type=float, default=2000, help="single posts offered per second")
    p.add_argument("--sample", type=float, help="traced: ICN_TRACE_SAMPLE (the node's default)")
    p.add_argument(
        "--modes", default="off,on,traced,traced-all",
        help=f"comma-separated, off first, of {', '.join(MODES)} (off,on,traced,traced-all)",
    )  # fmt: skip
    p.add_argument("--dry", action="store_true", help="print only; append nothing to the docs")
    p.add_argument("--single-only", action="store_true", help="no batch phase (with --perf)")
    p.add_argument("--perf", type=Path, help="with --together: perf record each node into DIR")
    p.add_argument(
        "--together", action="store_true",
        help="each round runs every mode's node at once, each under its own load generator",
    )  # fmt: skip
    a = p.parse_args(argv)
    a.modes = [m for m in MODES if m in a.modes.split(",")]
    if a.modes[:1] != ["off"] or len(a.modes) < 2:
        p.error(f"--modes: off and at least one of {', '.join(MODES[1:])}")
    a.rounds = a.rounds or (3 if a.quick else 5)
    a.duration = a.duration or (3.0 if a.quick else 6.0)
    return a


def main(argv: list[str]) -> None:
    if argv[:1] == ["--load"]:
        spec = json.loads(Path(argv[1]).read_text())
        Path(spec["out"]).write_text(json.dumps(asyncio.run(_load(spec))))
        return
    a = parse_args(argv)
    a.load_at_start = os.getloadavg()
    sizes = {
        "single": math.ceil(a.rate * a.duration / MEMBERS["single"]),
        "batch": api.BATCH * math.ceil(api.BATCH_CEILING * a.duration / MEMBERS["batch"] / 100),
    }
    total = sum(sizes[k] * MEMBERS[k] for k in sizes)
    modes_run = a.modes
    results: dict[str, list[dict[str, Any]]] = {m: [] for m in modes_run}
    order: list[str] = []
    exports: list[int] = []
    """One item per OTLP export the collector took (the traced nodes did export)."""
    with (
        progress_bar() as progress,
        tempfile.TemporaryDirectory(prefix="icn-bench-telemetry-") as t,
        collector(lambda _: exports.append(1)) as endpoint,
    ):
        tmp = Path(t)
        with chunks_progress(progress, "signing events (untimed)", total) as advance:
            phases, founding = api.generate(sizes, advance)
        founded = tmp / "founded.jsonl"
        founded.write_bytes(founding + b"\n")
        workload = tmp / "workload.msgpack"
        plain = {k: {"seeds": v.seeds, "chains": v.chains} for k, v in phases.items()}
        workload.write_bytes(msgspec.msgpack.encode(plain))
        modes = {
            "off": {"ICN_TELEMETRY": "off"},
            "off-again": {"ICN_TELEMETRY": "off"},
            "on": {"ICN_TELEMETRY": "on"},
            "traced": {
                "ICN_TELEMETRY": "on", "ICN_OTLP_ENDPOINT": endpoint,
                **({"ICN_TRACE_SAMPLE": str(a.sample)} if a.sample is not None else {}),
            },
            "traced-none": {
                "ICN_TELEMETRY": "on", "ICN_OTLP_ENDPOINT": endpoint, "ICN_TRACE_SAMPLE": "0",
            },
            "traced-all": {
                "ICN_TELEMETRY": "on", "ICN_OTLP_ENDPOINT": endpoint, "ICN_TRACE_SAMPLE": "1",
            },
        }  # fmt: skip
        for r in range(a.rounds):
            turn = r % len(modes_run)
            if a.together:
                _round_together(r, a, modes, tmp, founded, workload, progress, results)
                order.append("+".join(modes_run))
                continue
            for mode in modes_run[turn:] + modes_run[:turn]:
                order.append(mode)
                label = f"{mode} {r + 1}/{a.rounds}"
                for attempt in range(2):  # a node that did not set up is set up once more
                    run_dir = tmp / f"run-{r}-{mode}-{attempt}"
                    run_dir.mkdir()
                    try:
                        with (
                            chunks_progress(progress, f"HTTP {label}", 3) as advance,
                            node_with(modes[mode]),
                            api.running_node(run_dir, founded) as (base, pid),
                        ):
                            spec = {
                                "base": base, "node_pid": pid, "coop": api.COOP,
                                "workload": str(workload), "batch_concurrency": 4,
                                "events_url": f"/v1/coops/{api.COOP}/events",
                                "duration": a.duration, "rate": a.rate,
                            }  # fmt: skip
                            results[mode].append(_run_load(spec, run_dir, advance))
                        break
                    except subprocess.CalledProcessError as failed:
                        print(f"{label}: {failed.cmd[1:3]} failed: {failed.stderr!r:.600}")
                        if attempt:
                            raise
        exported = len(exports)
    report(results, order, a, exported)


def _round_together(
    r: int, a: argparse.Namespace, modes: dict[str, dict[str, str]], tmp: Path, founded: Path,
    workload: Path, progress: Any, results: dict[str, list[dict[str, Any]]],
) -> None:  # fmt: skip
    """One round with every mode's node running at once, each under its own load generator
    started at the same moment: what the machine's other work does to one mode it does to
    the others in the same seconds, so the per-round ratios compare like with like."""
    with contextlib.ExitStack() as stack:
        specs = {}
        for mode in a.modes:
            run_dir = tmp / f"run-{r}-{mode}"
            run_dir.mkdir()
            with node_with(modes[mode]):
                base, pid = stack.enter_context(api.running_node(run_dir, founded))
            specs[mode] = (run_dir, {
                "base": base, "node_pid": pid, "coop": api.COOP,
                "workload": str(workload), "batch_concurrency": 4,
                "events_url": f"/v1/coops/{api.COOP}/events",
                "duration": a.duration, "rate": a.rate, "single_only": a.single_only,
            })  # fmt: skip
        done: dict[str, dict[str, Any]] = {}
        advance = stack.enter_context(
            chunks_progress(progress, f"HTTP round {r + 1}/{a.rounds}", 3 * len(specs))
        )

        def run(mode: str) -> None:
            run_dir, spec = specs[mode]
            done[mode] = _run_load(spec, run_dir, advance)

        if a.perf is not None:  # a native profile of each node while it is loaded
            for mode, (_, spec) in specs.items():
                out = a.perf / f"{mode}-{r + 1}.data"
                cmd = ["perf", "record", "-q", "-F", "499", "-g", "-p", str(spec["node_pid"]),
                       "-o", str(out)]  # fmt: skip
                recorder = subprocess.Popen(
                    cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                )
                stack.callback(recorder.wait)
                stack.callback(recorder.send_signal, 2)

        threads = [threading.Thread(target=run, args=(m,)) for m in specs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for mode in a.modes:
            if mode not in done:
                raise SystemExit(f"round {r + 1}: the load on {mode} failed")
            results[mode].append(done[mode])


def _run_load(spec: dict[str, Any], tmp: Path, advance: api.Advance) -> dict[str, Any]:
    spec = {**spec, "out": str(tmp / "results.json")}
    (tmp / "spec.json").write_text(json.dumps(spec))
    proc = subprocess.Popen(
        [sys.executable, __file__, "--load", str(tmp / "spec.json")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("step "):
            advance(1)
    code = proc.wait(timeout=6 * spec["duration"] + 120)
    if code != 0:
        raise SystemExit(f"the load generator failed ({code}):\n{proc.stderr.read()[-3000:]}")  # type: ignore[union-attr]
    return dict(json.loads((tmp / "results.json").read_text()))


def _single_cpu_ms(r: dict[str, Any]) -> float:
    s = r["single"]
    return float(s["node_cpu_s"]) / (s["achieved_per_s"] * s["wall_s"]) * 1e3


def _batch_cpu_us(r: dict[str, Any]) -> float:
    return float(r["batch"]["node_cpu_s"]) / r["batch"]["events"] * 1e6


FIGURES = [
    ("single posts/s (achieved)", lambda r: r["single"]["achieved_per_s"], "{:,.0f}"),
    ("single: node CPU ms per post", _single_cpu_ms, "{:.3f}"),
    ("batch events/s", lambda r: r["batch"]["events_per_s"], "{:,.0f}"),
    ("batch: node CPU µs per event", _batch_cpu_us, "{:.1f}"),
    ("other work on the machine (cores)", lambda r: r["single"]["others_cores"], "{:.2f}"),
]
"""Throughput is what the budget is about, but on a shared machine it moves with the other
work; the node's own CPU time per post (or event) is what telemetry adds to, and moves
much less."""


def report(
    results: dict[str, list[dict[str, Any]]], order: list[str], a: argparse.Namespace,
    exported: int,
) -> None:  # fmt: skip
    rows, verdicts = [], []
    figures = [f for f in FIGURES if not (a.single_only and f[0].startswith("batch"))]
    modes = a.modes
    sample = DEFAULT_TRACE_SAMPLE if a.sample is None else a.sample
    for name, fn, fmt in figures:
        per = {m: [fn(r) for r in results[m]] for m in modes}
        med = {m: statistics.median(v) for m, v in per.items()}
        rows.append([
            name, *(fmt.format(med[m]) for m in modes),
            *(f"{med[m] / med['off']:.3f}" for m in modes[1:]),
        ])  # fmt: skip
        if "/s" in name or "CPU" in name:
            for m in modes[1:]:
                cost = 1 - med[m] / med["off"] if "/s" in name else med[m] / med["off"] - 1
                verdict = "ok" if cost <= BUDGET else "over"
                verdicts.append([f"{name}, {m}", f"{cost:+.1%}", f"≤ {BUDGET:.0%}", verdict])
    head = ["figure", *(f"median {m}" for m in modes), *(f"{m} / off" for m in modes[1:])]
    vhead = ["cost (throughput lost, CPU added)", "value", "target", "verdict"]
    rounds = [["round", *modes]]
    for name, fn, fmt in figures:
        if "/s" in name or "CPU" in name:
            for i in range(a.rounds):
                rounds.append([f"{name} {i + 1}", *(fmt.format(fn(results[m][i])) for m in modes)])
    print_table(f"telemetry {' / '.join(modes)}, medians of {a.rounds} rounds", head, rows)
    print_table("the budget", vhead, verdicts)
    print_table("every round", rounds[0], rounds[1:])
    facts = {
        **machine_info(),
        "command": " ".join(["python bench/telemetry.py", *sys.argv[1:]]),
        "load average (1, 5, 15 min)": "at the start {:.2f} {:.2f} {:.2f}, at the end"
        " {:.2f} {:.2f} {:.2f} (2 cores, shared)".format(*a.load_at_start, *os.getloadavg()),
        "rounds": (
            f"{a.rounds}, every mode's node at once in each ({', '.join(order)}), each under its"
            " own load generator started at the same moment"
            if a.together
            else f"{a.rounds} per mode, order rotated each round ({' '.join(order)})"
        )
        + ", each a fresh icn node run (SQLite, replication on its embedded nats-server,"
        " JSON logs)",
        "off": "ICN_TELEMETRY=off: no middleware, no instruments, no spans",
        "off-again": "off once more, in a node of its own: how far two like nodes differ",
        "on": "the default: instruments, the HTTP middleware (duration by route), /metrics;"
        " no trace exporter configured, so no span is made",
        "traced": f"on + ICN_OTLP_ENDPOINT: spans of {sample:.0%} of the writes recorded"
        f" and exported over OTLP/HTTP to a sink in the bench process ({exported} exports"
        " in all)",
        "traced-none": "the same with ICN_TRACE_SAMPLE=0: the tracer provider, its span"
        " processor and exporter set up, every write left out (no span, no export)",
        "traced-all": "the same with ICN_TRACE_SAMPLE=1: every write's spans",
        "single posts": f"open loop, {a.rate:g} req/s offered (above what the node sustains),"
        f" {MEMBERS['single']} members, {a.duration:g} s",
        "batch posts": f"100 events a request, 4 at once, closed loop, {a.duration:g} s",
        "load generator": "a separate process (bench/_api_load.py's phases)",
    }
    if a.single_only:
        facts["batch posts"] = "not run (--single-only)"
    text = "\n".join(
        f"- {k}: {v}" for k, v in facts.items() if k not in MODES or k in modes
    )  # only the modes that ran
    text += "\n\n" + markdown_table(head, rows) + "\n\n" + markdown_table(vhead, verdicts)
    text += "\n\n" + markdown_table(rounds[0], rounds[1:])
    if a.dry:
        return
    append_section(DOCS, f"Telemetry cost (bench/telemetry.py), {utc_now()}", text)
    print(f"results appended to {DOCS}")


if __name__ == "__main__":
    main(sys.argv[1:])
