"""Peak memory of the commands that read or write a whole log, at two log sizes.

A coop's log only grows, so a command that walks it (export, audit, replay,
import, a node catching up from its stream) must hold state that follows the
coop's members and accounts, not its events. This script signs one log of N
events (untimed), then runs each command on it in a child process of its own
and reads that child's peak resident set (``ru_maxrss`` from ``wait4``: the
largest of the child and the worker processes it waited for). It does that at
two sizes and reports the ratio; a command whose memory follows the log shows
~10x at 100k/1M, one that does not stays near 1.

The catch-up case uses a real ``nats-server -js`` on a free loopback port:
node A (the one that imported the log) publishes it with ``icn node sync``,
then node B, initialised empty, takes all of it with ``icn node sync``.
Appends a section to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

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

from icn.domain.events.envelope import sign_event
from icn.domain.identity.did import did_from_public_key
from icn.infrastructure.replication.nats_server import LocalNatsServer

COOP = "bench-coop"
MEMBERS = 20
T0_MS = 1_700_000_000_000
BIN = Path(sys.executable).parent
DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
BOUND = 1.3
"""Peak RSS at the larger size over the smaller: memory that does not follow the log."""
ENV = {
    "ICN_PASSPHRASE": "bench memory passphrase",
    "ICN_CHECKPOINT_EVERY": "10000000",  # no checkpoint duties during sync
    "ICN_CHECKPOINT_SECONDS": "86400",
}


def write_log(path: Path, count: int, advance: Callable[[int], None]) -> None:
    """``count`` events (a ``coop.Founded``, then payments by ``MEMBERS`` members
    round-robin, as in ``log_append.py``) written as they are signed."""
    keys = [SigningKey.generate() for _ in range(MEMBERS)]
    dids = [did_from_public_key(bytes(k.verify_key)) for k in keys]
    prev: list[str | None] = [None] * MEMBERS
    with path.open("wb") as f:
        f.write(coop_founded(COOP, dids, T0_MS - 1) + b"\n")
        for i in range(count - 1):
            m, rnd = i % MEMBERS, i // MEMBERS
            to = dids[(m + 1 + rnd % (MEMBERS - 1)) % MEMBERS]
            tx = {"from": dids[m], "to": to, "amount": i % 1000 + 1, "currency": "hours"}
            ev = sign_event(
                keys[m], coop=COOP, seq=rnd + 1, prev=prev[m], ts=T0_MS + i,
                type="ledger.EntryRecorded", body={"transactions": [{**tx, "memo": "bench"}]},
            )  # fmt: skip
            prev[m] = ev.id
            f.write(ev.wire_bytes() + b"\n")
            if i % 1000 == 999:
                advance(1000)


@dataclass
class Run:
    """One command at one size: its peak RSS and how long it took."""

    peak_kib: int
    seconds: float
    error: str = ""
    """The end of stderr when the command failed (its peak is then not a result)."""


def run_child(argv: list[str], env: dict[str, str], stdout: int | None = None) -> Run:
    """Run ``argv`` to completion; its own peak RSS (and its waited-for children's)."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(argv, env=env, stdout=stdout or subprocess.DEVNULL, stderr=errors)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        errors.seek(0)
        tail = errors.read()[-3000:].decode(errors="replace") if proc.returncode else ""
    return Run(usage.ru_maxrss, time.perf_counter() - started, tail)


SYNC_ONLY = ("icn log import", "icn node sync (A publishes)", "icn node sync (B catches up)")
"""``--sync-only``: the catch-up and the two commands it needs first (node A's log)."""


def commands(size: int, log: Path, tmp: Path) -> Iterator[tuple[str, Callable[[], Run]]]:
    """Each measured command as (name, run it once); they run in this order."""
    icn = str(BIN / "icn")
    a, b = tmp / "node-a", tmp / "node-b"
    env = {**os.environ, **ENV}
    for node in (a, b):
        subprocess.run([icn, "node", "init", "--data-dir", str(node)], env=env, check=True,
                       capture_output=True)  # fmt: skip
    on_a = ["--data-dir", str(a)]
    yield "icn log import", lambda: run_child([icn, "log", "import", str(log), *on_a], env)
    yield "icn log export", lambda: run_child([icn, "log", "export", "--coop", COOP, *on_a], env)
    yield (
        "icn audit verify --coop",
        lambda: run_child([icn, "audit", "verify", "--coop", COOP, *on_a], env),
    )
    yield "icn replay", lambda: run_child([icn, "replay", *on_a], env)
    nats = LocalNatsServer(tmp / "nats").start()
    try:
        url = ["--nats", nats.url, "--timeout", "7200"]
        yield (
            "icn node sync (A publishes)",
            lambda: run_child([icn, "node", "sync", *url, *on_a], env),
        )

        def catch_up() -> Run:
            """Node B's sync; a catch-up that left events behind is an error, not a result."""
            run = run_child([icn, "node", "sync", *url, "--serve", COOP, "--data-dir", str(b)], env)
            status = subprocess.run(
                [icn, "node", "status", "--json", "--nats", nats.url, "--data-dir", str(b)],
                env=env, check=True, capture_output=True,
            )  # fmt: skip
            held = json.loads(status.stdout)["coops"].get(COOP, {}).get("size")
            if held != size and not run.error:
                run.error = f"node B holds {held} events of {size} after catching up"
            return run

        yield "icn node sync (B catches up)", catch_up
    finally:
        nats.stop()


def measure(
    sizes: list[int], workdir: Path | None, sync_only: bool = False
) -> dict[str, dict[int, Run]]:
    """Every command (or only :data:`SYNC_ONLY`) at every size, each size on fresh nodes."""
    results: dict[str, dict[int, Run]] = {}
    with tempfile.TemporaryDirectory(prefix="icn-bench-mem-", dir=workdir) as top:
        for size in sizes:
            tmp = Path(top) / str(size)
            tmp.mkdir()
            log = tmp / "log.jsonl"
            signing = f"signing {size:,} events (untimed)"
            with progress_bar() as progress, chunks_progress(progress, signing, size) as adv:
                write_log(log, size, adv)
            for name, run in commands(size, log, tmp):
                if sync_only and name not in SYNC_ONLY:
                    continue
                print(f"{size:>9,} {name} ...", end="", flush=True)
                result = run()
                print(f" {result.peak_kib / 1024:,.1f} MiB in {result.seconds:,.1f} s", flush=True)
                if result.error:  # reported as such; the commands after it still run
                    print(f"  FAILED: {result.error}", flush=True)
                results.setdefault(name, {})[size] = result
            log.unlink()
    return results


def report(
    results: dict[str, dict[int, Run]], sizes: list[int], argv: list[str], docs: bool = True
) -> None:
    """Print peaks and ratios; append them to docs/benchmarks.md (unless ``docs`` is off)."""
    small, large = sizes
    header = ["command", f"peak RSS at {small:,} (MiB)", f"at {large:,} (MiB)",
              f"ratio {large:,}/{small:,}", f"s at {large:,}", "verdict"]  # fmt: skip
    rows = []
    for name, by_size in results.items():
        ratio = by_size[large].peak_kib / by_size[small].peak_kib
        failed = any(r.error for r in by_size.values())
        rows.append([
            name,
            f"{by_size[small].peak_kib / 1024:,.1f}",
            f"{by_size[large].peak_kib / 1024:,.1f}",
            f"{ratio:.2f}",
            f"{by_size[large].seconds:,.1f}",
            "ERROR" if failed else "PASS" if ratio <= BOUND else "FAIL",
        ])  # fmt: skip
    print_table("peak RSS per command", header, rows)
    facts = {
        **machine_info(),
        "command": " ".join(["python bench/memory.py", *argv]),
        "log": f"{MEMBERS} members round-robin in coop {COOP}, one payment per event,"
        " a coop.Founded first",
        "peak RSS": "ru_maxrss of the child from wait4: the largest of the command's process"
        " and its worker processes",
        "target": f"ratio <= {BOUND}",
    }
    text = "\n".join(f"- {k}: {v}" for k, v in facts.items())
    text += "\n\n" + markdown_table(header, rows)
    if docs:
        append_section(DOCS, f"memory, {utc_now()}", text)
        print(f"appended to {DOCS}")


def main(argv: list[str]) -> None:
    """Parse the sizes, measure, report."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="20k and 100k events (< 3 min)")
    p.add_argument("--sizes", type=int, nargs=2, metavar=("SMALL", "LARGE"),
                   help="the two log sizes (default 100000 1000000)")  # fmt: skip
    p.add_argument("--workdir", type=Path, help="where the logs and nodes go (default: tmp)")
    p.add_argument("--no-docs", action="store_true", help="print only; leave docs/ alone")
    p.add_argument("--sync-only", action="store_true",
                   help="only the catch-up (and the import and publish it needs)")  # fmt: skip
    args = p.parse_args(argv)
    sizes = args.sizes or ([20_000, 100_000] if args.quick else [100_000, 1_000_000])
    results = measure(sorted(sizes), args.workdir, args.sync_only)
    report(results, sorted(sizes), argv, docs=not args.no_docs)


if __name__ == "__main__":
    main(sys.argv[1:])
