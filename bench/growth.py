"""Costs against history: every write and read path at 10k, 100k and 1M coop events.

A coop's log only grows, so no path a member waits on may cost more the longer
the history is. This builds one coop's history with batched appends (untimed),
stopping at each size to measure every path, on SQLite and on PostgreSQL, and
reports each cost as a ratio against the smallest size: writes must stay within
1.2x, reads' p99 within 1.5x. One member (the coop's treasurer) writes a growing
share of the log, so its chain is 500, 10,000 and 100,000 events long at the three
sizes, and it is the busy account whose history is paged.

The chart (cost against history, one line per path) is written to
``docs/growth.svg`` and the results appended to ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
from nacl.signing import SigningKey
from sqlalchemy import text

from icn.application.append import AppendEvents, Outcome
from icn.domain.events.envelope import sign_event, stored_inspection
from icn.domain.identity.did import did_from_public_key
from icn.infrastructure.store.database import Database, parse_database_url
from icn.infrastructure.store.event_store import SqlEventStore
from icn.infrastructure.store.read_models import ReadSide
from icn.infrastructure.store.wal import WalCheckpointer
from icn.interfaces.bootstrap import clock_ms
from icn.interfaces.http.stream_source import Filters, read_page
from icn.projections import ledger_views as views

COOP = "bench-growth"
MEMBERS = 200
"""A coop of a few hundred members: member 0 is the treasurer (the busy chain and
account), member 1 writes a handful of events early on (the author-filtered page)."""
BUSY, RARE = 0, 1
RARE_EVENTS = 5
BUILD_BATCH = 1000
T0_MS = 1_700_000_000_000
DOCS = Path(__file__).resolve().parent.parent / "docs"
WRITE_TARGET, READ_TARGET = 1.2, 1.5

FULL = ((10_000, 500), (100_000, 10_000), (1_000_000, 100_000))
TINY = ((3_000, 100), (10_000, 500))
"""A smoke run of the script itself (``--tiny``), not a measurement."""
"""(coop events, treasurer's chain length) at each stop."""

SINGLES = 150
"""Single appends per write path and stop (each one a transaction and a sync)."""
BATCHES = 15
"""Batches of 100 per stop."""
ROUNDS = 5
"""Interleaved rounds over the stops' stores; each takes a fifth of every measurement."""
STORAGE_HEAD = ["table", "bytes/event", "× wire"]


# -- the history ----------------------------------------------------------------------


def schedule(stops: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """(author, payee) of every history event, in log order, up to the last stop; the
    treasurer's share of each stretch brings its chain to the stop's length."""
    slots: list[tuple[int, int]] = []
    done, chain, others = 0, 0, 2
    for size, busy_len in stops:
        n, busy = size - done, busy_len - chain
        for j in range(n):
            index = len(slots)
            if (j + 1) * busy // n > j * busy // n:
                author = BUSY
            elif index < RARE_EVENTS * 1000 and index % 1000 == 999:
                author = RARE
            else:
                author, others = others, others + 1 if others + 1 < MEMBERS else 2
            slots.append((author, _payee(author, index)))
        done, chain = size, busy_len
    return slots


def _payee(author: int, index: int) -> int:
    """Someone else; the treasurer is party to every tenth payment of the others too."""
    if author != BUSY and index % 10 == 0:
        return BUSY
    return (author + 1 + index % (MEMBERS - 2)) % MEMBERS


def keys() -> list[SigningKey]:
    """The members' keys, from fixed seeds so every worker derives the same ones."""
    return [SigningKey(i.to_bytes(4, "big") * 8) for i in range(MEMBERS)]


@dataclass
class Tip:
    """Where a chain stands: its last seq and id."""

    seq: int = 0
    id: str | None = None


def sign(ks: list[SigningKey], ds: list[str], tip: Tip, index: int, author: int, to: int) -> bytes:
    """One payment of ``author`` to ``to``, the next event of its chain (``tip`` moves)."""
    tx = {
        "from": ds[author],
        "to": ds[to],
        "amount": index % 1000 + 1,
        "currency": "hours",
        "memo": "growth",
    }
    ev = sign_event(
        ks[author],
        coop=COOP,
        seq=tip.seq + 1,
        prev=tip.id,
        ts=T0_MS + index,
        type="ledger.EntryRecorded",
        body={"transactions": [tx]},
    )
    tip.seq, tip.id = tip.seq + 1, ev.id
    return ev.wire_bytes()


def sign_chain(job: tuple[int, list[tuple[int, int]]]) -> list[tuple[int, bytes]]:
    """One member's whole chain, in order: (log index, wire bytes) per event."""
    author, slots = job
    ks = keys()
    ds = [did_from_public_key(bytes(k.verify_key)) for k in ks]
    tip = Tip()
    return [(index, sign(ks, ds, tip, index, author, to)) for index, to in slots]


def sign_all(slots: list[tuple[int, int]], workers: int) -> list[bytes]:
    """Wire lines for every slot, in log order (chains signed in parallel, by author)."""
    chains: dict[int, list[tuple[int, int]]] = {}
    for index, (author, to) in enumerate(slots):
        chains.setdefault(author, []).append((index, to))
    lines: list[bytes] = [b""] * len(slots)
    jobs = sorted(chains.items(), key=lambda kv: -len(kv[1]))  # the long chain first
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        for chain in pool.imap_unordered(sign_chain, jobs):
            for index, line in chain:
                lines[index] = line
    return lines


@dataclass
class Writes:
    """A stop's measured writes, signed to continue its history: single appends by the
    treasurer, by other members, and batches of 100 (every tenth event the treasurer's)."""

    busy: list[bytes]
    members: list[bytes]
    batches: list[list[bytes]]


def branch(slots: list[tuple[int, int]], lines: list[bytes], size: int) -> Writes:
    """The writes of the stop at ``size`` events: each chain goes on from its last event
    in the first ``size`` (so every stop's store gets writes of its own)."""
    tips = [Tip() for _ in range(MEMBERS)]
    for i in range(size - 1, -1, -1):
        tip = tips[slots[i][0]]
        if tip.id is None:
            event = stored_inspection(lines[i]).event
            assert event is not None
            tip.seq, tip.id = event.seq, event.id
    ks = keys()
    ds = [did_from_public_key(bytes(k.verify_key)) for k in ks]
    index, other = size, 2

    def next_line(author: int | None) -> bytes:
        nonlocal index, other
        if author is None:
            author, other = other, other + 1 if other + 1 < MEMBERS else 2
        index += 1
        return sign(ks, ds, tips[author], index, author, _payee(author, index))

    busy: list[bytes] = []
    members: list[bytes] = []
    batches: list[list[bytes]] = []
    for _ in range(ROUNDS):  # signed in the order the rounds append them
        busy += [next_line(BUSY) for _ in range(SINGLES // ROUNDS)]
        members += [next_line(None) for _ in range(SINGLES // ROUNDS)]
        batches += [
            [next_line(BUSY if j % 10 == 0 else None) for j in range(100)]
            for _ in range(BATCHES // ROUNDS)
        ]
    return Writes(busy, members, batches)


# -- the measurements -----------------------------------------------------------------


@dataclass
class Path_:
    """One path measured at every stop: its samples (µs) per stop."""

    name: str
    kind: str  # "write" (median), "cpu" (a write's CPU time, median) or "read" (p99)
    samples: list[list[float]] = field(default_factory=list)

    def figure(self, stop: int) -> float:
        """Median for writes, p99 for reads."""
        xs = sorted(self.samples[stop])
        if self.kind != "read":
            return statistics.median(xs)
        return xs[min(len(xs) - 1, int(0.99 * len(xs)))]

    def ratio(self, stop: int) -> float:
        """This stop's figure against the first stop's."""
        return self.figure(stop) / self.figure(0)

    def median_ratio(self, stop: int) -> float:
        """This stop's median against the first stop's (for reads, beside the p99)."""
        return statistics.median(self.samples[stop]) / statistics.median(self.samples[0])

    @property
    def target(self) -> float:
        return READ_TARGET if self.kind == "read" else WRITE_TARGET


def _us(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1e6


def _stored(outcomes: list[Outcome]) -> None:
    if not all(o.stored for o in outcomes):
        raise SystemExit(f"append refused a generated event: {outcomes[:3]}")


class Node:
    """The node's write path, read side and store on one database."""

    def __init__(self, database: Database) -> None:
        self.checkpointer: WalCheckpointer | None = None
        if database.is_sqlite:  # as a running node does (build_node)
            database = dataclasses.replace(database, autocheckpoint=False)
            self.checkpointer = WalCheckpointer(database.sqlite_path)
            self.checkpointer.start()
        self.database = database
        self.store = SqlEventStore(database)
        self.store.create_tables()
        self.appender = AppendEvents(self.store, clock_ms)
        self.reads = ReadSide(self.store)

    def build(self, lines: Sequence[bytes], advance: Callable[[int], None]) -> None:
        """Append ``lines`` in batches through the write path, stateless checks skipped
        (the events were signed here), then bring the read models up to date."""
        for i in range(0, len(lines), BUILD_BATCH):
            chunk = lines[i : i + BUILD_BATCH]
            _stored(self.appender.append_inspected([stored_inspection(x) for x in chunk]))
            advance(len(chunk))
        self.reads.catch_up(COOP)

    def close(self) -> None:
        self.reads.close()
        self.store.close()
        if self.checkpointer is not None:
            self.checkpointer.stop()


@dataclass
class Stop:
    """One stop's store, the writes it has left to take and what to ask it."""

    node: Node
    writes: Writes
    ids: list[str]
    old: list[bytes]
    """Lines of its history, appended again: known ids."""
    found: dict[str, list[float]] = field(default_factory=dict)

    def note(self, name: str, us: float) -> None:
        self.found.setdefault(name, []).append(us)


WRITE_PATHS = (
    "single: treasurer",
    "single: members",
    "batch of 100, per event",
    "projection catch-up, per event",
    "projection of a single write",
    "known id (duplicate)",
)


CPU = " (CPU)"
"""Suffix of a write path's CPU time in this process (``time.thread_time``): on SQLite the
whole write but the fsync's wait; on PostgreSQL the client's part. Its ratio tells a cost
that follows history (CPU grows too) from the machine's noise (wall time alone moves)."""


def _timed(stop: Stop, name: str, fn: Callable[..., object], arg: Any, per: int = 1) -> None:
    """Note the wall and CPU microseconds of ``fn(arg)`` (÷ ``per``) under ``name``."""
    cpu, start = time.thread_time(), time.perf_counter()
    fn(arg)
    wall, cpu = time.perf_counter() - start, time.thread_time() - cpu
    stop.note(name, wall * 1e6 / per)
    stop.note(name + CPU, cpu * 1e6 / per)


def _append(stop: Stop) -> Callable[[list[bytes]], None]:
    return lambda lines: _stored(stop.node.appender.append(lines))


def measure_writes(stops: Sequence[Stop], round_: int) -> None:
    """This round's share of every stop's pre-signed writes (full write path), interleaved
    write by write across the stops (the order flipping each time), as reads are: a noisy
    second (another process's I/O, a checkpoint of the WAL) then hits every size alike.

    Each stop used to take its share in one run (30 singles on one store, then 30 on the
    next): ``--quick`` at load 10-13 put single writes on SQLite at 1.36x and 1.60x, a
    burst of the shared disk's fsync latency landing on one stop's run.

    Every write is projected right after it, as the node's writer does: a single's own
    projection is a path of its own, and a batch's catch-up counts its 100 events only
    (before, the round's first batch also caught up the 60 singles before it)."""

    def share(xs: Sequence[Any]) -> Sequence[Any]:
        per = len(xs) // ROUNDS
        return xs[round_ * per : (round_ + 1) * per]

    def each(i: int) -> Sequence[Stop]:
        return stops if (i + round_) % 2 == 0 else stops[::-1]

    first = stops[0]
    for i in range(len(share(first.writes.busy))):
        for stop in each(i):
            _timed(stop, "single: treasurer", _append(stop), [share(stop.writes.busy)[i]])
            _timed(stop, "projection of a single write", stop.node.reads.catch_up, COOP)
    for i in range(len(share(first.writes.members))):
        for stop in each(i):
            _timed(stop, "single: members", _append(stop), [share(stop.writes.members)[i]])
            _timed(stop, "projection of a single write", stop.node.reads.catch_up, COOP)
    for i in range(len(share(first.writes.batches))):
        for stop in each(i):
            chunk = list(share(stop.writes.batches)[i])
            _timed(stop, "batch of 100, per event", _append(stop), chunk, 100)
            _timed(stop, "projection catch-up, per event", stop.node.reads.catch_up, COOP, 100)
    for i in range(len(share(first.old))):
        for stop in each(i):
            _timed(stop, "known id (duplicate)", stop.node.appender.append, [share(stop.old)[i]])


def read_paths(stop: Stop, rng: random.Random) -> dict[str, Callable[[], object]]:
    """Every read path, each asked about a random place in the stop's history."""
    node = stop.node
    store, models = node.store, node.reads.models
    busy, rare, member = dids_of(BUSY, RARE, 7)
    size = store.tree_size(COOP)
    now = clock_ms()
    last_cursor = (size + 1) * 64
    return {
        "balance": lambda: (
            node.reads.catch_up(COOP),
            views.account_balances(models, COOP, busy, now),
        ),
        "limit": lambda: views.account_limit(models, COOP, busy, None, now),
        "member": lambda: views.member(models, COOP, member, now),
        "chain head": lambda: store.head(COOP, busy),
        "event by id": lambda: store.find(rng.choice(stop.ids)),
        "inclusion proof": lambda: store.inclusion_proof(COOP, rng.randrange(size), size),
        "checkpoint root": lambda: store.root(COOP, size),
        "busy account history page": lambda: views.account_history(
            models,
            COOP,
            busy,
            views.HistoryQuery(after=rng.randrange(last_cursor), limit=50, descending=True),
        ),
        "stream resume (500 events)": lambda: read_page(
            store, COOP, rng.randrange(size - 600), Filters()
        ),
        "log page by type": lambda: store.page(
            COOP, after=rng.randrange(size), limit=100, type_prefix="coop."
        ),
        "log page by author": lambda: store.page(COOP, after=-1, limit=100, author=rare),
    }


def measure_reads(stops: Sequence[Stop], rng: random.Random, samples: int) -> None:
    """``samples`` of every read path on every stop's store, interleaved sample by sample,
    so a noisy moment (another process, the OS writing back what the writes left) hits
    every path and every size alike."""
    paths = [(stop, read_paths(stop, rng)) for stop in stops]
    for i in range(samples):
        for stop, reads in paths if i % 2 == 0 else paths[::-1]:
            for name, fn in reads.items():
                stop.note(name, _us(fn))


def storage(node: Node, events: int, wire: float) -> list[list[str]]:
    """Bytes on disk per event by table (indexes with their table), and against the wire."""
    per: dict[str, int] = {}
    with node.store.engine.connect() as conn:
        if node.database.is_sqlite:
            rows = conn.execute(
                text(
                    "SELECT coalesce(m.tbl_name, d.name), sum(d.pgsize) FROM dbstat d"
                    " LEFT JOIN sqlite_master m ON m.name = d.name GROUP BY 1"
                )
            )
        else:
            rows = conn.execute(
                text(
                    "SELECT relname, pg_total_relation_size(oid) FROM pg_class"
                    " WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace"
                )
            )
        for name, size in rows:
            per[name] = int(size)
    total = sum(per.values())
    out = [
        [name, f"{b / events:,.0f}", f"{b / events / wire:.2f}"]
        for name, b in sorted(per.items(), key=lambda kv: -kv[1])
        if b / events >= 1
    ]
    out.append(["total", f"{total / events:,.0f}", f"{total / events / wire:.2f}"])
    return out


# -- databases --------------------------------------------------------------------------


class Backend:
    """Where the stores live: a growing one, and a copy of it kept at each stop."""

    name = ""

    def database(self, name: str) -> Database:
        raise NotImplementedError

    def snapshot(self, grown: str, copy: str) -> None:
        """Copy the (closed) database ``grown`` to ``copy``, page for page."""
        raise NotImplementedError


class SQLiteBackend(Backend):
    name = "SQLite"

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp

    def database(self, name: str) -> Database:
        (self.tmp / name).mkdir(exist_ok=True)
        return parse_database_url(None, self.tmp / name)

    def snapshot(self, grown: str, copy: str) -> None:
        src = sqlite3.connect(self.database(grown).sqlite_path)
        dst = sqlite3.connect(self.database(copy).sqlite_path)
        try:
            src.backup(dst)
            dst.execute("PRAGMA journal_mode = WAL")
        finally:
            src.close()
            dst.close()


class PostgresBackend(Backend):
    """A throwaway PostgreSQL server from the ``pgserver`` wheel, as the tests start it."""

    name = "PostgreSQL"

    def __init__(self, server: Any, tmp: Path) -> None:
        self.server, self.tmp = server, tmp
        self.host = server.get_uri().split("host=", 1)[1].split("&", 1)[0]

    def database(self, name: str) -> Database:
        if name not in self.server.psql("SELECT datname FROM pg_database;"):
            self.server.psql(f"CREATE DATABASE {name};")
        return parse_database_url(
            f"postgresql+psycopg://postgres:@/{name}?host={self.host}", self.tmp
        )

    def snapshot(self, grown: str, copy: str) -> None:
        self.server.psql(f"CREATE DATABASE {copy} TEMPLATE {grown};")


@contextmanager
def backend(name: str) -> Iterator[Backend]:
    with tempfile.TemporaryDirectory(prefix="icn-bench-growth-", ignore_cleanup_errors=True) as t:
        tmp = Path(t)
        if name == "SQLite":
            yield SQLiteBackend(tmp)
            return
        import pgserver  # type: ignore[import-untyped]

        server = pgserver.get_server(tmp / "pgdata", cleanup_mode="stop")
        try:
            yield PostgresBackend(server, tmp)
        finally:
            server.cleanup()


BACKENDS = ("SQLite", "PostgreSQL")


# -- the run ----------------------------------------------------------------------------


@dataclass
class Run:
    """Results of one backend."""

    backend: str
    paths: dict[str, Path_] = field(default_factory=dict)
    storage: list[list[str]] = field(default_factory=list)
    build_s: float = 0.0
    measure_s: float = 0.0


def run_backend(
    name: str,
    stops: Sequence[tuple[int, int]],
    lines: list[bytes],
    slots: list[tuple[int, int]],
    samples: int,
) -> Run:
    """Grow one store stop by stop (keeping a copy at each stop), then measure every
    stop's store in interleaved rounds, so a noisy moment hits every size alike."""
    run = Run(name)
    rng = random.Random(13)
    with backend(name) as be, progress_bar() as progress:
        start = time.perf_counter()
        node = Node(be.database("grow"))
        _stored(node.appender.append([coop_founded(COOP, dids(), T0_MS - 1)]))
        done = 0
        for k, (size, _) in enumerate(stops):
            with chunks_progress(progress, f"{name}: history to {size:,}", size - done) as adv:
                node.build(lines[done:size], adv)
            done = size
            if k < len(stops) - 1:
                node.close()
                be.snapshot("grow", f"stop{k}")
                node = Node(be.database("grow"))
        node.close()
        run.build_s = time.perf_counter() - start
        names = [f"stop{k}" for k in range(len(stops) - 1)] + ["grow"]
        measured = []
        for k, (size, _) in enumerate(stops):
            history = range(size)
            measured.append(
                Stop(
                    Node(be.database(names[k])),
                    branch(slots, lines, size),
                    [_id(lines[i]) for i in rng.sample(history, 2000)],
                    [lines[i] for i in rng.sample(history, 10 * ROUNDS)],
                )
            )
        start = time.perf_counter()
        try:
            with chunks_progress(progress, f"{name}: measuring", ROUNDS) as adv:
                for r in range(ROUNDS):
                    measure_writes(measured, r)
                    measure_reads(measured, rng, samples // ROUNDS)
                    adv(1)
            run.measure_s = time.perf_counter() - start
            wire = statistics.mean(len(x) for x in lines[:: max(1, len(lines) // 5000)])
            last = measured[-1].node
            run.storage = storage(last, last.store.tree_size(COOP), wire)
        finally:
            for stop in measured:
                stop.node.close()
    for name_ in [*WRITE_PATHS, *(w + CPU for w in WRITE_PATHS), *measured[0].found.keys()]:
        kind = "read" if name_ not in WRITE_PATHS else "write"
        if name_.endswith(CPU) and name_[: -len(CPU)] in WRITE_PATHS:
            kind = "cpu"
        if name_ not in run.paths:
            run.paths[name_] = Path_(name_, kind, [s.found[name_] for s in measured])
    return run


def _id(line: bytes) -> str:
    event = stored_inspection(line).event
    assert event is not None
    return event.id


def dids() -> list[str]:
    return [did_from_public_key(bytes(k.verify_key)) for k in keys()]


def dids_of(*members: int) -> list[str]:
    every = dids()
    return [every[m] for m in members]


# -- output ----------------------------------------------------------------------------


def verdict_rows(run: Run, stops: Sequence[tuple[int, int]]) -> list[list[str]]:
    rows = []
    for p in run.paths.values():
        figures = [f"{p.figure(i):,.0f}" for i in range(len(stops))]
        ratios = [f"{p.ratio(i):.2f}" for i in range(1, len(stops))]
        worst = max(p.ratio(i) for i in range(1, len(stops)))
        verdict = "PASS" if worst <= p.target else "FAIL"
        rows.append(
            [
                p.name,
                "p99" if p.kind == "read" else "median",
                *figures,
                *ratios,
                f"≤ {p.target}",
                verdict,
                "" if p.kind != "read" else f"{p.median_ratio(len(stops) - 1):.2f}",
            ]
        )
    return rows


def header(stops: Sequence[tuple[int, int]]) -> list[str]:
    sizes = [f"{n // 1000:,}k µs" for n, _ in stops]
    return [
        "path",
        "figure",
        *sizes,
        *[f"× at {n // 1000:,}k" for n, _ in stops[1:]],
        "target",
        "verdict",
        "p50 × at last",
    ]


PALETTE = [
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
    "#393b79",
    "#637939",
    "#8c6d31",
    "#843c39",
    "#7b4173",
    "#3182bd",
    "#e6550d",
]


def svg_chart(runs: Sequence[Run], stops: Sequence[tuple[int, int]]) -> str:
    """Cost against history, one panel per backend, one line per path (ratio to the
    first stop, log-scaled x); dashed lines mark the targets."""
    w, h, pad = 460, 360, 50
    names = list(dict.fromkeys(n for r in runs for n in r.paths))
    top = max(2.0, *(p.ratio(i) for r in runs for p in r.paths.values() for i in range(len(stops))))
    top = min(top, 4.0)
    xs = [i / max(1, len(stops) - 1) for i in range(len(stops))]
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w * len(runs) + 240}" height="{h}"'
        ' font-family="sans-serif" font-size="11">'
    ]
    for k, run in enumerate(runs):
        ox = k * w

        def px(x: float, ox: int = ox) -> float:
            return ox + pad + x * (w - 2 * pad)

        def py(y: float) -> float:
            return h - pad - (min(y, top) / top) * (h - 2 * pad)

        out.append(
            f'<text x="{ox + w / 2}" y="20" text-anchor="middle" font-size="14">'
            f"{run.backend}: cost ÷ cost at {stops[0][0]:,} events</text>"
        )
        out.append(f'<line x1="{px(0)}" y1="{py(0)}" x2="{px(1)}" y2="{py(0)}" stroke="black"/>')
        out.append(f'<line x1="{px(0)}" y1="{py(0)}" x2="{px(0)}" y2="{py(top)}" stroke="black"/>')
        for t in (0.5, 1.0, 1.5, 2.0, 3.0, 4.0):
            if t <= top:
                out.append(f'<text x="{px(0) - 6}" y="{py(t) + 4}" text-anchor="end">{t:g}×</text>')
        for target, label in ((WRITE_TARGET, "writes"), (READ_TARGET, "reads p99")):
            out.append(
                f'<line x1="{px(0)}" y1="{py(target)}" x2="{px(1)}" y2="{py(target)}"'
                ' stroke="#999" stroke-dasharray="4 3"/>'
            )
            out.append(f'<text x="{px(1) + 2}" y="{py(target) + 4}" fill="#666">{label}</text>')
        for i, (n, chain) in enumerate(stops):
            out.append(
                f'<text x="{px(xs[i])}" y="{h - pad + 16}" text-anchor="middle">{n:,} events</text>'
            )
            out.append(
                f'<text x="{px(xs[i])}" y="{h - pad + 30}" text-anchor="middle"'
                f' fill="#666">chain {chain:,}</text>'
            )
        for p in run.paths.values():
            color = PALETTE[names.index(p.name) % len(PALETTE)]
            dash = {"write": "", "cpu": ' stroke-dasharray="1 2"'}.get(
                p.kind, ' stroke-dasharray="6 2"'
            )
            pts = " ".join(f"{px(xs[i]):.1f},{py(p.ratio(i)):.1f}" for i in range(len(stops)))
            out.append(
                f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="1.5"{dash}/>'
            )
    for j, name in enumerate(names):
        y = 40 + j * 16
        color = PALETTE[j % len(PALETTE)]
        x0 = w * len(runs) + 10
        out.append(
            f'<line x1="{x0}" y1="{y}" x2="{x0 + 20}" y2="{y}" stroke="{color}" stroke-width="2"/>'
        )
        out.append(f'<text x="{x0 + 26}" y="{y + 4}">{name}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="stop at 100k events (< 3 min)")
    p.add_argument("--tiny", action="store_true", help="3k and 10k: checks the script runs")
    p.add_argument("--backend", choices=[*BACKENDS, "both"], default="both")
    p.add_argument("--samples", type=int, help="samples per read path and stop (300; quick 150)")
    p.add_argument("--no-docs", action="store_true", help="print only; leave docs/ alone")
    args = p.parse_args(argv)
    args.samples = args.samples or (150 if args.quick else 300)
    return args


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    stops = TINY if args.tiny else FULL[:2] if args.quick else FULL
    backends = list(BACKENDS) if args.backend == "both" else [args.backend]
    start = time.perf_counter()
    slots = schedule(stops)
    lines = sign_all(slots, max(2, multiprocessing.cpu_count()))
    signed_s = time.perf_counter() - start
    runs = [run_backend(b, stops, lines, slots, args.samples) for b in backends]
    head = header(stops)
    text_out = ""
    for run in runs:
        rows = verdict_rows(run, stops)
        print_table(f"{run.backend}: cost against history", head, rows)
        print_table(f"{run.backend}: bytes on disk per event", STORAGE_HEAD, run.storage)
        print(
            f"{run.backend}: history built in {run.build_s:,.0f} s,"
            f" measured in {run.measure_s:,.0f} s"
        )
        text_out += f"\n### {run.backend}\n\n" + markdown_table(head, rows)
        text_out += "\n\nBytes on disk per event by table (with its indexes), largest store:\n\n"
        text_out += markdown_table(STORAGE_HEAD, run.storage) + "\n"
        text_out += (
            f"\nHistory built in {run.build_s:,.0f} s (untimed by the targets);"
            f" measured in {run.measure_s:,.0f} s.\n"
        )
    wire = statistics.mean(len(x) for x in lines[:: max(1, len(lines) // 5000)])
    facts = {
        **machine_info(),
        "command": " ".join(["python bench/growth.py", *argv]),
        "stops": ", ".join(f"{n:,} events / chain {c:,}" for n, c in stops),
        "workload": f"{MEMBERS} members, 1 ledger.EntryRecorded transaction per event,"
        f" mean {wire:.0f} wire bytes; history appended in batches of {BUILD_BATCH}",
        "writes per stop": f"{SINGLES} singles by the treasurer, {SINGLES} by others,"
        f" {BATCHES} batches of 100, {10 * ROUNDS} known ids (medians)",
        "reads per stop": f"{args.samples} samples per path (p99)",
        "order": f"one store per stop, measured in {ROUNDS} rounds, each write and read"
        " interleaved across the stops one by one (wall and CPU time per write)",
        "signing (untimed)": f"{signed_s:,.0f} s",
        "wall time": f"{time.perf_counter() - start:,.0f} s",
    }
    print("\n".join(f"{k}: {v}" for k, v in facts.items()))
    if args.no_docs:
        return
    chart = DOCS / "growth.svg"
    chart.write_text(svg_chart(runs, stops))
    body = "\n".join(f"- {k}: {v}" for k, v in facts.items())
    body += "\n\n![cost against history](growth.svg)\n" + text_out
    append_section(DOCS / "benchmarks.md", f"growth, {utc_now()}", body)
    print(f"appended to {DOCS / 'benchmarks.md'}, chart in {chart}")


if __name__ == "__main__":
    main(sys.argv[1:])
