"""The WASM task sandbox's costs, each as a ratio against a baseline measured in the same run.

- a task call's fixed overhead (fresh store, limits, instantiation, three host
  functions) and a task's loop against the same loop in Python (FNV-1a over
  the largest input a task may get, 32 KiB);
- fuel metering: the same compute-bound task on the task engine and on one
  identical but for ``consume_fuel`` off (target ≤ 1.3 ×);
- the compiled-module cache: loading an entry (read, check its MAC,
  deserialize) against compiling the module (target ≥ 20 × faster).

Each figure is this thread's CPU time (wasm runs and compiles on the calling
thread), interleaved across repetitions and reported as medians,
with the load average and the cores other processes kept busy, since the
machine these run on is shared. Appends a section to docs/benchmarks.md.
Contracts (tier 1) have their own section or script.
"""

from __future__ import annotations

import argparse
import os
import statistics
import struct
import tempfile
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

import wasmtime
from _common import (
    OthersLoad,
    append_section,
    machine_info,
    markdown_table,
    print_table,
    utc_now,
)

from icn.domain.compute.abi import MAX_INPUT_BYTES, Outcome
from icn.infrastructure.compute.cache import CompiledModuleCache
from icn.infrastructure.compute.engine import EngineSettings
from icn.infrastructure.compute.modules import module_hash
from icn.infrastructure.compute.sandbox import Sandbox

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
METERING_TARGET = 1.3
CACHE_TARGET = 20.0
FUEL = 10**12

IMPORTS = """
  (import "icn" "input_len" (func $len (result i32)))
  (import "icn" "input_read" (func $read (param i32 i32) (result i32)))
  (import "icn" "output_write" (func $write (param i32 i32) (result i32)))
  (memory (export "memory") 1)"""

EMPTY = f'(module {IMPORTS} (func (export "run") (result i32) (i32.const 0)))'


def fnv_wat(repeat: int) -> str:
    """FNV-1a (32-bit) of the input, ``repeat`` times over: a byte loop, like a checksum task."""
    return f"""(module {IMPORTS}
  (func (export "run") (result i32) (local $n i32) (local $i i32) (local $h i32) (local $r i32)
    (local.set $n (call $read (i32.const 0) (call $len)))
    (local.set $h (i32.const 0x811c9dc5))
    (local.set $r (i32.const {repeat}))
    (loop $again
      (local.set $i (i32.const 0))
      (block $done (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $h (i32.mul (i32.xor (local.get $h) (i32.load8_u (local.get $i)))
                               (i32.const 0x01000193)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
      (local.set $r (i32.sub (local.get $r) (i32.const 1)))
      (br_if $again (local.get $r)))
    (i32.store (i32.const 0) (local.get $h))
    (drop (call $write (i32.const 0) (i32.const 4)))
    (i32.const 0)))"""


def mix_wat(rounds: int) -> str:
    """splitmix64 ``rounds`` times: more arithmetic per loop iteration than the byte loop,
    so metering's per-iteration cost is a smaller share of it."""
    return f"""(module {IMPORTS}
  (func (export "run") (result i32) (local $x i64) (local $z i64) (local $r i32)
    (local.set $r (i32.const {rounds}))
    (loop $again
      (local.set $x (i64.add (local.get $x) (i64.const 0x9e3779b97f4a7c15)))
      (local.set $z (local.get $x))
      (local.set $z (i64.mul (i64.xor (local.get $z) (i64.shr_u (local.get $z) (i64.const 30)))
                             (i64.const 0xbf58476d1ce4e5b9)))
      (local.set $z (i64.mul (i64.xor (local.get $z) (i64.shr_u (local.get $z) (i64.const 27)))
                             (i64.const 0x94d049bb133111eb)))
      (local.set $z (i64.xor (local.get $z) (i64.shr_u (local.get $z) (i64.const 31))))
      (local.set $x (i64.xor (local.get $x) (i64.rotl (local.get $z) (i64.const 7))))
      (local.set $r (i32.sub (local.get $r) (i32.const 1)))
      (br_if $again (local.get $r)))
    (i64.store (i32.const 0) (local.get $x))
    (drop (call $write (i32.const 0) (i32.const 8)))
    (i32.const 0)))"""


def fnv_python(data: bytes) -> int:
    """The same FNV-1a in Python, the baseline a task's loop is compared with."""
    h = 0x811C9DC5
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def big_wat(functions: int) -> str:
    """A module with many small arithmetic functions: something worth compiling."""
    body = """(func (param i32 i32) (result i32) (local i32)
      (local.set 2 (i32.const 0))
      (block $out (loop $l
        (br_if $out (i32.ge_s (local.get 2) (local.get 1)))
        (local.set 0 (i32.add (i32.mul (local.get 0) (i32.const {k})) (i32.rotl (local.get 0)
          (i32.and (local.get 2) (i32.const 31)))))
        (local.set 0 (i32.xor (local.get 0) (i32.shr_u (local.get 0) (i32.const 13))))
        (local.set 2 (i32.add (local.get 2) (i32.const 1)))
        (br $l)))
      (if (result i32) (i32.gt_u (local.get 0) (i32.const {k}))
        (then (i32.sub (local.get 0) (i32.const {k})))
        (else (i32.add (local.get 0) (local.get 1)))))"""
    funcs = "\n".join(body.format(k=2 * i + 1) for i in range(functions))
    return f'(module {IMPORTS} {funcs} (func (export "run") (result i32) (i32.const 0)))'


def median_of(times: list[float]) -> float:
    return statistics.median(times)


def measure(reps: int, calls: int) -> tuple[dict[str, list[float]], dict[str, str]]:
    """Seconds of each measurement per repetition (interleaved), and facts about the run."""
    data = bytes((i * 131 + 7) % 256 for i in range(MAX_INPUT_BYTES))
    times: dict[str, list[float]] = {}
    facts: dict[str, str] = {}

    def record(name: str, fn: Callable[[], object], n: int = 1) -> None:
        # this thread's CPU time: wasm runs and compiles on it (parallel compilation is
        # off), and on a shared machine it moves far less than wall time does
        start = time.thread_time()
        for _ in range(n):
            fn()
        times.setdefault(name, []).append((time.thread_time() - start) / n)

    metered, unmetered = Sandbox(), Sandbox(EngineSettings(consume_fuel=False))
    empty = metered.compile(wasmtime.wat2wasm(EMPTY))
    once = metered.compile(wasmtime.wat2wasm(fnv_wat(1)))
    heavy_wat = wasmtime.wat2wasm(fnv_wat(200))
    heavy_m, heavy_u = metered.compile(heavy_wat), unmetered.compile(heavy_wat)
    mix_bin = wasmtime.wat2wasm(mix_wat(2_000_000))
    mix_m, mix_u = metered.compile(mix_bin), unmetered.compile(mix_bin)
    big = bytes(wasmtime.wat2wasm(big_wat(300)))
    big_hash = module_hash(big)
    facts["compiled module binary (bytes)"] = f"{len(big):,}"

    expected = struct.pack("<I", fnv_python(data))
    check = metered.run(once, data, FUEL)
    assert check.outcome is Outcome.OK and check.output == expected, check
    heavy = metered.run(heavy_m, data, FUEL)
    plain = unmetered.run(heavy_u, data, FUEL)
    assert heavy.outcome is plain.outcome is Outcome.OK and heavy.output == plain.output
    mixed, mixed_plain = metered.run(mix_m, b"", FUEL), unmetered.run(mix_u, b"", FUEL)
    assert mixed.outcome is Outcome.OK and mixed.output == mixed_plain.output
    facts["fuel of one FNV pass over 32 KiB"] = f"{check.fuel:,}"
    facts["fuel of the splitmix64 task (2M rounds)"] = f"{mixed.fuel:,}"
    facts["fuel of the metering task (200 passes)"] = f"{heavy.fuel:,}"

    with tempfile.TemporaryDirectory() as tmp:
        cache = CompiledModuleCache(Path(tmp) / "cache", metered)
        cache.load(big_hash, big)  # the entry the loads read
        artifact = cache.path(big_hash).stat().st_size
        facts["cache entry (bytes)"] = f"{artifact:,}"
        load = metered.run(cache.load(big_hash, big), b"", FUEL)
        assert load.outcome is Outcome.OK
        others = OthersLoad()
        for _ in range(reps):
            with others.watch():
                record("empty task call (µs)", lambda: metered.run(empty, b"", FUEL), calls)
                record(
                    "FNV over 32 KiB, WASM task call (µs)", lambda: metered.run(once, data, FUEL)
                )
                record("FNV over 32 KiB, Python loop (µs)", lambda: fnv_python(data))
                record("byte-loop task, metered (µs)", lambda: metered.run(heavy_m, data, FUEL))
                record("byte-loop task, unmetered (µs)", lambda: unmetered.run(heavy_u, data, FUEL))
                record("splitmix64 task, metered (µs)", lambda: metered.run(mix_m, b"", FUEL))
                record("splitmix64 task, unmetered (µs)", lambda: unmetered.run(mix_u, b"", FUEL))
                record("compile the module (µs)", lambda: metered.compile(big))
                record("load it from the cache (µs)", lambda: cache.load(big_hash, big))
        assert cache.refused == 0 and cache.compiled == 1
    metered.close()
    unmetered.close()
    facts["other processes' busy cores (median)"] = f"{median_of(others.cores):.2f}"
    return times, facts


def report(
    times: dict[str, list[float]], facts: dict[str, str], reps: int, append: bool = True
) -> None:
    """Print the medians and ratios; append them to docs/benchmarks.md."""
    med = {name: median_of(ts) * 1e6 for name, ts in times.items()}
    rows = [
        [name, f"{med[name]:,.1f}", f"{min(ts) * 1e6:,.1f}–{max(ts) * 1e6:,.1f}"]
        for name, ts in times.items()
    ]
    python_vs_wasm = (
        med["FNV over 32 KiB, Python loop (µs)"] / med["FNV over 32 KiB, WASM task call (µs)"]
    )
    overhead_share = med["empty task call (µs)"] / med["FNV over 32 KiB, WASM task call (µs)"]
    metering = med["byte-loop task, metered (µs)"] / med["byte-loop task, unmetered (µs)"]
    metering_mix = med["splitmix64 task, metered (µs)"] / med["splitmix64 task, unmetered (µs)"]
    cache = med["compile the module (µs)"] / med["load it from the cache (µs)"]
    checks = [
        ["Python loop / WASM task call (FNV, 32 KiB)", f"{python_vs_wasm:.1f}×", "", "info"],
        ["empty call / FNV task call", f"{overhead_share:.2f}", "", "info"],
        ["metered / unmetered, byte loop (FNV)", f"{metering:.2f}×", f"≤ {METERING_TARGET}",
         "PASS" if metering <= METERING_TARGET else "FAIL"],
        ["metered / unmetered, splitmix64", f"{metering_mix:.2f}×", f"≤ {METERING_TARGET}",
         "PASS" if metering_mix <= METERING_TARGET else "FAIL"],
        ["compile / cached load", f"{cache:.0f}×", f"≥ {CACHE_TARGET:.0f}",
         "PASS" if cache >= CACHE_TARGET else "FAIL"],
    ]  # fmt: skip
    print_table("compute (WASM)", ["measurement", "median CPU µs", "range CPU µs"], rows)
    print_table("ratios", ["ratio", "value", "target", "verdict"], checks)
    load = os.getloadavg()
    info = {
        **machine_info(),
        "wasmtime": version("wasmtime"),
        "repetitions": str(reps),
        "load average (1/5/15 min) at the end": " / ".join(f"{x:.2f}" for x in load),
        **facts,
    }
    text = "\n".join(
        [
            "WASM tasks under the sandbox (issue 18, tier 2): the calling thread's CPU time",
            "(wasm runs and compiles on it), medians of interleaved repetitions; each",
            "ratio's two sides were measured in the same repetitions. The machine is",
            "shared: the load average and other processes' busy cores are below.",
            "",
            markdown_table(["measurement", "median CPU µs", "range CPU µs"], rows),
            "",
            markdown_table(["ratio", "value", "target", "verdict"], checks),
            "",
            *(f"- {k}: {v}" for k, v in info.items()),
        ]
    )
    if append:
        append_section(DOCS, f"compute: WASM tasks ({utc_now()})", text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--calls", type=int, default=200, help="empty calls per repetition")
    parser.add_argument("--no-append", action="store_true", help="print only")
    parser.add_argument(
        "--settlement",
        action="store_true",
        help="also a task from submission to settlement, 2 replicas vs 1 (compute_settlement.py)",
    )
    args = parser.parse_args()
    if args.settlement:
        import compute_settlement

        compute_settlement.main(append=not args.no_append)
    times, facts = measure(args.reps, args.calls)
    report(times, facts, args.reps, append=not args.no_append)


if __name__ == "__main__":
    main()
