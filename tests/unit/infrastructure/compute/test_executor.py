"""An executor's run of a task: answers sealed, agreement across executors, local failures."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import pytest
import wasmtime
from blake3 import blake3

from icn.domain.compute.abi import Outcome
from icn.domain.compute.results import judge, opens
from icn.domain.coop.records import DEFAULT_ENGINE
from icn.infrastructure.compute.cache import CompiledModuleCache
from icn.infrastructure.compute.executor import EngineMismatch, ModuleUnavailable, Sealed, execute
from icn.infrastructure.compute.sandbox import LocalFailure, Sandbox, installed_engine

COUNT = """(module
  (import "icn" "input_len" (func $len (result i32)))
  (import "icn" "output_write" (func $write (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "run") (result i32)
    (i32.store (i32.const 0) (call $len))
    (drop (call $write (i32.const 0) (i32.const 4)))
    (i32.const 0)))"""
BINARY = bytes(wasmtime.wat2wasm(COUNT))
HASH = blake3(BINARY).hexdigest()
TASK = "7" * 64


def store(hash_: str) -> bytes | None:
    return BINARY if hash_ == HASH else None


def test_two_executors_answer_alike_and_each_commitment_opens_for_its_own_reveal(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    sealed = {}
    with Sandbox() as other:
        for name, box in (("did:key:a", sandbox), ("did:key:b", other)):
            cache = CompiledModuleCache(tmp_path / name.replace(":", "-"), box)
            sealed[name] = execute(
                cache,
                store,
                task=TASK,
                executor=name,
                module=HASH,
                input=b"abc",
                fuel_limit=10**6,
                engine=installed_engine(),
            )
    a, b = sealed["did:key:a"], sealed["did:key:b"]
    assert a.result.outcome is Outcome.OK and a.result.output == (3).to_bytes(4, "little")
    assert a.answer == b.answer and a.salt != b.salt and a.commitment != b.commitment
    for s in (a, b):
        assert opens(s.commitment, TASK, s.executor, s.answer, s.salt)
    verdict = judge({s.executor: s.answer for s in (a, b)}, replicas=2)
    assert verdict.answer == a.answer and verdict.agreeing == ("did:key:a", "did:key:b")


def test_a_module_this_node_lacks_is_a_local_failure(tmp_path: Path, sandbox: Sandbox) -> None:
    cache = CompiledModuleCache(tmp_path / "cache", sandbox)
    with pytest.raises(ModuleUnavailable) as raised:
        execute(
            cache,
            store,
            task=TASK,
            executor="x",
            module="0" * 64,
            input=b"",
            fuel_limit=1,
            engine=installed_engine(),
        )
    assert isinstance(raised.value, LocalFailure)


def test_the_pinned_engine_is_this_release_s_policy_default() -> None:
    """The policy's default is the version this release installs: a coop that never
    changed ``compute.engine`` has its tasks answered by every up-to-date executor."""
    assert installed_engine() == DEFAULT_ENGINE == f"wasmtime-{version('wasmtime')}"


def test_a_task_on_another_engine_is_not_run_here(tmp_path: Path, sandbox: Sandbox) -> None:
    """No answer at all (not an outcome): the module is not even asked for, nothing runs."""
    asked: list[str] = []

    def counting(hash_: str) -> bytes | None:
        asked.append(hash_)
        return store(hash_)

    cache = CompiledModuleCache(tmp_path / "cache", sandbox)

    def run(engine: str) -> Sealed:
        return execute(cache, counting, task=TASK, executor="x", module=HASH, input=b"abc",
                       fuel_limit=10**6, engine=engine)  # fmt: skip

    for other in ("wasmtime-49.0.0", "wasmtime-51.0.0"):
        with pytest.raises(EngineMismatch) as raised:
            run(other)
        assert isinstance(raised.value, LocalFailure)
        assert other in str(raised.value) and installed_engine() in str(raised.value)
    assert asked == []
    sealed = run(installed_engine())
    assert asked == [HASH] and sealed.result.outcome is Outcome.OK
