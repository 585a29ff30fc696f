"""The one wasmtime engine configuration a task runs under, and its digest.

Fuel counts and trap points depend on the wasmtime version and on these
settings, so both are part of what replicas must share (docs/compute.md) and
of the compiled-module cache key. Relaxed SIMD must be off whenever SIMD is:
wasmtime 50's C API panics at ``Engine`` creation on SIMD off with relaxed SIMD
on, which aborts the Python process (SIGABRT, checked in a subprocess), no
exception to catch. wasmtime-py applies the switches only when the engine is
made, so their order here is only for the reader: threads and relaxed SIMD
off first, then SIMD.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import version

import wasmtime
from blake3 import blake3

WASMTIME_VERSION = version("wasmtime")
STACK_BYTES = 512 * 1024
"""``max_wasm_stack``: a fixed stack so a deep recursion traps at the same depth everywhere
(on one architecture: frame sizes are the compiler's, see docs/compute.md)."""
EPOCH_TICK_SECONDS = 0.01
"""How often the engine's epoch advances: the wall-clock guard's resolution."""


@dataclass(frozen=True)
class EngineSettings:
    """Everything about the engine that changes compiled code or what a run answers.

    ``consume_fuel`` off exists for the benchmark's unmetered baseline only: tasks
    always run metered.
    """

    consume_fuel: bool = True
    nan_canonicalization: bool = True
    epoch_interruption: bool = True
    max_wasm_stack: int = STACK_BYTES

    def digest(self) -> str:
        """BLAKE3 of these settings with the wasmtime version: part of the compiled-cache key."""
        doc = {"wasmtime": WASMTIME_VERSION, **dataclasses.asdict(self)}
        return blake3(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def config(settings: EngineSettings) -> wasmtime.Config:
    """The wasmtime ``Config`` for ``settings``: MVP plus bulk memory, multi-value and
    reference types (what current toolchains emit), everything else off, no WASI."""
    cfg = wasmtime.Config()
    cfg.consume_fuel = settings.consume_fuel
    cfg.cranelift_nan_canonicalization = settings.nan_canonicalization
    cfg.epoch_interruption = settings.epoch_interruption
    cfg.max_wasm_stack = settings.max_wasm_stack
    # Threads and relaxed SIMD off, then SIMD: SIMD off with relaxed SIMD on aborts.
    cfg.wasm_threads = False
    cfg.wasm_relaxed_simd = False
    cfg.wasm_simd = False
    cfg.wasm_gc = False
    cfg.wasm_function_references = False
    cfg.wasm_exceptions = False
    cfg.wasm_stack_switching = False
    cfg.wasm_multi_memory = False
    cfg.wasm_memory64 = False
    cfg.wasm_tail_call = False
    cfg.wasm_wide_arithmetic = False
    cfg.wasm_custom_page_sizes = False
    cfg.wasm_component_model = False
    cfg.gc_support = False
    cfg.shared_memory = False
    cfg.parallel_compilation = False
    return cfg


def permissive_config() -> wasmtime.Config:
    """An engine that accepts the features tasks may not use: a module it validates and the
    task engine does not uses one of them (``module-feature-forbidden``, not ``module-invalid``)."""
    cfg = wasmtime.Config()
    cfg.wasm_simd = True
    cfg.wasm_relaxed_simd = True
    cfg.wasm_threads = True
    cfg.shared_memory = True
    cfg.wasm_multi_memory = True
    cfg.wasm_memory64 = True
    cfg.wasm_tail_call = True
    cfg.wasm_wide_arithmetic = True
    cfg.wasm_custom_page_sizes = True
    cfg.wasm_exceptions = True
    cfg.wasm_function_references = True
    cfg.gc_support = True
    cfg.wasm_gc = True
    cfg.parallel_compilation = False
    return cfg


class EpochTicker:
    """Advances an engine's epoch every :data:`EPOCH_TICK_SECONDS` from one daemon thread,
    while at least one run is in progress (an idle executor does not wake 100 times a second).

    A run sets its deadline in ticks, so concurrent runs on one engine each get their
    own wall-clock budget (a one-shot timer per run would interrupt every other run
    on the engine too). wasmtime releases the GIL while wasm runs, so this keeps ticking.
    """

    def __init__(self, engine: wasmtime.Engine) -> None:
        self._engine = engine
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._busy = threading.Condition()
        self._runs = 0

    def start(self) -> None:
        """Start the thread (idempotent); it ticks only inside :meth:`running`."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._tick, name="wasm-epoch", daemon=True)
                self._thread.start()

    def stop(self) -> None:
        """Stop ticking and wait for the thread."""
        self._stop.set()
        with self._busy:
            self._busy.notify_all()
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            thread.join()

    @contextmanager
    def running(self) -> Iterator[None]:
        """Tick for as long as the ``with`` block (one run) lasts."""
        with self._busy:
            self._runs += 1
            self._busy.notify_all()
        try:
            yield
        finally:
            with self._busy:
                self._runs -= 1

    def _tick(self) -> None:
        while not self._stop.is_set():
            with self._busy:
                while self._runs == 0 and not self._stop.is_set():
                    self._busy.wait()
            if not self._stop.wait(EPOCH_TICK_SECONDS):
                self._engine.increment_epoch()
