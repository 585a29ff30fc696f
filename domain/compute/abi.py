"""The task ABI, version 1 (docs/spec/compute-abi-v1.md): what a module and a host share.

Every limit a replica's answer depends on is a constant here, so two executors
that run the same module on the same input with the same wasmtime version and
engine settings charge the same fuel and write the same bytes. Changing any of
them changes answers: it is a new ABI version, never an edit.
"""

from __future__ import annotations

from enum import StrEnum

import msgspec

ABI_VERSION = 1
NAMESPACE = "icn"
"""The only module a task may import from."""

PAGE_BYTES = 65536
MAX_MEMORY_BYTES = 64 * 1024 * 1024
MAX_MEMORY_PAGES = MAX_MEMORY_BYTES // PAGE_BYTES
MAX_INPUT_BYTES = 32 * 1024
MAX_OUTPUT_BYTES = 32 * 1024
MAX_MODULE_BYTES = 4 * 1024 * 1024
"""An uploaded module's binary size: compiling is the costly part of validating one."""
MAX_TABLE_ELEMENTS = 10_000

HOST_CALL_FUEL = 64
"""What a call into the host costs besides its bytes: a host call is ~a few hundred ns of
Python, several hundred wasm instructions' worth, so it is never free."""
BYTES_PER_FUEL = 8
"""A host copy charges one unit per started 8 bytes, what a wasm loop of i64 stores would."""

Signature = tuple[tuple[str, ...], tuple[str, ...]]
"""``(params, results)`` as WebAssembly value type names."""

IMPORTS: dict[str, Signature] = {
    "input_len": ((), ("i32",)),
    "input_read": (("i32", "i32"), ("i32",)),
    "output_write": (("i32", "i32"), ("i32",)),
}
"""The host functions of ``icn``, by name, with the signature each must be imported as."""

RUN = "run"
RUN_SIGNATURE: Signature = ((), ("i32",))
MEMORY = "memory"
EXPORTS = frozenset({MEMORY, RUN})
"""A module exports exactly these: its linear memory and its entry point."""


class Outcome(StrEnum):
    """How a run ended; with the output and the fuel, all a replica's verdict compares."""

    OK = "ok"
    """``run`` returned 0."""
    TRAP = "trap"
    """The module trapped, a host check trapped it, or ``run`` returned non-zero."""
    OUT_OF_FUEL = "out-of-fuel"
    """The fuel limit ran out before ``run`` returned."""


class RunResult(msgspec.Struct, frozen=True, kw_only=True):
    """One run's answer. ``output`` is empty unless the outcome is ``ok``; ``fuel`` is what
    was consumed (the whole limit when it ran out). ``detail`` says why a trap happened for
    the people reading it and is never compared: its wording may differ between versions."""

    outcome: Outcome
    output: bytes
    fuel: int
    detail: str = ""


def host_call_fuel(nbytes: int) -> int:
    """The fuel a host call that copies ``nbytes`` costs (fixed part + one per started 8 bytes)."""
    return HOST_CALL_FUEL + -(-nbytes // BYTES_PER_FUEL)


def range_fault(ptr: int, length: int, memory_bytes: int) -> str | None:
    """Why ``[ptr, ptr + length)`` is not inside a memory of ``memory_bytes``, or ``None``.

    Values arrive as signed i32: a negative pointer or length is a fault, never a
    wrap-around, and the end is computed in Python integers so it cannot overflow.
    """
    if ptr < 0:
        return "negative pointer"
    if length < 0:
        return "negative length"
    if ptr + length > memory_bytes:
        return "range past the end of memory"
    return None
