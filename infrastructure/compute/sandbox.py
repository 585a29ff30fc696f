"""Runs one task: a validated module, its input and a fuel limit in, a :class:`RunResult` out.

Each run gets a fresh store (its own fuel, memory and limits: at most 64 MiB of
memory, one instance, table and memory) and the three host functions of the
task ABI. The host functions check every pointer and length against memory
themselves (wasmtime's Python ``Memory.read``/``write`` would take a negative
start as an offset from the end) and charge fuel for the bytes they copy, so
what a run costs depends only on the module, the input and the settings.

The wall-clock guard (epoch interruption) protects this node, not the verdict:
a run stopped by it raises :class:`WallClockExceeded`, a :class:`LocalFailure`
the caller must not report as the task's outcome (nor anything else this node
cannot attribute to the module).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from types import TracebackType

import wasmtime

from icn.domain.compute.abi import (
    HOST_CALL_FUEL,
    MAX_INPUT_BYTES,
    MAX_MEMORY_BYTES,
    MAX_OUTPUT_BYTES,
    MAX_TABLE_ELEMENTS,
    MEMORY,
    NAMESPACE,
    RUN,
    Outcome,
    RunResult,
    host_call_fuel,
    range_fault,
)
from icn.infrastructure.compute.engine import (
    EPOCH_TICK_SECONDS,
    WASMTIME_VERSION,
    EngineSettings,
    EpochTicker,
    config,
)

DEFAULT_WALL_CLOCK_SECONDS = 30.0


def installed_engine() -> str:
    """This node's engine in the coop policy's words (``compute.engine``): a task asking
    for another one is not run here, since fuel counts differ between versions."""
    return f"wasmtime-{WASMTIME_VERSION}"


@dataclass(frozen=True, eq=False)
class Compiled:
    """A module compiled for one sandbox's engine. Only that sandbox runs it: wasmtime
    refuses another engine's module at instantiation, which must not read as a verdict."""

    module: wasmtime.Module
    engine: wasmtime.Engine


class LocalFailure(Exception):
    """This node could not tell what a run did: never a task's outcome. Run it again, or
    report nothing for it."""


class WallClockExceeded(LocalFailure):
    """This node stopped a run that took too long."""


class _HostTrap(Exception):
    """A host function refused what the module asked (a hostile pointer, too much output)."""


class _HostOutOfFuel(Exception):
    """A host call cost more fuel than was left."""


@dataclass
class _Run:
    """The state of the run in progress on this thread, which the host functions serve."""

    store: wasmtime.Store
    input: bytes
    metered: bool
    memory: wasmtime.Memory | None = None
    output: bytearray = field(default_factory=bytearray)
    fault: tuple[Outcome, str] | None = None
    """How a host function ended the run. Kept here, not only in the exception, because
    wasmtime-py carries a host exception to the caller through one module global, which
    another thread's run could take or replace."""

    def trap(self, detail: str) -> _HostTrap:
        self.fault = (Outcome.TRAP, f"host: {detail}")
        return _HostTrap(detail)

    def charge(self, fuel: int) -> None:
        if not self.metered:
            return
        left = self.store.get_fuel()
        if left < fuel:
            self.store.set_fuel(0)
            self.fault = (Outcome.OUT_OF_FUEL, "host call")
            raise _HostOutOfFuel
        self.store.set_fuel(left - fuel)

    def checked(self, caller: wasmtime.Caller, ptr: int, length: int) -> wasmtime.Memory:
        if self.memory is None:
            raise self.trap("no memory export")
        fault = range_fault(ptr, length, self.memory.data_len(caller))
        if fault is not None:
            raise self.trap(f"{fault}: ptr {ptr}, len {length}")
        return self.memory


_current = threading.local()


def _run_state() -> _Run:
    run: _Run | None = getattr(_current, "run", None)
    if run is None:  # a host function called outside Sandbox.run: a bug of ours
        raise RuntimeError("icn host function called outside a run")
    return run


def _input_len() -> int:
    run = _run_state()
    run.charge(HOST_CALL_FUEL)
    return len(run.input)


def _input_read(caller: wasmtime.Caller, dst: int, length: int) -> int:
    run = _run_state()
    memory = run.checked(caller, dst, length)
    chunk = run.input[:length]
    run.charge(host_call_fuel(len(chunk)))
    if chunk:
        memory.write(caller, chunk, dst)
    return len(chunk)


def _output_write(caller: wasmtime.Caller, src: int, length: int) -> int:
    run = _run_state()
    memory = run.checked(caller, src, length)
    if len(run.output) + length > MAX_OUTPUT_BYTES:
        raise run.trap(f"output over {MAX_OUTPUT_BYTES} bytes")
    run.charge(host_call_fuel(length))
    if length:
        run.output += memory.read(caller, src, src + length)
    return length


def _linker(engine: wasmtime.Engine) -> wasmtime.Linker:
    i32 = wasmtime.ValType.i32()
    linker = wasmtime.Linker(engine)
    linker.define_func(NAMESPACE, "input_len", wasmtime.FuncType([], [i32]), _input_len)
    linker.define_func(
        NAMESPACE, "input_read", wasmtime.FuncType([i32, i32], [i32]), _input_read, True
    )
    linker.define_func(
        NAMESPACE, "output_write", wasmtime.FuncType([i32, i32], [i32]), _output_write, True
    )
    return linker


class Sandbox:
    """An engine with the task settings, its host functions and its wall-clock guard."""

    def __init__(
        self,
        settings: EngineSettings | None = None,
        *,
        wall_clock_seconds: float = DEFAULT_WALL_CLOCK_SECONDS,
    ) -> None:
        self.settings = settings or EngineSettings()
        self.engine = wasmtime.Engine(config(self.settings))
        self._linker = _linker(self.engine)
        self._deadline_ticks = max(1, math.ceil(wall_clock_seconds / EPOCH_TICK_SECONDS))
        self._ticker: EpochTicker | None = None
        if self.settings.epoch_interruption:
            self._ticker = EpochTicker(self.engine)
            self._ticker.start()

    def close(self) -> None:
        """Stop the wall-clock ticker."""
        if self._ticker is not None:
            self._ticker.stop()
            self._ticker = None

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def compile(self, binary: bytes) -> Compiled:
        """Compile a module's binary for this engine (validated modules only)."""
        return Compiled(wasmtime.Module(self.engine, binary), self.engine)

    def deserialize(self, artifact: bytes) -> Compiled:
        """Load a compiled artifact for this engine: only ever one this node wrote and
        proved its own (:class:`~icn.infrastructure.compute.cache.CompiledModuleCache`)."""
        return Compiled(wasmtime.Module.deserialize(self.engine, artifact), self.engine)

    def run(self, compiled: Compiled, input: bytes, fuel_limit: int) -> RunResult:
        """Run the module's ``run`` on ``input`` with ``fuel_limit`` fuel."""
        if compiled.engine is not self.engine:
            raise ValueError("the module was compiled for another sandbox's engine")
        if len(input) > MAX_INPUT_BYTES:
            raise ValueError(f"input over {MAX_INPUT_BYTES} bytes")
        if fuel_limit < 0:
            raise ValueError("fuel_limit is non-negative")
        store = wasmtime.Store(self.engine)
        store.set_limits(
            memory_size=MAX_MEMORY_BYTES,
            table_elements=MAX_TABLE_ELEMENTS,
            instances=1,
            tables=1,
            memories=1,
        )
        metered = self.settings.consume_fuel
        if metered:
            store.set_fuel(fuel_limit)
        if self.settings.epoch_interruption:
            store.set_epoch_deadline(self._deadline_ticks)
        run = _Run(store=store, input=bytes(input), metered=metered)
        if getattr(_current, "run", None) is not None:
            raise RuntimeError("one run at a time per thread")
        _current.run = run
        try:
            if self._ticker is None:
                return self._call(run, compiled.module, fuel_limit)
            with self._ticker.running():
                return self._call(run, compiled.module, fuel_limit)
        finally:
            _current.run = None

    def _call(self, run: _Run, module: wasmtime.Module, fuel_limit: int) -> RunResult:
        store = run.store

        def result(outcome: Outcome, detail: str = "") -> RunResult:
            if not run.metered:
                fuel = 0
            elif outcome is Outcome.OUT_OF_FUEL:
                fuel = fuel_limit
            else:
                fuel = fuel_limit - store.get_fuel()
            output = bytes(run.output) if outcome is Outcome.OK else b""
            return RunResult(outcome=outcome, output=output, fuel=fuel, detail=detail)

        called = False
        try:
            instance = self._linker.instantiate(store, module)
            exports = instance.exports(store)
            memory, entry = exports.get(MEMORY), exports.get(RUN)
            if not isinstance(memory, wasmtime.Memory) or not isinstance(entry, wasmtime.Func):
                return result(Outcome.TRAP, "not a task module: no memory or run export")
            run.memory = memory
            called = True
            status = entry(store)
        except (_HostTrap, _HostOutOfFuel):
            if run.fault is not None:
                return result(*run.fault)
            # another thread's host exception surfaced here: this run trapped on its own,
            # and wasmtime-py dropped its trap code; fuel at 0 can only be running out,
            # anything else (a trap, the wall clock) this node cannot tell apart
            if run.metered and store.get_fuel() == 0:
                return result(Outcome.OUT_OF_FUEL)
            raise LocalFailure("the run's trap was lost to another thread's host call") from None
        except wasmtime.Trap as trap:
            if run.fault is not None:  # our host exception was taken by another thread
                return result(*run.fault)
            code = trap.trap_code
            if code is wasmtime.TrapCode.INTERRUPT:
                raise WallClockExceeded("the run passed this node's wall-clock limit") from None
            if code is wasmtime.TrapCode.OUT_OF_FUEL:
                return result(Outcome.OUT_OF_FUEL)
            name = code.name.lower().replace("_", "-") if code is not None else "trap"
            return result(Outcome.TRAP, name)
        except wasmtime.WasmtimeError as exc:
            if run.fault is not None:  # as above, our host exception went elsewhere
                return result(*run.fault)
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if called:
                raise LocalFailure(f"the call failed without a trap: {first}") from None
            # instantiation refused: a limit, a data segment out of bounds
            return result(Outcome.TRAP, f"instantiation: {first}")
        if not isinstance(status, int) or status != 0:
            return result(Outcome.TRAP, f"run returned {status}")
        return result(Outcome.OK)
