"""The compiled-module cache: loads only what this node wrote, answers as compiling does."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

import pytest
import wasmtime
from blake3 import blake3

from icn.domain.compute.abi import Outcome
from icn.infrastructure.compute.cache import KEY_FILE, CompiledModuleCache
from icn.infrastructure.compute.engine import EngineSettings
from icn.infrastructure.compute.sandbox import Sandbox

WAT = """(module
  (import "icn" "input_len" (func $len (result i32)))
  (import "icn" "input_read" (func $read (param i32 i32) (result i32)))
  (import "icn" "output_write" (func $write (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "run") (result i32) (local $n i32) (local $i i32)
    (local.set $n (call $read (i32.const 0) (call $len)))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (i32.store8 (local.get $i) (i32.xor (i32.load8_u (local.get $i)) (i32.const 32)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (drop (call $write (i32.const 0) (local.get $n)))
    (i32.const 0)))"""
BINARY = bytes(wasmtime.wat2wasm(WAT))
HASH = blake3(BINARY).hexdigest()
INPUT = b"Hello, Cooperative World" * 50
FLIPPED = bytes(b ^ 32 for b in INPUT)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_cached_module_answers_exactly_as_a_compiled_one(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    compiled = sandbox.run(sandbox.compile(BINARY), INPUT, 10**6)
    first = CompiledModuleCache(tmp_path / "cache", sandbox)
    first.load(HASH, BINARY)
    assert (first.compiled, first.hits) == (1, 0)
    with Sandbox() as other:  # another engine, reading the entry the first one wrote
        second = CompiledModuleCache(tmp_path / "cache", other)
        from_cache = other.run(second.load(HASH, BINARY), INPUT, 10**6)
        assert (second.compiled, second.hits, second.refused) == (0, 1, 0)
    assert compiled.outcome is Outcome.OK
    assert compiled.output == FLIPPED
    assert from_cache == compiled


def test_the_cache_and_its_key_are_private(tmp_path: Path, sandbox: Sandbox) -> None:
    cache = CompiledModuleCache(tmp_path / "cache", sandbox)
    cache.load(HASH, BINARY)
    assert mode(tmp_path / "cache") == 0o700
    assert mode(tmp_path / "cache" / KEY_FILE) == 0o600
    assert mode(cache.path(HASH)) == 0o600


@pytest.mark.parametrize("where", [0, 40, -1])
def test_a_tampered_entry_is_refused_and_recompiled(
    tmp_path: Path, sandbox: Sandbox, where: int
) -> None:
    cache = CompiledModuleCache(tmp_path / "cache", sandbox)
    cache.load(HASH, BINARY)
    entry = bytearray(cache.path(HASH).read_bytes())
    entry[where] ^= 0x01  # the MAC, the artifact's start, its end
    cache.path(HASH).write_bytes(bytes(entry))
    module = cache.load(HASH, BINARY)
    assert (cache.refused, cache.compiled, cache.hits) == (1, 2, 0)
    assert sandbox.run(module, INPUT, 10**6).output == FLIPPED
    cache.load(HASH, BINARY)  # the rewritten entry proves ours again
    assert (cache.refused, cache.hits) == (1, 1)


def test_an_entry_from_elsewhere_is_never_deserialized(tmp_path: Path, sandbox: Sandbox) -> None:
    theirs = CompiledModuleCache(tmp_path / "theirs", sandbox)
    theirs.load(HASH, BINARY)
    ours = CompiledModuleCache(tmp_path / "ours", sandbox)
    # a well-formed artifact for this very engine and module, but not MACed with our key
    ours.path(HASH).write_bytes(theirs.path(HASH).read_bytes())
    ours.load(HASH, BINARY)
    assert (ours.refused, ours.compiled, ours.hits) == (1, 1, 0)
    truncated = ours.path(HASH).read_bytes()[:20]
    ours.path(HASH).write_bytes(truncated)
    ours.load(HASH, BINARY)
    assert ours.refused == 2


def test_entries_are_keyed_by_the_engine_settings(tmp_path: Path, sandbox: Sandbox) -> None:
    metered = CompiledModuleCache(tmp_path / "cache", sandbox)
    with Sandbox(EngineSettings(consume_fuel=False)) as unmetered_box:
        unmetered = CompiledModuleCache(tmp_path / "cache", unmetered_box)
        assert metered.path(HASH) != unmetered.path(HASH)
        metered.load(HASH, BINARY)
        unmetered.load(HASH, BINARY)
        assert (unmetered.compiled, unmetered.refused) == (1, 0)


def test_bytes_that_are_not_the_module_are_not_compiled(tmp_path: Path, sandbox: Sandbox) -> None:
    cache = CompiledModuleCache(tmp_path / "cache", sandbox)
    with pytest.raises(ValueError, match="hash"):
        cache.load("00" * 32, BINARY)
    assert cache.compiled == 0


def test_a_damaged_key_is_replaced_and_old_entries_are_refused(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    first = CompiledModuleCache(tmp_path / "cache", sandbox)
    first.load(HASH, BINARY)
    (tmp_path / "cache" / KEY_FILE).write_bytes(b"short")
    second = CompiledModuleCache(tmp_path / "cache", sandbox)
    assert len((tmp_path / "cache" / KEY_FILE).read_bytes()) == 32
    assert mode(tmp_path / "cache" / KEY_FILE) == 0o600
    second.load(HASH, BINARY)
    assert (second.refused, second.compiled) == (1, 1)
    assert [p.name for p in (tmp_path / "cache").iterdir() if p.name.startswith(".")] == []


def test_caches_opened_at_once_settle_on_one_key(tmp_path: Path, sandbox: Sandbox) -> None:
    opened: list[CompiledModuleCache] = []
    start = threading.Barrier(8)

    def open_cache() -> None:
        start.wait()
        opened.append(CompiledModuleCache(tmp_path / "cache", sandbox))

    threads = [threading.Thread(target=open_cache) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    opened[0].load(HASH, BINARY)
    for cache in opened[1:]:
        cache.load(HASH, BINARY)
        assert (cache.hits, cache.refused) == (1, 0)
