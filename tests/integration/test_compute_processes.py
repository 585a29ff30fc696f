"""Two processes (two nodes' executors, as far as a run can tell) answer a task identically,
the second loading what the first compiled from the shared cache directory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import wasmtime

from icn.domain.compute.abi import Outcome
from icn.infrastructure.compute.modules import StoredModule, intake
from icn.infrastructure.compute.sandbox import Sandbox

TASK = """(module
  (import "icn" "input_len" (func $len (result i32)))
  (import "icn" "input_read" (func $read (param i32 i32) (result i32)))
  (import "icn" "output_write" (func $write (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "run") (result i32) (local $n i32) (local $i i32) (local $h i64)
    (local.set $n (call $read (i32.const 0) (call $len)))
    (local.set $h (i64.const 1469598103934665603))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (local.set $h (i64.mul (i64.xor (local.get $h) (i64.load8_u (local.get $i)))
                             (i64.const 1099511628211)))
      (f64.store (i32.const 40000)
        (f64.div (f64.convert_i64_u (local.get $h)) (f64.const 0)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (i64.store (i32.const 40008) (local.get $h))
    (drop (call $write (i32.const 40000) (i32.const 16)))
    (i32.const 0)))"""
"""FNV-1a 64 over the input, with a float result beside it (an infinity: bits compared)."""

RUNNER = """
import json, sys
from pathlib import Path
from icn.infrastructure.compute.cache import CompiledModuleCache
from icn.infrastructure.compute.sandbox import Sandbox
binary, data = Path(sys.argv[1]).read_bytes(), Path(sys.argv[2]).read_bytes()
with Sandbox() as box:
    cache = CompiledModuleCache(Path(sys.argv[3]), box)
    result = box.run(cache.load(sys.argv[4], binary), data, 10**8)
print(json.dumps({"outcome": str(result.outcome), "output": result.output.hex(),
                  "fuel": result.fuel, "hits": cache.hits, "compiled": cache.compiled}))
"""


def test_two_processes_give_the_same_output_and_fuel_with_and_without_the_cache(
    tmp_path: Path,
) -> None:
    with Sandbox() as box:
        stored = intake(TASK.encode(), box)
        assert isinstance(stored, StoredModule)
        data = bytes(range(256)) * 64
        here = box.run(box.compile(bytes(wasmtime.wat2wasm(TASK))), data, 10**8)
    assert here.outcome is Outcome.OK
    (tmp_path / "task.wasm").write_bytes(stored.binary)
    (tmp_path / "input").write_bytes(data)

    def elsewhere() -> dict[str, object]:
        args = [tmp_path / "task.wasm", tmp_path / "input", tmp_path / "cache", stored.hash]
        done = subprocess.run(
            [sys.executable, "-c", RUNNER, *map(str, args)],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        answer: dict[str, object] = json.loads(done.stdout)
        return answer

    first, second = elsewhere(), elsewhere()
    assert (first["compiled"], first["hits"]) == (1, 0)
    assert (second["compiled"], second["hits"]) == (0, 1)
    expected = {"outcome": "ok", "output": here.output.hex(), "fuel": here.fuel}
    for answer in (first, second):
        assert {k: answer[k] for k in expected} == expected
