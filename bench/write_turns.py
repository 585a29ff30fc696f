"""Two threads writing one SQLite store at once, as a node's writer does: with write turns, without.

A running node projects each commit in the committing thread, on a connection of the
read models; its group commit and replication's intake commit from two threads. Each
thread here appends one payment at a time and projects it, 400 each, at once, with the
store's write turns (``Database.write_turn``: one writing transaction at a time per
process, handed over at once) and with them replaced by nothing, so the threads meet
at SQLite's lock and its busy handler's sleeps. Alternating, ``--reps`` of each.
Reports the wall time and the append-and-project latency, and appends a section to
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from _common import append_section, coop_founded, machine_info, markdown_table, print_table, utc_now
from nacl.signing import SigningKey

from icn.application.append import AppendEvents
from icn.domain.events.envelope import sign_event
from icn.domain.identity.did import did_from_public_key
from icn.infrastructure.store import database
from icn.infrastructure.store.event_store import SqlEventStore
from icn.infrastructure.store.read_models import ReadSide

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
COOP = "bench-turns"
PER_THREAD = 400
THREADS = 2


def payments(key: SigningKey, payee: str, ts: int) -> list[bytes]:
    """``PER_THREAD`` one-transaction payments continuing ``key``'s chain from seq 1."""
    did = did_from_public_key(bytes(key.verify_key))
    lines, prev = [], None
    for seq in range(1, PER_THREAD + 1):
        tx = {"from": did, "to": payee, "amount": seq, "currency": "hours", "memo": None}
        event = sign_event(key, coop=COOP, seq=seq, prev=prev, ts=ts + seq,
                           type="ledger.EntryRecorded", body={"transactions": [tx]})  # fmt: skip
        lines.append(event.wire_bytes())
        prev = event.id
    return lines


def run(turns: bool) -> tuple[float, list[float]]:
    """Wall time and every append-and-project latency (ms) of one run."""
    original = database.Database.write_turn
    if not turns:
        database.Database.write_turn = lambda self: contextlib.nullcontext()  # type: ignore[method-assign]
    try:
        with tempfile.TemporaryDirectory(prefix="icn-bench-turns-") as tmp:
            store = SqlEventStore(database.parse_database_url(None, Path(tmp)))
            store.create_tables()
            now = time.time_ns() // 1_000_000 - 600_000
            append = AppendEvents(store, lambda: time.time_ns() // 1_000_000)
            side = ReadSide(store, kept_current=True)
            append.add_commit_listener(lambda events: side.catch_up(COOP))  # as a node does
            keys = [SigningKey.generate() for _ in range(THREADS + 1)]
            dids = [did_from_public_key(bytes(k.verify_key)) for k in keys]
            append.append([coop_founded(COOP, dids, now)])
            work = [payments(keys[i], dids[-1], now) for i in range(THREADS)]
            latencies: list[float] = []
            lock = threading.Lock()

            def write(lines: list[bytes]) -> None:
                mine = []
                for line in lines:
                    started = time.perf_counter()
                    (outcome,) = append.append([line])
                    mine.append((time.perf_counter() - started) * 1000)
                    assert outcome.stored, outcome
                with lock:
                    latencies.extend(mine)

            threads = [threading.Thread(target=write, args=(w,)) for w in work]
            started = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - started
            side.close()
            store.close()
    finally:
        database.Database.write_turn = original  # type: ignore[method-assign]
    assert len(latencies) == THREADS * PER_THREAD
    return wall, latencies


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--no-docs", action="store_true", help="print only")
    args = parser.parse_args(argv)
    found: dict[bool, list[tuple[float, list[float]]]] = {True: [], False: []}
    for _ in range(args.reps):
        for turns in (True, False):
            found[turns].append(run(turns))

    def figures(turns: bool) -> list[float]:
        runs = found[turns]
        walls = [w for w, _ in runs]
        p50 = [statistics.median(lat) for _, lat in runs]
        p99 = [sorted(lat)[int(0.99 * len(lat))] for _, lat in runs]
        return [statistics.median(walls), statistics.median(p50), statistics.median(p99)]

    with_turns, without = figures(True), figures(False)
    header = ["", "wall (s)", "p50 (ms)", "p99 (ms)"]
    rows = [
        ["with write turns", *(f"{x:.2f}" for x in with_turns)],
        ["without (SQLite's busy handler)", *(f"{x:.2f}" for x in without)],
        ["with ÷ without", *(f"{a / b:.2f}" for a, b in zip(with_turns, without, strict=True))],
    ]
    print_table(
        f"{THREADS} threads × {PER_THREAD} payments, each appended and projected", header, rows
    )
    if args.no_docs:
        return
    work = (f"{THREADS} threads × {PER_THREAD} payments, each appended then projected (a commit"
            " listener, as a node does); medians of the runs, alternating")  # fmt: skip
    command = f"python bench/write_turns.py --reps {args.reps}"
    facts = {**machine_info(), "command": command, "work": work}
    text = "\n".join([markdown_table(["fact", "value"], [[k, v] for k, v in facts.items()]),
                      "", markdown_table(header, rows)])  # fmt: skip
    append_section(DOCS, f"write turns ({utc_now()})", text)
    print(f"appended to {DOCS}")


if __name__ == "__main__":
    main(sys.argv[1:])
