"""How fast the node appends and audits signed events, against what it is built on.

Usage: ``python bench/log_append.py [--events N] [--audit-events N] [--reps R] [--quick]
[--profile] [--audit-only | --append-only] [--breakdown]``.

Every verified append pays for two things we do not write ourselves: the
Ed25519/BLAKE3 checks of each event and eventsourcing's SQLite recorder. So
the script measures both baselines in the same process and run as the node's
own paths, and reports the node against the bound they imply:
``1 / (verify µs + plain batched store µs)`` per event. Each repetition runs
every measurement once, on a fresh temporary database, so drift on a shared
machine hits baselines and candidates alike; figures are medians.

Wall-clock ratios on two cores need two free cores; the machine is often
shared. So every measurement also records the CPU time of this process and of
its worker processes per event, which other load hardly changes, and the
parallel ratios are also given as predicted from them: on ``k`` free cores a
run takes at least its total CPU over ``k`` and at least the caller's own CPU
(its part is serial). ``--breakdown`` prints where an audit's CPU goes per event.
"""

from __future__ import annotations

import argparse
import atexit
import os
import pickle
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from _common import (
    OthersLoad,
    Series,
    append_section,
    chunks_progress,
    coop_founded,
    machine_info,
    markdown_table,
    print_table,
    profile_top,
    progress_bar,
    timed,
    utc_now,
)
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from nacl.signing import SigningKey

from icn.application.append import AppendEvents, Outcome
from icn.application.audit import (
    StoreAudit,
    _audit_events,
    _Log,
    audit_file,
    audit_store,
)
from icn.application.audit_chunks import chunk_facts
from icn.application.intake import Intake
from icn.application.memory_view import MemoryChains
from icn.application.parallel import (
    InlineVerifier,
    ProcessVerifier,
    Verifier,
    cores,
    make_verifier,
)
from icn.domain.events.chain import judge
from icn.domain.events.envelope import inspect, sign_event, stored_inspection
from icn.domain.identity.did import did_from_public_key
from icn.infrastructure.store.database import parse_database_url
from icn.infrastructure.store.event_store import SqlEventStore
from icn.infrastructure.store.parked import SqlReplicationState
from icn.interfaces.bootstrap import clock_ms

COOP = "bench-coop"
MEMBERS = 20
BATCH = 100
T0_MS = 1_700_000_000_000
DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
TARGET_HEAD = ["ratio", "value", "target", "verdict"]
T = TypeVar("T")
Advance = Callable[[int], None]
Runner = Callable[[Callable[[], object]], Any]
Measure = Callable[["Workload", int, Advance], float]


@dataclass
class Workload:
    """Signed wire lines in a valid order, and the plain bodies of the first few."""

    lines: list[bytes]
    bodies: list[dict[str, Any]]
    founded: bytes
    """The coop's ``coop.Founded`` (all authors are founding members), appended untimed first."""


def generate(count: int, keep_bodies: int, advance: Advance) -> Workload:
    """``count`` entries by ``MEMBERS`` authors, round-robin so every prefix is a valid log."""
    keys = [SigningKey.generate() for _ in range(MEMBERS)]
    dids = [did_from_public_key(bytes(k.verify_key)) for k in keys]
    prev: list[str | None] = [None] * MEMBERS
    lines: list[bytes] = []
    bodies: list[dict[str, Any]] = []
    for i in range(count):
        m, rnd = i % MEMBERS, i // MEMBERS
        to = dids[(m + 1 + rnd % (MEMBERS - 1)) % MEMBERS]
        tx = {"from": dids[m], "to": to, "amount": i % 1000 + 1, "currency": "hours"}
        body = {"transactions": [{**tx, "memo": "bench"}]}
        ev = sign_event(
            keys[m], coop=COOP, seq=rnd + 1, prev=prev[m], ts=T0_MS + i,
            type="ledger.EntryRecorded", body=body,
        )  # fmt: skip
        prev[m] = ev.id
        lines.append(ev.wire_bytes())
        if i < keep_bodies:
            bodies.append(body)
        if i % BATCH == BATCH - 1:
            advance(BATCH)
    return Workload(lines, bodies, coop_founded(COOP, dids, T0_MS - 1))


_loop_cpu: list[float] = []
"""This process's CPU seconds in the last timed loop (see :func:`timed_loop`)."""


def timed_loop(loop: Callable[[], object]) -> float:
    """``timed(loop)``, also noting this process's CPU in the loop alone: a measurement's
    setup (a fresh store, its tables, the coop's founding, a pool's start) is then left out
    of its CPU per event, as it is of its wall time (it was ~10-40 µs/event at 5,000)."""
    before = os.times()
    seconds = timed(loop)
    after = os.times()
    _loop_cpu.append(after.user + after.system - before.user - before.system)
    return seconds


def _chunks(items: Sequence[T], n: int) -> Iterator[Sequence[T]]:
    return (items[i : i + BATCH] for i in range(0, n, BATCH))


# -- baselines ---------------------------------------------------------------------


def verify_only(w: Workload, n: int, advance: Advance, run: Runner = timed_loop) -> Any:
    """Stateless checks only (decode, id, signature): the crypto floor of every append."""

    def loop() -> None:
        for chunk in _chunks(w.lines, n):
            for line in chunk:
                if inspect(line).verdict is not None:
                    raise SystemExit("verify baseline: a generated event did not verify")
            advance(len(chunk))

    return run(loop)


class Account(Aggregate):
    """A member's account in plain eventsourcing: the unsigned twin of a signed chain."""

    @event("Opened")
    def __init__(self, member: int) -> None:
        self.member = member

    @event("EntryRecorded")
    def record(self, transactions: list[dict[str, Any]]) -> None:
        """One entry, with the same transactions as the signed event."""


@contextmanager
def plain_app() -> Iterator[tuple[Application[Any], list[Account]]]:
    """A fresh eventsourcing SQLite application with one saved account per member."""
    with tempfile.TemporaryDirectory(prefix="icn-bench-") as tmp:
        env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": f"{tmp}/es.sqlite3"}
        app: Application[Any] = Application(env=env)
        try:
            accounts = [Account(m) for m in range(MEMBERS)]
            app.save(*accounts)
            yield app, accounts
        finally:
            app.close()


def plain_single(w: Workload, n: int, advance: Advance, run: Runner = timed_loop) -> Any:
    """One event per ``app.save``: what a transaction costs the library alone."""
    with plain_app() as (app, accounts):

        def loop() -> None:
            for start in range(0, n, BATCH):
                for i, body in enumerate(w.bodies[start : start + BATCH], start):
                    account = accounts[i % MEMBERS]
                    account.record(body["transactions"])
                    app.save(account)
                advance(min(BATCH, n - start))

        return run(loop)


def plain_batched(w: Workload, n: int, advance: Advance, run: Runner = timed_loop) -> Any:
    """100 pending events across the members' aggregates per ``app.save``."""
    with plain_app() as (app, accounts):

        def loop() -> None:
            for start in range(0, n, BATCH):
                for i, body in enumerate(w.bodies[start : start + BATCH], start):
                    accounts[i % MEMBERS].record(body["transactions"])
                app.save(*accounts)
                advance(min(BATCH, n - start))

        return run(loop)


# -- the node ----------------------------------------------------------------------


@contextmanager
def icn_node(founded: bytes) -> Iterator[tuple[SqlEventStore, AppendEvents]]:
    """The node's store and write path on a fresh default SQLite store, the coop founded."""
    with tempfile.TemporaryDirectory(prefix="icn-bench-") as tmp:
        store = SqlEventStore(parse_database_url(None, Path(tmp)))
        try:
            store.create_tables()
            appender = AppendEvents(store, clock_ms)
            _check(appender.append([founded]))
            yield store, appender
        finally:
            store.close()


@contextmanager
def icn_appender(founded: bytes) -> Iterator[AppendEvents]:
    """The node's write path on a fresh default SQLite store, with the coop founded."""
    with icn_node(founded) as (_, appender):
        yield appender


def _check(outcomes: list[Outcome]) -> None:
    if not all(o.stored for o in outcomes):
        raise SystemExit(f"append refused a generated event: {outcomes}")


def icn_single(w: Workload, n: int, advance: Advance, run: Runner = timed_loop) -> Any:
    """``append([line])`` one event at a time: one verified transaction each."""
    with icn_appender(w.founded) as appender:

        def loop() -> None:
            for chunk in _chunks(w.lines, n):
                for line in chunk:
                    _check(appender.append([line]))
                advance(len(chunk))

        return run(loop)


def icn_batched(w: Workload, n: int, advance: Advance, run: Runner = timed_loop) -> Any:
    """``append(lines[i:i+100])``: the import and replication path."""
    with icn_appender(w.founded) as appender:

        def loop() -> None:
            for chunk in _chunks(w.lines, n):
                _check(appender.append(chunk))
                advance(len(chunk))

        return run(loop)


def _verifier(
    workers: int, processes: bool, *, caller_appends: bool = False, imports: bool = False
) -> Verifier:
    """With processes, ``caller_appends`` leaves all the verifying to them, as the CLI's
    import and audit run (stream_verifier); else the caller takes a share itself.
    ``imports``: the workers yield to the caller, as ``icn log import``'s do."""
    if workers <= 1:
        return InlineVerifier()
    if processes:
        return ProcessVerifier(workers, caller_verifies=not caller_appends, yield_to_caller=imports)
    return make_verifier(workers)


def icn_batched_parallel(workers: int, processes: bool = False, *, yields: bool = True) -> Measure:
    """Batches of 100 verified on ``workers`` threads (or processes) while the previous
    batch is judged and appended: what ``icn log import`` runs (``yields``: its worker
    processes run below the caller's priority; False: at it, as before)."""

    def measure(w: Workload, n: int, advance: Advance) -> float:
        verifier = _verifier(workers, processes, caller_appends=True, imports=yields)
        try:
            with icn_appender(w.founded) as appender:

                def loop() -> None:
                    for chunk, inspections in verifier.stream(w.lines[:n], chunk=BATCH):
                        _check(appender.append_inspected(inspections))
                        advance(len(chunk))

                return float(timed_loop(loop))
        finally:
            verifier.close()

    return measure


def batch_inspect(workers: int) -> Measure:
    """``Verifier.inspect`` of one request's 100 lines at a time, as the HTTP batch route
    calls it (no pipeline: a request is verified, then appended)."""

    def measure(w: Workload, n: int, advance: Advance) -> float:
        verifier = _verifier(workers, False)

        def loop() -> None:
            for chunk in _chunks(w.lines, n):
                if any(i.verdict is not None for i in verifier.inspect(chunk)):
                    raise SystemExit("batch inspect: a generated event did not verify")
                advance(len(chunk))

        try:
            return float(timed_loop(loop))
        finally:
            verifier.close()

    return measure


def intake(workers: int) -> Measure:
    """``Intake.receive`` of batches of 100, as a replica takes a coop's stream."""

    def measure(w: Workload, n: int, advance: Advance) -> float:
        verifier = _verifier(workers, False)
        try:
            with icn_node(w.founded) as (store, appender):
                state = SqlReplicationState(store)
                taker = Intake(appender, state, clock_ms, verifier=verifier)

                def loop() -> None:
                    for chunk in _chunks(w.lines, n):
                        counts = taker.receive(COOP, list(chunk))
                        if counts.accepted != len(chunk):
                            raise SystemExit(f"intake refused a generated event: {counts}")
                        advance(len(chunk))

                try:
                    return float(timed_loop(loop))
                finally:
                    state.close()
        finally:
            verifier.close()

    return measure


_files: dict[int, Path] = {}


def _log_file(w: Workload, n: int) -> Path:
    """The first ``n`` lines as a ``jsonl`` file, written once per run and removed at exit."""
    if n not in _files:
        tmp = tempfile.TemporaryDirectory(prefix="icn-bench-file-")
        atexit.register(tmp.cleanup)
        _files[n] = Path(tmp.name) / "log.jsonl"
        _files[n].write_bytes(b"\n".join(w.lines[:n]) + b"\n")
    return _files[n]


def audit(workers: int, processes: bool = False, *, caller_judges_only: bool = False) -> Measure:
    """``audit_file`` of the log as a file, as ``icn audit verify FILE --workers N`` runs it:
    the workers read their chunks of the file themselves (``caller_judges_only``: ``workers``
    processes, the caller verifies no chunk itself)."""

    def measure(w: Workload, n: int, advance: Advance) -> float:
        path = _log_file(w, n)
        result: list[Any] = []
        verifier = _verifier(workers, processes, caller_appends=caller_judges_only)
        try:
            seconds = timed(
                lambda: result.append(audit_file(path, verifier=verifier, progress=advance))
            )
        finally:
            verifier.close()
        if not result[0].passed or len(result[0].verdicts) != n:
            raise SystemExit(f"audit with {workers} workers did not pass the generated log")
        return seconds

    return measure


_stores: dict[int, SqlEventStore] = {}


def _audited_store(w: Workload, n: int) -> SqlEventStore:
    """A SQLite store holding the coop's ``coop.Founded`` and ``n`` events, made once per
    run (untimed) and removed at exit."""
    if n not in _stores:
        tmp = tempfile.TemporaryDirectory(prefix="icn-bench-audit-")
        store = SqlEventStore(parse_database_url(None, Path(tmp.name)))
        store.create_tables()
        appender = AppendEvents(store, clock_ms)
        _check(appender.append([w.founded]))
        for chunk in _chunks(w.lines, n):
            _check(appender.append(list(chunk)))
        atexit.register(tmp.cleanup)
        atexit.register(store.close)
        _stores[n] = store
    return _stores[n]


def audit_coop(workers: int, *, by_events: bool = False) -> Measure:
    """``audit_store`` of the coop's stored log, as ``icn audit verify --coop`` runs it: one
    worker in the caller, or ``workers`` processes with a caller that only takes their
    facts (``stream_verifier``). ``by_events``: the audit as it was before units (the
    caller reads every event, ships it and hashes its leaf), still its fallback."""

    def measure(w: Workload, n: int, advance: Advance) -> float:
        store = _audited_store(w, n)
        result: list[StoreAudit] = []
        verifier = _verifier(workers, True, caller_appends=True)
        run = _audit_events if by_events else None
        try:
            if run is None:
                call = lambda: result.append(  # noqa: E731
                    audit_store(store, COOP, None, verifier=verifier, progress=advance)
                )
            else:
                call = lambda: result.append(run(store, COOP, None, verifier, advance))  # noqa: E731
            seconds = timed(call)
        finally:
            verifier.close()
        if not result[0].passed or result[0].size != n + 1:
            raise SystemExit(f"audit --coop with {workers} workers did not pass the stored log")
        return seconds

    return measure


# -- CPU time ----------------------------------------------------------------------


@dataclass
class Cpu:
    """CPU seconds per repetition: this process (in its timed loop where it notes it, see
    :func:`timed_loop`), and the worker processes it waited for (their whole life: they
    report only once stopped)."""

    own: list[float]
    workers: list[float]

    @contextmanager
    def watch(self) -> Iterator[None]:
        """Record the CPU of the ``with`` block (a measurement closes its pool inside it)."""
        before = os.times()
        yield
        after = os.times()
        whole = after.user + after.system - before.user - before.system
        self.own.append(_loop_cpu.pop() if _loop_cpu else whole)
        _loop_cpu.clear()
        self.workers.append(
            after.children_user + after.children_system
            - before.children_user - before.children_system
        )  # fmt: skip

    def per_event(self, events: int) -> tuple[float, float]:
        """Median µs per event of (this process, workers)."""
        scale = 1e6 / events
        return statistics.median(self.own) * scale, statistics.median(self.workers) * scale


def predicted(cpu1: float, own: float, workers: float, k: int) -> float:
    """The speed-up over ``cpu1`` µs/event that ``k`` free cores allow a run that spent
    ``own`` µs/event in the caller and ``workers`` in worker processes: it takes at least
    the total over ``k`` and at least the caller's own share (its part is serial). Not for
    threads, whose Python parts take turns on the GIL."""
    return cpu1 / max((own + workers) / k, own)


def breakdown(w: Workload, n: int) -> list[list[str]]:
    """Where an audit's CPU goes per event (``process_time``; load hardly changes it)."""
    lines = w.lines[:n]
    parts = [lines[i : i + 1000] for i in range(0, n, 1000)]

    def cpu(fn: Callable[[], object]) -> float:
        start = time.process_time()
        fn()
        return (time.process_time() - start) / n * 1e6

    inspections = [inspect(line) for line in lines]
    facts = [chunk_facts(p) for p in parts]
    packed = [pickle.dumps(f, pickle.HIGHEST_PROTOCOL) for f in facts]

    def judge_each() -> None:
        chains = MemoryChains()
        for ins in inspections:
            if judge(ins, chains).verdict.value == "ok" and ins.event is not None:
                chains.accept(ins.event)

    def take() -> None:
        log = _Log(MemoryChains())
        for f in facts:
            if not isinstance(f, list) and not log.take(f):
                raise SystemExit("breakdown: a clean chunk did not continue the log")

    rows = [
        ("worker", "inspect (decode, shape, typed body, id, Ed25519)",
         cpu(lambda: [inspect(x) for x in lines])),
        ("worker", "chunk_facts (inspect + judge in the chunk + facts)",
         cpu(lambda: [chunk_facts(p) for p in parts])),
        ("worker", "pickle the facts", cpu(lambda: [pickle.dumps(f, -1) for f in facts])),
        ("caller", "pickle the lines to send", cpu(lambda: [pickle.dumps(p, -1) for p in parts])),
        ("caller", "unpickle the facts", cpu(lambda: [pickle.loads(b) for b in packed])),
        ("caller", "take the facts (a boundary per author, ids, balances)", cpu(take)),
        ("caller (before)", "decode again: stored_inspection",
         cpu(lambda: [stored_inspection(x) for x in lines])),
        ("caller (before)", "judge + accept each event", cpu(judge_each)),
    ]  # fmt: skip
    size = sum(map(len, packed)) / n
    rows.append(("", f"facts: {size:.0f} pickled bytes per event (the line: "
                 f"{statistics.mean(map(len, lines)):.0f})", 0.0))  # fmt: skip
    return [[who, what, f"{us:.2f}" if us else ""] for who, what, us in rows]


# -- report --------------------------------------------------------------------------


def _ratio(s: dict[str, Series], a: str, b: str) -> float | None:
    return s[a].rate / s[b].rate if a in s and b in s else None


def checks(
    s: dict[str, Series], cpus: dict[str, tuple[float, float]], k: int
) -> list[tuple[str, str, str, str]]:
    """(what, value, target, verdict) rows: the targets, judged on medians of this run
    (rows whose measurements did not run are left out)."""
    verdict = {True: "PASS", False: "FAIL"}
    rows: list[tuple[str, str, str, str]] = []
    if "verify" in s:
        verify, plain = s["verify"].us_per_event, s["plain_batch"].us_per_event
        bound = 1e6 / (verify + plain)
        bound_k = 1e6 / (verify / k + plain)
        batch = s["icn_batch"].rate
        threads, procs = s[f"icn_batch_t{k}"].rate, s[f"icn_batch_p{k}"].rate
        ratio = batch / bound
        rows += [
            ("verified-append bound, 1 core (ev/s)", f"{bound:,.0f}", "", "info"),
            ("batch append / bound", f"{ratio:.2f}", "≥ 0.70", verdict[ratio >= 0.7]),
            ("batch append (ev/s)", f"{batch:,.0f}", "≥ 10,000", verdict[batch >= 10_000]),
        ]
        if "icn_single" in s:
            single = s["icn_single"].rate / s["plain_single"].rate
            rows.append(("single append / plain single save", f"{single:.2f}", "≥ 0.70",
                         verdict[single >= 0.7]))  # fmt: skip
        # On k free cores the verified append takes at least its total CPU over k and at
        # least the caller's own (judge and store are serial); the bound, from the same
        # run's CPU: verify over k plus the plain batched save.
        bound_cpu = sum(cpus["verify"]) / k + sum(cpus["plain_batch"])
        own, workers = cpus[f"icn_batch_p{k}"]
        guess = bound_cpu / max((own + workers) / k, own)
        rows += [
            (f"verified-append bound, verify on {k} cores (ev/s)", f"{bound_k:,.0f}", "", "info"),
            (f"batch append, verify on {k} threads / bound on {k}", f"{threads / bound_k:.2f}",
             "≥ 0.75", verdict[threads / bound_k >= 0.75]),
            (f"batch append, verify in {k} processes / bound on {k}", f"{procs / bound_k:.2f}",
             "≥ 0.75", verdict[procs / bound_k >= 0.75]),
            (f"  the same, predicted from CPU time on {k} free cores", f"{guess:.2f}", "≥ 0.75",
             "info"),
        ]  # fmt: skip
        if f"icn_batch_e{k}" in s:
            even = s[f"icn_batch_e{k}"].rate
            rows.append((f"  the same, workers at the caller's priority (before) / bound on {k}",
                         f"{even / bound_k:.2f}", "", "info"))  # fmt: skip
        http, take = _ratio(s, f"http_t{k}", "http_1"), _ratio(s, f"intake_t{k}", "intake_1")
        rows += [
            (f"HTTP batch verify (100), {k} threads / 1", f"{http:.2f}", f"ideal {k}", "info"),
            (f"intake receive (100), {k} threads / 1", f"{take:.2f}", "", "info"),
        ]
    if "audit_1" not in s:
        return rows
    a1 = s["audit_1"].rate
    rows.append(("audit, 1 worker (ev/s)", f"{a1:,.0f}", "≥ 15,000", verdict[a1 >= 15_000]))
    cpu1 = sum(cpus["audit_1"])
    shared = f"{k - 1} worker process{'es' if k > 2 else ''} + the caller"
    for key, label in [(f"audit_t{k}", f"{k} threads"),
                       (f"audit_p{k}", shared),
                       (f"audit_w{k}", f"{k} processes, the caller judges (CLI)")]:  # fmt: skip
        ratio = s[key].rate / a1
        rows.append((f"audit, {label} / 1 worker", f"{ratio:.2f}", "≥ 1.80", verdict[ratio >= 1.8]))
        if key != f"audit_t{k}":
            guess = predicted(cpu1, *cpus[key], k)
            rows.append((f"  the same, predicted from CPU time on {k} free cores",
                         f"{guess:.2f}", "≥ 1.80", "info"))  # fmt: skip
    if "coop_1" in s:
        for key, base, label in [
            (f"coop_w{k}", "coop_1", f"{k} processes read their units (CLI)"),
            (f"coop_e{k}", "coop_e1", f"{k} processes, event by event (before)"),
        ]:
            c1, coop1 = s[base].rate, sum(cpus[base])
            ratio = s[key].rate / c1
            rows.append((f"audit --coop, {label} / 1 worker", f"{ratio:.2f}", "≥ 1.80",
                         verdict[ratio >= 1.8]))  # fmt: skip
            rows.append((f"  the same, predicted from CPU time on {k} free cores",
                         f"{predicted(coop1, *cpus[key], k):.2f}", "≥ 1.80", "info"))  # fmt: skip
    return rows


HEADER = [*Series.HEADER, "CPU µs/ev here", "CPU µs/ev workers", "others' cores", "load 1 min"]
"""CPU per event in this process and in worker processes (medians), cores other
processes kept busy meanwhile (median) and the load average: a parallel ratio is only
comparable between runs where others' cores are near 0."""


def report(
    series: dict[str, Series],
    load: dict[str, OthersLoad],
    cpu: dict[str, Cpu],
    loadavg: dict[str, list[float]],
    k: int,
    params: dict[str, str],
    extra: str = "",
) -> None:
    """Print both tables and append the run's section to docs/benchmarks.md."""
    cpus = {key: cpu[key].per_event(s.events) for key, s in series.items()}
    rows = [
        [*s.row(), f"{cpus[key][0]:.1f}", f"{cpus[key][1]:.1f}",
         f"{statistics.median(load[key].cores):.2f}",
         f"{min(loadavg[key]):.1f}–{max(loadavg[key]):.1f}"]
        for key, s in series.items()
    ]  # fmt: skip
    verdicts = [list(r) for r in checks(series, cpus, k)]
    print_table("medians", HEADER, rows)
    print_table("targets", TARGET_HEAD, verdicts)
    facts = {**machine_info(), **params}
    text = "\n".join(f"- {k}: {v}" for k, v in facts.items())
    text += "\n\n" + markdown_table(HEADER, rows)
    text += "\n\n" + markdown_table(TARGET_HEAD, verdicts)
    text += extra
    append_section(DOCS, f"log_append, {utc_now()}", text)
    print(f"appended to {DOCS}")


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Defaults keep a full run under ~6 minutes on two cores; --quick under ~90 s.

    Five repetitions by default: on a shared machine single runs differ by 3x.
    """
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, help="events per append measurement (5000; quick 1000)")
    p.add_argument("--audit-events", type=int, help="audit log size (100000; quick 20000)")
    p.add_argument("--reps", type=int, default=5, choices=range(3, 21), metavar="R (3..20)")
    p.add_argument("--quick", action="store_true", help="smaller sizes for a smoke run")
    p.add_argument("--profile", action="store_true", help="cProfile one batched append, then stop")
    only = p.add_mutually_exclusive_group()
    only.add_argument("--audit-only", action="store_true", help="only the audit measurements")
    only.add_argument(
        "--append-only",
        action="store_true",
        help="only the batch appends, their baselines, HTTP batch verify and intake",
    )
    p.add_argument(
        "--breakdown", action="store_true", help="also the audit's CPU per event, part by part"
    )
    args = p.parse_args(argv)
    args.events = args.events or (1000 if args.quick else 5000)
    args.audit_events = args.audit_events or (20_000 if args.quick else 100_000)
    return args


def main(argv: list[str]) -> None:
    """Generate once, run every measurement ``reps`` times interleaved, report medians."""
    args = parse_args(argv)
    n, n_audit = args.events, args.audit_events
    k = max(2, cores())
    with progress_bar() as progress:
        total = n if args.append_only else max(n, n_audit)
        with chunks_progress(progress, "signing events (untimed)", total) as advance:
            w = generate(total, n, advance)
    if args.profile:
        print(icn_batched(w, n, lambda _: None, run=profile_top))
        return
    plan: dict[str, tuple[Series, Measure]] = {} if args.audit_only else {
        "verify": (Series("verify only (inspect)", n), verify_only),
        "plain_single": (Series("plain ES single save", n), plain_single),
        "plain_batch": (Series("plain ES batched save (100)", n), plain_batched),
        "icn_single": (Series("icn single append", n), icn_single),
        "icn_batch": (Series("icn batch append (100)", n), icn_batched),
        f"icn_batch_t{k}": (
            Series(f"icn batch append (100), verify on {k} threads", n),
            icn_batched_parallel(k),
        ),
        f"icn_batch_p{k}": (
            Series(f"icn batch append (100), verify in {k} processes", n),
            icn_batched_parallel(k, processes=True),
        ),
        f"icn_batch_e{k}": (
            Series(f"icn batch append (100), verify in {k} processes at the caller's priority", n),
            icn_batched_parallel(k, processes=True, yields=False),
        ),
        "http_1": (Series("HTTP batch verify (100), 1 thread", n), batch_inspect(1)),
        f"http_t{k}": (Series(f"HTTP batch verify (100), {k} threads", n), batch_inspect(k)),
        "intake_1": (Series("intake receive (100), 1 thread", n), intake(1)),
        f"intake_t{k}": (Series(f"intake receive (100), {k} threads", n), intake(k)),
    }  # fmt: skip
    if args.append_only:
        for key in ("plain_single", "icn_single"):
            del plan[key]
    plan |= {} if args.append_only else {
        "audit_1": (Series("icn audit, 1 worker", n_audit), audit(1)),
        f"audit_t{k}": (Series(f"icn audit, {k} threads", n_audit), audit(k)),
        f"audit_p{k}": (
            Series(f"icn audit, {k - 1} worker process(es) + the caller", n_audit),
            audit(k, processes=True),
        ),
        f"audit_w{k}": (
            Series(f"icn audit, {k} processes, the caller judges (CLI)", n_audit),
            audit(k, processes=True, caller_judges_only=True),
        ),
        "coop_1": (Series("icn audit --coop, 1 worker", n_audit), audit_coop(1)),
        f"coop_w{k}": (
            Series(f"icn audit --coop, {k} processes read their units (CLI)", n_audit),
            audit_coop(k),
        ),
        "coop_e1": (
            Series("icn audit --coop, 1 worker, event by event (before)", n_audit),
            audit_coop(1, by_events=True),
        ),
        f"coop_e{k}": (
            Series(f"icn audit --coop, {k} processes, event by event (before)", n_audit),
            audit_coop(k, by_events=True),
        ),
    }  # fmt: skip
    load = {key: OthersLoad() for key in plan}
    cpu = {key: Cpu([], []) for key in plan}
    loadavg: dict[str, list[float]] = {key: [] for key in plan}
    with progress_bar() as progress:
        for rep in range(args.reps):
            for key, (s, measure) in plan.items():
                label = f"{s.name[:22]} {rep + 1}/{args.reps}"
                loadavg[key].append(os.getloadavg()[0])
                with (
                    chunks_progress(progress, label, s.events) as adv,
                    load[key].watch(),
                    cpu[key].watch(),
                ):
                    s.seconds.append(measure(w, s.events, adv))
    extra = ""
    if args.breakdown:
        rows = breakdown(w, min(n_audit, 20_000, len(w.lines)))
        print_table("audit CPU per event", ["where", "what", "µs/event"], rows)
        extra = "\n\nAn audit's CPU per event, part by part (`--breakdown`, process time):\n\n"
        extra += markdown_table(["where", "what", "µs/event"], rows)
    params = {
        "command": " ".join(["python bench/log_append.py", *argv]),
        "events per append measurement": f"{n:,}",
        "audit log": "not run" if args.append_only else f"{n_audit:,} events",
        "repetitions": f"{args.reps} (medians), alternating",
        "workload": f"{MEMBERS} members round-robin, coop {COOP} (no coop.Founded),"
        f" 1 ledger.EntryRecorded transaction per event, batch {BATCH}",
        "mean wire bytes": f"{statistics.mean(len(x) for x in w.lines[:n]):.0f}",
    }
    report({key: s for key, (s, _) in plan.items()}, load, cpu, loadavg, k, params, extra)


if __name__ == "__main__":
    main(sys.argv[1:])
