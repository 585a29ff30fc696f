"""Module intake: only task modules under the ABI are stored, each refusal with its code."""

from __future__ import annotations

import pytest
import wasmtime
from blake3 import blake3

from icn.domain.compute.abi import MAX_MODULE_BYTES
from icn.domain.compute.bodies import ModuleStored
from icn.domain.refusals import Code, Refusal
from icn.infrastructure.compute.modules import StoredModule, intake
from icn.infrastructure.compute.sandbox import Sandbox

ABI = """
  (import "icn" "input_len" (func $len (result i32)))
  (import "icn" "output_write" (func $write (param i32 i32) (result i32)))
"""
GOOD = f"""(module {ABI}
  (memory (export "memory") 1)
  (func (export "run") (result i32) (drop (call $len)) (i32.const 0)))"""


def task(
    imports: str = ABI,
    memory: str = '(memory (export "memory") 1)',
    run: str = '(func (export "run") (result i32) (i32.const 0))',
    extra: str = "",
) -> str:
    return f"(module {imports} {memory} {run} {extra})"


def refused(sandbox: Sandbox, data: bytes | str, expected_hash: str | None = None) -> Code:
    raw = data.encode() if isinstance(data, str) else data
    result = intake(raw, sandbox, expected_hash)
    assert isinstance(result, Refusal), result
    assert result.reason
    return result.code


def test_a_task_module_is_stored_under_the_hash_of_its_binary(sandbox: Sandbox) -> None:
    binary = bytes(wasmtime.wat2wasm(GOOD))
    from_text = intake(GOOD.encode(), sandbox)
    from_binary = intake(binary, sandbox, blake3(binary).hexdigest())
    assert isinstance(from_text, StoredModule) and isinstance(from_binary, StoredModule)
    assert from_text.hash == from_binary.hash == blake3(binary).hexdigest()
    assert from_text.binary == binary
    assert from_text.body() == ModuleStored(
        hash=blake3(binary).hexdigest(),
        size=len(binary),
        imports=["icn.input_len", "icn.output_write"],
    )


def test_bytes_that_are_no_module_are_invalid(sandbox: Sandbox) -> None:
    assert refused(sandbox, b"\xff\xfe not text") is Code.MODULE_INVALID
    assert refused(sandbox, "(module (func (export") is Code.MODULE_INVALID
    assert refused(sandbox, b"\x00asm\x01\x00\x00\x00\x01\xff") is Code.MODULE_INVALID
    assert refused(sandbox, "(module (func (result i32) (i64.const 1)))") is Code.MODULE_INVALID


def test_a_module_over_4_mib_is_too_large(sandbox: Sandbox) -> None:
    size = MAX_MODULE_BYTES  # a custom section makes the whole binary just over the limit
    leb, n = bytearray(), size
    while True:
        byte, n = n & 0x7F, n >> 7
        leb.append(byte | (0x80 if n else 0))
        if not n:
            break
    blob = b"\x00asm\x01\x00\x00\x00" + b"\x00" + bytes(leb) + b"\x01x" + bytes(size - 2)
    assert refused(sandbox, blob) is Code.MODULE_TOO_LARGE


def test_bytes_that_do_not_hash_to_the_hash_given_are_refused(sandbox: Sandbox) -> None:
    assert refused(sandbox, GOOD, "00" * 32) is Code.MODULE_HASH_MISMATCH


@pytest.mark.parametrize(
    "extra",
    [
        "(func (result v128) (v128.const i32x4 1 2 3 4))",  # SIMD
        "(func (param v128) (result v128) (i32x4.relaxed_laneselect"
        " (local.get 0) (local.get 0) (local.get 0)))",  # relaxed SIMD
        "(func (result i32) (i32.atomic.load (i32.const 0)))",  # threads
        "(func $tc (return_call $tc))",  # tail calls
        "(table 1 funcref) (table 1 funcref)",  # more than one table
        "(func (param externref))",  # externref needs the GC heap
    ],
)
def test_simd_threads_and_other_features_are_forbidden(sandbox: Sandbox, extra: str) -> None:
    assert refused(sandbox, task(extra=extra)) is Code.MODULE_FEATURE_FORBIDDEN


def test_shared_memory_is_forbidden(sandbox: Sandbox) -> None:
    shared = '(memory (export "memory") 1 1 shared)'
    assert refused(sandbox, task(memory=shared)) is Code.MODULE_FEATURE_FORBIDDEN


@pytest.mark.parametrize(
    "imports",
    [
        '(import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))',
        '(import "wasi_snapshot_preview1" "proc_exit" (func (param i32)))',
        '(import "env" "input_len" (func (result i32)))',
        '(import "icn" "clock" (func (result i64)))',
        '(import "icn" "input_len" (func (result i64)))',  # the ABI's name, another signature
        '(import "icn" "input_read" (func (param i32) (result i32)))',
        '(import "icn" "scratch" (global i32))',
        '(import "icn" "table" (table 1 funcref))',
    ],
)
def test_anything_but_the_abi_functions_is_a_forbidden_import(
    sandbox: Sandbox, imports: str
) -> None:
    assert refused(sandbox, task(imports=imports)) is Code.MODULE_IMPORT_FORBIDDEN


def test_an_imported_memory_is_a_forbidden_import(sandbox: Sandbox) -> None:
    imported = '(import "icn" "memory" (memory 1)) (export "memory" (memory 0))'
    assert refused(sandbox, task(memory=imported)) is Code.MODULE_IMPORT_FORBIDDEN


@pytest.mark.parametrize(
    ("memory", "run", "extra"),
    [
        ("(memory 1)", '(func (export "run") (result i32) (i32.const 0))', ""),
        ('(memory (export "memory") 1)', "", ""),
        ('(memory (export "memory") 1)', '(func (export "run") (result i64) (i64.const 0))', ""),
        ('(memory (export "memory") 1)', '(func (export "run") (param i32) (result i32) (i32.const 0))', ""),  # noqa: E501
        ('(memory (export "memory") 1)', '(func (export "run") (result i32) (i32.const 0))',
         '(func (export "helper"))'),
        ('(memory (export "run") 1)', '(func (export "memory") (result i32) (i32.const 0))', ""),
        ('(memory (export "memory") 1)', '(global (export "run") i32 (i32.const 0))', ""),
    ],
)  # fmt: skip
def test_a_module_exports_exactly_memory_and_run(
    sandbox: Sandbox, memory: str, run: str, extra: str
) -> None:
    assert refused(sandbox, task(memory=memory, run=run, extra=extra)) is Code.MODULE_EXPORTS


def test_a_start_function_is_refused(sandbox: Sandbox) -> None:
    extra = "(func $init) (start $init)"
    assert refused(sandbox, task(extra=extra)) is Code.MODULE_START_FUNCTION


def test_a_memory_starting_above_64_mib_is_refused(sandbox: Sandbox) -> None:
    too_big = '(memory (export "memory") 1025)'
    assert refused(sandbox, task(memory=too_big)) is Code.MODULE_MEMORY_TOO_LARGE
    # a larger maximum is fine: the store's limit stops growth at 64 MiB
    fits = intake(task(memory='(memory (export "memory") 1024 65536)').encode(), sandbox)
    assert isinstance(fits, StoredModule)
