"""How long ``icn node run`` takes until ``/v1/health`` answers: one process against two.

By default a node writes in a child process (docs/architecture.md, "Two processes"),
forked before the store opens so that it does not pay a fresh interpreter's imports.
This measures what that child costs a start, beside the same node in one process
(``ICN_WRITER_PROCESS=0``), interleaved in the same run so the ratio holds on a busy
machine: without replication, and on the embedded nats-server (``make run``'s node).
Appends a section to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from _common import (
    append_section,
    machine_info,
    markdown_table,
    print_table,
    progress_bar,
    utc_now,
)

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
ICN = str(Path(sys.executable).parent / "icn")
TARGET_RATIO = 1.1
"""Two processes ÷ one: a node's start must not grow noticeably for its writer."""
MODES = {"one process": "0", "writer process": "1"}
SETUPS = {"no replication": ["--no-replication"], "embedded nats-server": []}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(data: Path, env: dict[str, str], extra: list[str]) -> float:
    """Seconds from ``icn node run`` to the first 200 of ``/v1/health``; then stop it."""
    port = _free_port()
    argv = [ICN, "node", "run", "--data-dir", str(data), "--port", str(port), *extra]
    started = time.perf_counter()
    node = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/health", timeout=1):
                    return time.perf_counter() - started
            except OSError:
                if node.poll() is not None:
                    raise SystemExit(f"icn node run exited with {node.returncode}") from None
                time.sleep(0.01)
    finally:
        node.terminate()
        node.wait(timeout=60)


def measure(reps: int) -> dict[tuple[str, str], list[float]]:
    """Start seconds of each (setup, mode), ``reps`` times each, interleaved."""
    times: dict[tuple[str, str], list[float]] = {
        (setup, mode): [] for setup in SETUPS for mode in MODES
    }
    with tempfile.TemporaryDirectory() as tmp:
        base = {**os.environ, "ICN_PASSPHRASE": "bench node start passphrase",
                "ICN_JWT_SECRET": "bench-node-start-" + "s" * 32}  # fmt: skip
        data = Path(tmp) / "node"
        subprocess.run([ICN, "node", "init", "--data-dir", str(data)], env=base, check=True,
                       capture_output=True)  # fmt: skip
        for extra in SETUPS.values():  # warm the page cache and the nats-server's store
            _start(data, base, extra)
        with progress_bar() as progress:
            task = progress.add_task("node starts", total=reps * len(times))
            for _ in range(reps):
                for (setup, mode), found in times.items():
                    env = {**base, "ICN_WRITER_PROCESS": MODES[mode]}
                    found.append(_start(data, env, SETUPS[setup]))
                    progress.advance(task)
    return times


def report(times: dict[tuple[str, str], list[float]], reps: int) -> None:
    """Print the medians and the ratios; append them to docs/benchmarks.md."""
    header = ["setup", "mode", "median s", "range s"]
    rows = [
        [setup, mode, f"{statistics.median(ts):.2f}", f"{min(ts):.2f}–{max(ts):.2f}"]
        for (setup, mode), ts in times.items()
    ]
    checks = []
    for setup in SETUPS:
        ratio = statistics.median(times[setup, "writer process"]) / statistics.median(
            times[setup, "one process"]
        )
        verdict = "PASS" if ratio <= TARGET_RATIO else "FAIL"
        checks.append([f"{setup}: writer process ÷ one process", f"{ratio:.2f}",
                       f"≤ {TARGET_RATIO}", verdict])  # fmt: skip
    check_header = ["check", "value", "target", "verdict"]
    print_table("node start to /v1/health", header, rows)
    print_table("targets", check_header, checks)
    facts = {**machine_info(), "command": "python bench/node_start.py", "repetitions": str(reps)}
    text = "\n".join(
        [
            "Wall time from `icn node run` to the first 200 of `/v1/health` (a fresh process",
            "each time, the same initialised data dir), writer process on and off, interleaved;",
            "medians.",
            "",
            markdown_table(["fact", "value"], [[k, v] for k, v in facts.items()]),
            "",
            markdown_table(header, rows),
            "",
            markdown_table(check_header, checks),
        ]
    )
    append_section(DOCS, f"node start ({utc_now()})", text)
    print(f"appended to {DOCS}")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=9, help="starts of each setup and mode")
    args = parser.parse_args(argv)
    report(measure(args.reps), args.reps)


if __name__ == "__main__":
    main(sys.argv[1:])
