"""What the read side pays to show holds, and what the deadline duty pays per round.

On a real SQLite store in one process: a coop whose member bob has ``TASKS``
running tasks (each with a 32 KiB input, the most a task takes).

- ``account_balances`` (GET …/balances, ``icn balance``): credit computed by
  ``holds.credit_room`` over the rules' records (account, hold, membership,
  standing) plus the open holds from ``ledger_holds``, against the reads the
  document made before holds were shown (the balance rows and the account
  record) as baseline.
- ``ComputeDuties.late`` (the deadline duty's look for late tasks, each
  round): the running tasks' records, against ``pending`` (the settlement
  duty's one record) as baseline.

Medians of interleaved repetitions, CPU time of this process and wall time,
with the load average (the machine is shared). Appends to docs/benchmarks.md.
"""

from __future__ import annotations

import base64
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support.compute_story import prepare, submit
from support.coops import STORY_NOW, CoopScript

from icn.application.append import AppendEvents
from icn.application.authoring import EventAuthor
from icn.application.compute_duties import ComputeDuties
from icn.domain.coop.records import AccountRecord, CoopRecord, MemberRecord
from icn.domain.events.envelope import Event, inspect
from icn.infrastructure.store.database import parse_database_url
from icn.infrastructure.store.event_store import SqlEventStore
from icn.infrastructure.store.read_models import ReadSide
from icn.projections import ledger_views as views

TASKS = 50
REPS = 300
DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


class Node:
    def __init__(self, store: SqlEventStore) -> None:
        self.store = store
        self.now = STORY_NOW
        self.s = CoopScript("demo")
        self.append = AppendEvents(store, lambda: self.now)
        self.author = EventAuthor(store, self.append, lambda: self.now)

    def ok(self, *events: Event) -> None:
        outcomes = self.append.append_inspected([inspect(e.wire_bytes()) for e in events])
        assert [o.verdict for o in outcomes] == ["ok"] * len(events), outcomes


def _timed(fn: Callable[[], Any]) -> tuple[float, float]:
    c, w = time.process_time(), time.perf_counter()
    fn()
    return (time.process_time() - c) * 1e6, (time.perf_counter() - w) * 1e6


def _pair(new: Callable[[], Any], base: Callable[[], Any]) -> dict[str, float]:
    runs: dict[str, list[float]] = {"new_cpu": [], "new_wall": [], "base_cpu": [], "base_wall": []}
    for _ in range(REPS):
        for name, fn in (("new", new), ("base", base)):
            cpu, wall = _timed(fn)
            runs[f"{name}_cpu"].append(cpu)
            runs[f"{name}_wall"].append(wall)
    return {k: statistics.median(v) for k, v in runs.items()}


def main() -> None:
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        store = SqlEventStore(parse_database_url(None, Path(tmp)))
        store.create_tables()
        node = Node(store)
        prepare(node)
        big = base64.b64encode(bytes(range(256)) * 128).decode()  # 32 KiB
        node.ok(*[submit(node, max_fee=100, input=big) for _ in range(TASKS)])
        side = ReadSide(store)
        side.catch_up("demo")
        bob = node.s.did("bob")
        models = side.models

        def before() -> None:  # the reads the document made before holds were shown
            models.balances("demo", bob)
            for kind, key in ((CoopRecord.kind, ""), (MemberRecord.kind, bob)):
                models.record("demo", kind, key)
            models.record("demo", AccountRecord.kind, f"{bob}/hours")

        doc = views.account_balances(models, "demo", bob, node.now)
        assert doc.accounts["hours"].held == 100 * TASKS
        balances = _pair(lambda: views.account_balances(models, "demo", bob, node.now), before)
        duties = ComputeDuties(store, node.author)
        assert duties.late("demo", node.now) == []
        late = _pair(lambda: duties.late("demo", node.now), lambda: duties.pending("demo"))
        side.close()
        store.close()
    load_after = os.getloadavg()[0]
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    rows = [
        ("GET …/balances document (holds, credit room)", balances, "pre-holds reads"),
        (f"deadline duty's look, {TASKS} running tasks", late, "settlement's look"),
    ]
    lines = [
        "",
        "## Holds on the read side, the deadline duty (issue 18)",
        "",
        f"{when}, `python bench/holds_reads.py` (SQLite, one process, {REPS} interleaved"
        f" repetitions, medians): bob holds {TASKS} running tasks of 32 KiB input each."
        f" Load average {load_before:.1f} before, {load_after:.1f} after on the shared"
        " 2-core machine: read the ratios, not the microseconds.",
        "",
        "| measure | CPU µs | wall µs | baseline | baseline CPU µs | CPU ratio | wall ratio |",
        "| --- | ---: | ---: | --- | ---: | ---: | ---: |",
    ]
    for name, r, base in rows:
        lines.append(
            f"| {name} | {r['new_cpu']:,.0f} | {r['new_wall']:,.0f} | {base} |"
            f" {r['base_cpu']:,.0f} | {r['new_cpu'] / r['base_cpu']:.2f}x |"
            f" {r['new_wall'] / r['base_wall']:.2f}x |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    with DOCS.open("a") as f:
        f.write(text)


if __name__ == "__main__":
    main()
