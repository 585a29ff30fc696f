"""Start-up time of the ``icn`` command, beside a bare ``python -c pass``.

Every ``icn`` invocation used to import the whole node (SQLAlchemy,
eventsourcing, NATS, Litestar, uvicorn): 1.0-1.6 s before the first line.
Commands are now imported on use, so a command that reads a key file costs
the interpreter, Typer and the keystore. Each figure is the median wall time
of whole processes, run interleaved in the same run as the bare interpreter,
so the ratio holds on a busy machine too. Appends a section to
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import append_section, machine_info, markdown_table, print_table, utc_now

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
BIN = Path(sys.executable).parent
TARGET_S = 0.3
"""``icn id show --json``: the median a user should not notice (issue 12)."""


def _wall(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def measure(reps: int) -> dict[str, list[float]]:
    """Wall seconds of each command, ``reps`` times, interleaved."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "ICN_DATA_DIR": tmp, "ICN_PASSPHRASE": "bench startup passphrase"}
        icn = str(BIN / "icn")
        subprocess.run([icn, "id", "init", "alice"], env=env, check=True, capture_output=True)
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "icn id show alice --json": [icn, "id", "show", "alice", "--json"],
            "icn balance --help": [icn, "balance", "--help"],
            "icn --help (imports every command)": [icn, "--help"],
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        for argv in commands.values():  # warm the page cache once
            _wall(argv, env)
        for _ in range(reps):
            for name, argv in commands.items():
                times[name].append(_wall(argv, env))
    return times


def report(times: dict[str, list[float]], reps: int) -> None:
    """Print the medians and the checks; append them to docs/benchmarks.md."""
    medians = {name: statistics.median(ts) for name, ts in times.items()}
    header = ["command", "median s", "range s"]
    rows = [
        [name, f"{medians[name]:.3f}", f"{min(ts):.3f}–{max(ts):.3f}"] for name, ts in times.items()
    ]
    show = medians["icn id show alice --json"]
    bare = medians["python -c pass"]
    checks = [
        ["icn id show --json median (s)", f"{show:.3f}", f"≤ {TARGET_S}",
         "PASS" if show <= TARGET_S else "FAIL"],
        ["icn id show --json / python -c pass", f"{show / bare:.1f}", "", "info"],
    ]  # fmt: skip
    check_header = ["check", "value", "target", "verdict"]
    print_table("start-up", header, rows)
    print_table("targets", check_header, checks)
    facts = {**machine_info(), "repetitions": str(reps)}
    text = "\n".join(
        [
            "Wall time of whole `icn` processes (Python start-up included), interleaved",
            "with a bare `python -c pass` of the same interpreter; medians.",
            "",
            markdown_table(["fact", "value"], [[k, v] for k, v in facts.items()]),
            "",
            markdown_table(header, rows),
            "",
            markdown_table(check_header, checks),
        ]
    )
    append_section(DOCS, f"cli start-up ({utc_now()})", text)
    print(f"appended to {DOCS}")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=15, help="runs of each command")
    args = parser.parse_args(argv)
    report(measure(args.reps), args.reps)


if __name__ == "__main__":
    main(sys.argv[1:])
