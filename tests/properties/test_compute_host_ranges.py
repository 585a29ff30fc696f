"""Any pointer and length a task hands the host: served exactly when the range is in memory."""

from __future__ import annotations

import struct
from collections.abc import Iterator

import pytest
import wasmtime
from hypothesis import given, settings
from hypothesis import strategies as st

from icn.domain.compute.abi import MAX_OUTPUT_BYTES, Outcome, range_fault
from icn.infrastructure.compute.sandbox import Sandbox

MEMORY = 2 * 65536
SCRATCH = 100_000
# input: op (1 byte: 0 output_write, 1 input_read), ptr (i32), len (i32)
PROBE = f"""(module
  (import "icn" "input_read" (func $read (param i32 i32) (result i32)))
  (import "icn" "output_write" (func $write (param i32 i32) (result i32)))
  (memory (export "memory") 2)
  (func (export "run") (result i32) (local $ptr i32) (local $len i32)
    (drop (call $read (i32.const 0) (i32.const 9)))
    (local.set $ptr (i32.load (i32.const 1)))
    (local.set $len (i32.load (i32.const 5)))
    (if (i32.eqz (i32.load8_u (i32.const 0)))
      (then (drop (call $write (local.get $ptr) (local.get $len))))
      (else
        (i32.store (i32.const {SCRATCH}) (call $read (local.get $ptr) (local.get $len)))
        (drop (call $write (i32.const {SCRATCH}) (i32.const 4)))))
    (i32.const 0)))"""

edges = [0, 1, 8, 9, MAX_OUTPUT_BYTES, MEMORY - 9, MEMORY - 1, MEMORY, MEMORY + 1, 2**31 - 1]
i32s = st.one_of(
    st.sampled_from(edges),
    st.sampled_from(edges).map(lambda v: -v),
    st.integers(min_value=-(2**31), max_value=2**31 - 1),
    st.integers(min_value=0, max_value=MEMORY + 16),
)


@pytest.fixture(scope="module")
def probe() -> Iterator[tuple[Sandbox, wasmtime.Module]]:
    with Sandbox() as box:
        yield box, box.compile(wasmtime.wat2wasm(PROBE))


@settings(max_examples=300, deadline=None)
@given(op=st.sampled_from([0, 1]), ptr=i32s, length=i32s)
def test_a_host_call_is_served_exactly_when_its_range_is_in_memory(
    probe: tuple[Sandbox, wasmtime.Module], op: int, ptr: int, length: int
) -> None:
    box, compiled = probe
    data = struct.pack("<Bii", op, ptr, length)
    result = box.run(compiled, data, 10**7)
    fault = range_fault(ptr, length, MEMORY)
    if op == 0 and fault is None and length > MAX_OUTPUT_BYTES:
        fault = "output over"
    if fault is not None:
        assert (result.outcome, result.output) == (Outcome.TRAP, b""), result
        assert fault.split(":")[0] in result.detail
        return
    assert result.outcome is Outcome.OK, result
    if op == 0:
        memory = bytearray(MEMORY)
        memory[:9] = data
        assert result.output == bytes(memory[ptr : ptr + length])
    else:
        assert struct.unpack("<i", result.output) == (min(length, len(data)),)
