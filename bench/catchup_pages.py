"""Pages SQLite writes per batch, appended and caught up, at each size of a coop's history.

Pages written are what a commit costs on SQLite (each one a WAL frame, then a copy at
the checkpoint), and unlike CPU time they do not depend on how busy the machine is.
bench/catchup.py finds catch-up CPU per event 1.5-2x higher at 100k events than at 10k;
this counts why, on growth.py's history: the frames each batch of 100 adds to the WAL
(no checkpoint runs meanwhile, so the WAL only grows), for the append and for the
catch-up, with the read models as shipped and without ``ledger_history``'s three
secondary indexes (counterparty, currency, time: member-clustered B-trees, each insert
lands on its account's leaf). ``--full`` measures at 100k and 1M events (about 15 min).
Appends a section to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
from pathlib import Path

import catchup as c
import growth as g
from _common import append_section, machine_info, markdown_table, print_table, utc_now

from icn.infrastructure.store.database import parse_database_url

HISTORY_INDEXES = (
    "ledger_history_by_counterparty",
    "ledger_history_by_currency",
    "ledger_history_by_time",
)
FRAME_BYTES = 4096 + 24
"""A WAL frame: a page and its header (the store's page size is SQLite's default)."""
BATCHES = 20


def wal_frames(path: Path) -> int:
    """Frames in the WAL file (which only grows while nothing checkpoints)."""
    wal = Path(f"{path}-wal")
    return (wal.stat().st_size - 32) // FRAME_BYTES if wal.exists() else 0


def measure(copy: Path, root: Path, size: int, without: tuple[str, ...]) -> tuple[float, float]:
    """Median frames per batch of 100 for the append and for the catch-up."""
    fresh = root / f"m{len(without)}-{copy.name}"
    c._copy(copy, fresh)
    conn = sqlite3.connect(fresh)
    for index in without:
        conn.execute(f"DROP INDEX {index}")
    conn.close()
    node = g.Node(parse_database_url(f"sqlite:///{fresh}", root))  # as a node opens it
    assert node.checkpointer is not None  # stopped: from here on the WAL only grows
    node.checkpointer.stop()
    node.checkpointer = None
    conn = sqlite3.connect(fresh)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    slots = g.schedule(c.SIZES)
    writes = g.branch(slots, g.sign_all(slots, 2), size)
    singles = g.SINGLES // g.ROUNDS  # the chains' singles come before the first batches
    for line in writes.busy[:singles] + writes.members[:singles]:
        g._stored(node.appender.append([line]))
    node.reads.catch_up(g.COOP)
    appended, caught_up = [], []
    for b in range(min(BATCHES, g.BATCHES // g.ROUNDS)):
        before = wal_frames(fresh)
        g._stored(node.appender.append(list(writes.batches[b])))
        middle = wal_frames(fresh)
        node.reads.catch_up(g.COOP)
        appended.append(middle - before)
        caught_up.append(wal_frames(fresh) - middle)
    node.close()
    return statistics.median(appended), statistics.median(caught_up)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="100k and 1M events")
    parser.add_argument("--no-docs", action="store_true", help="print only")
    args = parser.parse_args(argv)
    if args.full:
        c.SIZES = g.FULL[1:]
    rows = []
    with tempfile.TemporaryDirectory(prefix="icn-bench-pages-") as tmp:
        root = Path(tmp)
        copies = c.build(root)
        for name, without in (
            ("as shipped", ()),
            ("without the 3 history indexes", HISTORY_INDEXES),
        ):
            found = [
                measure(copy, root, size, without)
                for (size, _), copy in zip(c.SIZES, copies, strict=True)
            ]
            for (size, _), (append, catch_up) in zip(c.SIZES, found, strict=True):
                rows.append([name, f"{size:,}", f"{append:.0f}", f"{catch_up:.0f}"])
            (a0, u0), (a1, u1) = found[0], found[-1]
            rows.append([name, "ratio", f"{a1 / a0:.2f}", f"{u1 / u0:.2f}"])
    header = ["read models", "coop events", "append: pages per batch of 100",
              "catch-up: pages per batch of 100"]  # fmt: skip
    print_table("pages written per batch (WAL frames)", header, rows)
    if args.no_docs:
        return
    command = "python bench/catchup_pages.py" + (" --full" if args.full else "")
    batches = min(BATCHES, g.BATCHES // g.ROUNDS)
    facts = {**machine_info(), "command": command,
             "batches": f"median of {batches} batches of 100 per size"}  # fmt: skip
    text = "\n".join([
        "WAL frames (pages) each batch of 100 writes, appended and then caught up, on",
        "growth.py's history; nothing checkpoints meanwhile.",
        "", markdown_table(["fact", "value"], [[k, v] for k, v in facts.items()]),
        "", markdown_table(header, rows),
    ])  # fmt: skip
    append_section(c.DOCS, f"catch-up pages against history ({utc_now()})", text)
    print(f"appended to {c.DOCS}")


if __name__ == "__main__":
    main(sys.argv[1:])
