"""Bytes on disk per event by table, on a reduced history (the growth bench's workload).

``bench/growth.py`` reports the same table at 1M events after ~8 minutes of building;
this builds one store of ``--events`` (default 50,000) events of the same mix (200
members, one transaction per event, the treasurer party to a tenth of them) through the
write path, catches the read models up, and prints bytes per event by table (indexes
with their table) and against the mean wire size. It also times what PostgreSQL's
packed wires cost (``wire_packing``: pack on write, unpack on read) per event, against
the stateless checks every incoming event gets (decode, id, signature) as the baseline.
``--no-docs``: leave docs/ alone.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import time

from _common import (
    append_section,
    coop_founded,
    machine_info,
    markdown_table,
    print_table,
    utc_now,
)
from growth import (
    BACKENDS,
    COOP,
    DOCS,
    MEMBERS,
    STORAGE_HEAD,
    T0_MS,
    Node,
    _stored,
    backend,
    dids,
    schedule,
    sign_all,
    storage,
)
from sqlalchemy import text

from icn.domain.events.envelope import inspect
from icn.infrastructure.store.wire_packing import pack, unpack

PARTS_HEAD = ["table", "part", "bytes/event"]
CODEC_HEAD = ["per event", "median µs", "range µs", "× checks"]
CODEC_SAMPLE, CODEC_ROUNDS = 2000, 7


def codec(lines: list[bytes]) -> list[list[str]]:
    """Median µs per event of packing and unpacking ``CODEC_SAMPLE`` of the wires, and of
    the stateless checks (the baseline), in ``CODEC_ROUNDS`` interleaved rounds; and the
    mean packed size."""
    sample = lines[:: max(1, len(lines) // CODEC_SAMPLE)][:CODEC_SAMPLE]
    packed = [pack(w) for w in sample]
    jobs = {
        "stateless checks (baseline)": lambda: [inspect(w) for w in sample],
        "pack (write)": lambda: [pack(w) for w in sample],
        "unpack (read)": lambda: [unpack(p) for p in packed],
    }
    times: dict[str, list[float]] = {name: [] for name in jobs}
    for _ in range(CODEC_ROUNDS):
        for name, job in jobs.items():
            start = time.perf_counter()
            job()
            times[name].append((time.perf_counter() - start) / len(sample) * 1e6)
    base = statistics.median(times["stateless checks (baseline)"])
    rows = [
        [name, f"{statistics.median(t):.1f}", f"{min(t):.1f}–{max(t):.1f}",
         f"{statistics.median(t) / base:.3f}"]
        for name, t in times.items()
    ]  # fmt: skip
    size = statistics.mean(map(len, packed)) / statistics.mean(map(len, sample))
    rows.append(["packed size ÷ wire size", f"{size:.3f}", "", ""])
    return rows


def parts(node: Node, events: int) -> list[list[str]]:
    """Bytes per event of each table's rows and of each of its indexes (>= 1 byte)."""
    with node.store.engine.connect() as conn:
        if node.database.is_sqlite:
            sql = (
                "SELECT coalesce(m.tbl_name, d.name), d.name, sum(d.pgsize) FROM dbstat d"
                " LEFT JOIN sqlite_master m ON m.name = d.name GROUP BY 1, 2"
            )
        else:
            sql = (
                "SELECT t.relname, t.relname, pg_table_size(t.oid) FROM pg_class t"
                " WHERE t.relkind = 'r' AND t.relnamespace = 'public'::regnamespace"
                " UNION ALL SELECT t.relname, i.relname, pg_relation_size(i.oid)"
                " FROM pg_index x JOIN pg_class t ON t.oid = x.indrelid"
                " JOIN pg_class i ON i.oid = x.indexrelid"
                " WHERE t.relnamespace = 'public'::regnamespace"
            )
        rows = [(t, part, int(b)) for t, part, b in conn.execute(text(sql))]
    totals: dict[str, int] = {}
    for t, _, b in rows:
        totals[t] = totals.get(t, 0) + b
    rows.sort(key=lambda r: (-totals[r[0]], r[0] != r[1], -r[2]))
    return [
        [t, "rows" if t == part else part, f"{b / events:,.0f}"]
        for t, part, b in rows
        if b / events >= 1
    ]


def measure(name: str, lines: list[bytes], wire: float) -> tuple[list[list[str]], list[list[str]]]:
    """Build the history on one backend; its storage table, and each table's parts."""
    with backend(name) as be:
        node = Node(be.database("storage"))
        try:
            _stored(node.appender.append([coop_founded(COOP, dids(), T0_MS - 1)]))
            node.build(lines, lambda n: None)
            size = node.store.tree_size(COOP)
            return storage(node, size, wire), parts(node, size)
        finally:
            node.close()


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=50_000)
    p.add_argument("--backend", choices=[*BACKENDS, "both"], default="SQLite")
    p.add_argument("--no-docs", action="store_true", help="print only; leave docs/ alone")
    args = p.parse_args(argv)
    start = time.perf_counter()
    n = args.events
    slots = schedule([(n, n // 10)])
    lines = sign_all(slots, max(2, multiprocessing.cpu_count()))
    wire = statistics.mean(len(x) for x in lines[:: max(1, len(lines) // 5000)])
    names = list(BACKENDS) if args.backend == "both" else [args.backend]
    text_out = ""
    if "PostgreSQL" in names:
        load = os.getloadavg()[0]
        rows = codec(lines)
        load = max(load, os.getloadavg()[0])
        print_table(f"PostgreSQL's packed wires (load average {load:.1f})", CODEC_HEAD, rows)
        text_out += (
            f"\n### PostgreSQL's packed wires (1-minute load average up to {load:.1f})\n\n"
            + markdown_table(CODEC_HEAD, rows)
            + "\n"
        )
    for name in names:
        rows, by_part = measure(name, lines, wire)
        print_table(f"{name}: bytes on disk per event ({n:,} events)", STORAGE_HEAD, rows)
        print_table(f"{name}: each table's rows and indexes", PARTS_HEAD, by_part)
        text_out += f"\n### {name}\n\n" + markdown_table(STORAGE_HEAD, rows) + "\n"
        text_out += "\n" + markdown_table(PARTS_HEAD, by_part) + "\n"
    facts = {
        **machine_info(),
        "command": " ".join(["python bench/storage.py", *argv]),
        "workload": f"{n:,} events, {MEMBERS} members, 1 ledger.EntryRecorded transaction"
        f" per event, mean {wire:.0f} wire bytes",
        "wall time": f"{time.perf_counter() - start:,.0f} s",
    }
    print("\n".join(f"{k}: {v}" for k, v in facts.items()))
    if not args.no_docs:
        body = "\n".join(f"- {k}: {v}" for k, v in facts.items()) + "\n" + text_out
        append_section(DOCS / "benchmarks.md", f"storage, {utc_now()}", body)


if __name__ == "__main__":
    main(sys.argv[1:])
