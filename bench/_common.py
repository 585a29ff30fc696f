"""Small helpers shared by the benchmarks: timing, medians, machine facts, output, a coop.

Benchmarks run on shared, noisy machines, so every figure is the median of
several repetitions, every run records what it ran on, and results are only
compared with baselines measured in the same process and run.
"""

from __future__ import annotations

import cProfile
import io
import os
import platform
import pstats
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import ClassVar

import msgspec
from nacl.signing import SigningKey
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from icn.domain.coop import bodies as coop_bodies
from icn.domain.coop.records import CreditPolicy, CurrencySpec, Policy
from icn.domain.events.envelope import sign_event

BENCH_CREDIT = 10**12
"""Every bench member's credit limit (smallest units): far beyond any run, so that the
coop's rules are judged on every event but a limit is never what a benchmark measures."""


@dataclass
class Series:
    """Repeated timings of one measurement over the same number of events."""

    name: str
    events: int
    seconds: list[float] = field(default_factory=list)

    HEADER: ClassVar[list[str]] = ["measurement", "events", "median ev/s", "µs/event", "range ev/s"]

    @property
    def rates(self) -> list[float]:
        """Events per second of each repetition."""
        return [self.events / s for s in self.seconds]

    @property
    def rate(self) -> float:
        """Median events per second: the figure every ratio uses."""
        return statistics.median(self.rates)

    @property
    def us_per_event(self) -> float:
        """Median cost of one event in microseconds."""
        return 1e6 / self.rate

    def row(self) -> list[str]:
        """Median, cost per event and the spread across repetitions, for a table."""
        spread = f"{min(self.rates):,.0f}–{max(self.rates):,.0f}"
        median = f"{self.rate:,.0f}"
        return [self.name, f"{self.events:,}", median, f"{self.us_per_event:,.1f}", spread]


def timed(fn: Callable[[], object]) -> float:
    """Wall-clock seconds of one call (monotonic, high resolution)."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def machine_busy_s() -> float:
    """CPU seconds every core of the machine has spent busy since boot (``/proc/stat``)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def own_cpu_s() -> float:
    """CPU seconds of this process and its waited-for children."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class OthersLoad:
    """How many cores other processes kept busy while a measurement ran.

    On a machine shared with other work, a 2-core speed-up is only possible when
    nothing else runs; this number (read beside each parallel ratio) says whether
    it could have been. Worker processes not yet reaped count as others' load.
    """

    def __init__(self) -> None:
        self.cores: list[float] = []

    @contextmanager
    def watch(self) -> Iterator[None]:
        """Record others' busy cores over the ``with`` block."""
        wall, busy, own = time.perf_counter(), machine_busy_s(), own_cpu_s()
        yield
        seconds = time.perf_counter() - wall
        others = (machine_busy_s() - busy) - (own_cpu_s() - own)
        self.cores.append(max(0.0, others / seconds) if seconds > 0 else 0.0)


def cpu_model() -> str:
    """The CPU's marketing name, from /proc/cpuinfo where there is one."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info() -> dict[str, str]:
    """What a reader needs to judge the numbers: where and with what they were measured."""
    return {
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": str(os.cpu_count()),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "eventsourcing": version("eventsourcing"),
    }


def utc_now() -> str:
    """Timestamp for a results section."""
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def progress_bar() -> Progress:
    """A progress bar on stderr, shown only to a person at a terminal."""
    return Progress(
        TextColumn("{task.description:<28}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=not sys.stderr.isatty(),
    )


@contextmanager
def chunks_progress(
    progress: Progress, description: str, total: int
) -> Iterator[Callable[[int], None]]:
    """One bar for one phase; yields ``advance(n)`` for the measured loops to call."""
    task = progress.add_task(description, total=total)
    yield lambda n: progress.advance(task, n)
    progress.update(task, completed=total, visible=False)


def print_table(title: str, header: list[str], rows: list[list[str]]) -> None:
    """A terminal table; columns after the first are right-aligned numbers."""
    table = Table(title=title)
    for i, col in enumerate(header):
        table.add_column(col, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*row)
    Console().print(table)


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A GitHub-flavoured table; columns after the first are right-aligned numbers."""
    lines = ["| " + " | ".join(header) + " |"]
    lines.append("| --- | " + " | ".join("---:" for _ in header[1:]) + " |")
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def append_section(path: Path, title: str, text: str) -> None:
    """Append a results section, creating the file with a short header first."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            "# Benchmarks\n\nResults appended by the scripts in `bench/` (see"
            " `bench/README.md`). Each section is one run; compare ratios within a"
            " section, not absolute numbers across machines.\n"
        )
    with path.open("a") as f:
        f.write(f"\n## {title}\n\n{text.rstrip()}\n")


def profile_top(fn: Callable[[], object], limit: int = 10) -> str:
    """cProfile one call and return the ``limit`` functions with the largest cumtime."""
    profiler = cProfile.Profile()
    profiler.runcall(fn)
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).strip_dirs().sort_stats("cumulative").print_stats(limit)
    return out.getvalue()


def coop_founded(coop: str, members: list[str], ts: int) -> bytes:
    """The wire bytes of a ``coop.Founded`` of ``coop`` signed by a fresh coop key.

    Since the coop rules, a node accepts an event only in a founded coop and
    only from a member; every DID in ``members`` is a founding member (the
    first one admin), with one currency, ``hours``, and :data:`BENCH_CREDIT`
    of credit each.
    """
    credit = CreditPolicy(baseline=BENCH_CREDIT, max_limit=BENCH_CREDIT)
    body = coop_bodies.Founded(
        name=f"bench {coop}",
        currencies=[CurrencySpec(code="hours", unit="hour", decimals=2)],
        policy=Policy(credit={"hours": credit}),
        members=[
            coop_bodies.FoundingMember(did=did, roles=["admin"] if i == 0 else [])
            for i, did in enumerate(members)
        ],
    )
    event = sign_event(
        SigningKey.generate(), coop=coop, seq=1, prev=None, ts=ts,
        type=coop_bodies.FOUNDED, body=msgspec.to_builtins(body),
    )  # fmt: skip
    return event.wire_bytes()
