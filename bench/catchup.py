"""Where projection catch-up's cost grows with history (issue 13), on SQLite.

``bench/growth.py`` finds catch-up CPU per event 1.5-2.2x higher at 100k-1M coop
events than at 10k while the Python side of it stays flat. This takes the same
history (growth.py's schedule: 200 members, a treasurer writing a growing share),
copies the store at each size, and per size appends the same kind of batches of
100 and catches the read models up after each, interleaved across sizes. It
reports, per size, the CPU per event of the catch-up and of the append (this
thread's, ``time.thread_time``), the process's CPU for the whole loop, and the
share of the catch-up spent in SQLite's ``commit`` and ``execute`` (cProfile).

``--pragma`` runs the loop again on fresh copies with extra pragmas on the
read-model writer's connection, to test a remedy in the same run, e.g.
``--pragma "PRAGMA wal_autocheckpoint = 20000"``; ``--background-checkpoints``
runs it as a node does (no checkpoint in any commit, a
:class:`~icn.infrastructure.store.wal.WalCheckpointer` thread per store). The CPU
per event is the measuring thread's, so the process CPU for the loop is the
figure that says whether work moved or went away. Appends a section to
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import pstats
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import growth as g
from _common import append_section, machine_info, markdown_table, print_table, progress_bar, utc_now

from icn.infrastructure.store import read_models
from icn.infrastructure.store.database import parse_database_url
from icn.infrastructure.store.wal import WalCheckpointer

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
SIZES = ((10_000, 500), (100_000, 10_000))
"""(coop events, treasurer's chain) at each size: growth.py --quick's first and last."""


@dataclass
class Found:
    """One size's figures in one variant."""

    catch_up_us: list[float] = field(default_factory=list)
    append_us: list[float] = field(default_factory=list)
    profile: cProfile.Profile = field(default_factory=cProfile.Profile)
    """The last round's catch-ups (not timed: the profiler's own cost would be), wall
    clock: SQLite's fsync waits are in its commit."""

    def sqlite_share(self) -> tuple[float, float]:
        """Shares of the profiled catch-ups' time in SQLite's commit and in its execute."""
        profiled = pstats.Stats(self.profile)
        stats = profiled.stats  # type: ignore[attr-defined]
        commit = execute = 0.0
        for (_, _, name), (_, _, tottime, _, _) in stats.items():
            if name == "<method 'commit' of 'sqlite3.Connection' objects>":
                commit += tottime
            elif name == "<method 'execute' of 'sqlite3.Cursor' objects>":
                execute += tottime
        whole = profiled.total_tt  # type: ignore[attr-defined]
        return commit / whole, execute / whole


def build(root: Path) -> list[Path]:
    """The history, signed and appended once (untimed); a copy of the store at each size."""
    slots = g.schedule(SIZES)
    lines = g.sign_all(slots, 2)
    grow = root / "grow.sqlite3"
    node = g.Node(parse_database_url(f"sqlite:///{grow}", root))
    g._stored(node.appender.append([g.coop_founded(g.COOP, g.dids(), g.T0_MS - 1)]))
    copies, done = [], 0
    with progress_bar() as progress:
        task = progress.add_task("history", total=SIZES[-1][0])
        for size, _ in SIZES:
            node.build(lines[done:size], lambda n: progress.advance(task, n))
            done = size
            node.close()
            copy = root / f"size{size}.sqlite3"
            _copy(grow, copy)
            copies.append(copy)
            node = g.Node(parse_database_url(f"sqlite:///{grow}", root))
    node.close()
    return copies


def _copy(src: Path, dst: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{src}{suffix}").exists():
            shutil.copy(f"{src}{suffix}", f"{dst}{suffix}")


def measure(
    copies: list[Path], root: Path, tag: str, background: bool
) -> tuple[list[Found], float]:
    """The loop on fresh copies of the stores; each size's figures, and the process CPU.

    ``background``: checkpoints in a thread per store, none in a commit (a node's way)."""
    slots = g.schedule(SIZES)
    lines = g.sign_all(slots, 2)
    stores, checkpointers = [], []
    for copy in copies:
        fresh = root / f"{tag}-{copy.name}"
        _copy(copy, fresh)
        database = parse_database_url(f"sqlite:///{fresh}", root)
        if background:
            database = dataclasses.replace(database, autocheckpoint=False)
            checkpointers.append(WalCheckpointer(str(fresh)))
            checkpointers[-1].start()
        stores.append(g.Node(database))
    writes = [g.branch(slots, lines, size) for size, _ in SIZES]
    found = [Found() for _ in SIZES]
    singles, batches = g.SINGLES // g.ROUNDS, g.BATCHES // g.ROUNDS
    started = time.process_time()
    for r in range(g.ROUNDS):
        for node, w in zip(stores, writes, strict=True):  # the chains' singles: untimed
            for line in w.busy[r * singles : (r + 1) * singles]:
                g._stored(node.appender.append([line]))
            for line in w.members[r * singles : (r + 1) * singles]:
                g._stored(node.appender.append([line]))
            node.reads.catch_up(g.COOP)
        for b in range(r * batches, (r + 1) * batches):
            order = range(len(SIZES)) if b % 2 == 0 else reversed(range(len(SIZES)))
            for k in order:
                node, f = stores[k], found[k]
                cpu = time.thread_time()
                g._stored(node.appender.append(list(writes[k].batches[b])))
                if r == g.ROUNDS - 1:  # profiled, not timed
                    f.profile.runcall(node.reads.catch_up, g.COOP)
                    continue
                f.append_us.append((time.thread_time() - cpu) * 1e6 / 100)
                cpu = time.thread_time()
                node.reads.catch_up(g.COOP)
                f.catch_up_us.append((time.thread_time() - cpu) * 1e6 / 100)
    total = time.process_time() - started
    for node in stores:
        node.close()
    for checkpointer in checkpointers:
        checkpointer.stop()
    return found, total


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--pragma",
        action="append",
        default=[],
        help="an extra pragma of the read-model writer (a second variant)",
    )
    parser.add_argument(
        "--background-checkpoints",
        action="store_true",
        help="a variant as a node runs: WAL checkpoints in a thread, none in a commit",
    )
    parser.add_argument("--no-docs", action="store_true", help="print only")
    args = parser.parse_args(argv)
    baseline = read_models.WRITER_PRAGMAS
    variants = {"checkpoints in commits": (baseline, False)}
    if args.pragma:
        variants["with " + "; ".join(args.pragma)] = (baseline + tuple(args.pragma), False)
    if args.background_checkpoints:
        variants["checkpoints in a thread"] = (baseline, True)
    rows, ratios = [], []
    with tempfile.TemporaryDirectory(prefix="icn-bench-catchup-") as tmp:
        root = Path(tmp)
        copies = build(root)
        for i, (name, (pragmas, background)) in enumerate(variants.items()):
            read_models.WRITER_PRAGMAS = pragmas
            found, total = measure(copies, root, f"v{i}", background)
            for (size, _), f in zip(SIZES, found, strict=True):
                commit, execute = f.sqlite_share()
                rows.append([name, f"{size:,}", f"{statistics.median(f.catch_up_us):.0f}",
                             f"{statistics.median(f.append_us):.0f}",
                             f"{commit:.0%}", f"{execute:.0%}"])  # fmt: skip
            first, last = found[0], found[-1]
            catch_up = statistics.median(last.catch_up_us) / statistics.median(first.catch_up_us)
            append = statistics.median(last.append_us) / statistics.median(first.append_us)
            ratios.append([name, f"{catch_up:.2f}", f"{append:.2f}", f"{total:.2f}"])
    read_models.WRITER_PRAGMAS = baseline
    header = ["variant", "coop events", "catch-up CPU µs/event", "append CPU µs/event",
              "catch-up wall in SQLite commit", "catch-up wall in SQLite execute"]  # fmt: skip
    ratio_header = ["variant", f"catch-up {SIZES[-1][0]:,} ÷ {SIZES[0][0]:,}", "append, the same",
                    "process CPU for the loop (s)"]  # fmt: skip
    print_table("catch-up against history (SQLite)", header, rows)
    print_table("ratios", ratio_header, ratios)
    if args.no_docs:
        return
    facts = {**machine_info(), "command": " ".join(["python bench/catchup.py", *(
        f'--pragma "{p}"' for p in args.pragma), *(
        ["--background-checkpoints"] if args.background_checkpoints else [])]),
        "loop": f"{g.BATCHES} batches of 100 per size (each appended, then caught up), "
                f"{g.SINGLES} singles per size untimed, interleaved across sizes; the "
                f"last {g.BATCHES // g.ROUNDS} batches' catch-ups profiled, not timed"}  # fmt: skip
    text = "\n".join([
        "Projection catch-up and append CPU per event, this thread's, at each size of one",
        "coop's history (growth.py's schedule); the share of the catch-up in SQLite.",
        "", markdown_table(["fact", "value"], [[k, v] for k, v in facts.items()]),
        "", markdown_table(header, rows), "", markdown_table(ratio_header, ratios),
    ])  # fmt: skip
    append_section(DOCS, f"catch-up against history ({utc_now()})", text)
    print(f"appended to {DOCS}")


if __name__ == "__main__":
    main(sys.argv[1:])
