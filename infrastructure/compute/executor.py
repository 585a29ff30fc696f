"""An executor's side of one task: load the module, run it, commit to the answer.

What ``icn node run --executor`` will do for each assignment, short of the
events: the module comes through the compiled-module cache (so bytes from
elsewhere are only ever compiled, never deserialized), the run is metered,
and the answer is sealed in a commitment with a fresh salt, kept for the
reveal. A :class:`LocalFailure` (the wall clock, a lost trap code) yields no
answer at all: this node's trouble is never reported as the task's outcome.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

from icn.domain.compute.abi import RunResult
from icn.domain.compute.results import Answer, commitment_of, output_hash
from icn.infrastructure.compute.cache import CompiledModuleCache
from icn.infrastructure.compute.sandbox import LocalFailure, installed_engine

ModuleBytes = Callable[[str], bytes | None]
"""Where a module's binary comes from, by hash (the node's module store)."""


class ModuleUnavailable(LocalFailure):
    """This node does not hold the module's bytes (yet)."""


class EngineMismatch(LocalFailure):
    """The task asks for another wasmtime version than this node's: its fuel count here
    could differ from the other replicas', so this node gives no answer; the task is
    re-placed or expires by the coop's deadlines."""


@dataclass(frozen=True)
class Sealed:
    """A run's answer, its commitment (posted first) and what the reveal needs."""

    task: str
    executor: str
    result: RunResult
    answer: Answer
    salt: str
    commitment: str


def execute(
    cache: CompiledModuleCache,
    module_bytes: ModuleBytes,
    *,
    task: str,
    executor: str,
    module: str,
    input: bytes,
    fuel_limit: int,
    engine: str,
) -> Sealed:
    """Run ``module`` on ``input`` for ``task`` as ``executor``; raises :class:`LocalFailure`
    when this node cannot give an answer (:class:`EngineMismatch` when ``engine``, the
    task's, is not this node's)."""
    mine = installed_engine()
    if engine != mine:
        raise EngineMismatch(f"the task runs on {engine}, this node has {mine}")
    binary = module_bytes(module)
    if binary is None:
        raise ModuleUnavailable(f"module {module} is not stored on this node")
    compiled = cache.load(module, binary)
    result = cache.sandbox.run(compiled, input, fuel_limit)
    answer = Answer(result.outcome, output_hash(result.output), result.fuel)
    salt = secrets.token_hex(32)
    return Sealed(
        task=task,
        executor=executor,
        result=result,
        answer=answer,
        salt=salt,
        commitment=commitment_of(task, executor, answer, salt),
    )
