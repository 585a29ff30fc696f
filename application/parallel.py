"""One parallel verifier for every path that takes signed lines: import, audit, HTTP, intake.

The order-free checks of an event (decode, BLAKE3 id, Ed25519 signature:
:func:`~icn.domain.events.envelope.inspect`) are most of the cost of taking
it, and need no state; chain checks do, and run in order in the caller. So a
:class:`Verifier` inspects lines on every core and hands back, in input
order, :class:`Inspection` objects the caller judges and appends.

Threads, not processes, by default. Measured on this 2-core machine (4,000
one-transaction events, medians of 5): ``crypto_sign_open`` is 55 µs of
``inspect``'s 76 µs and PyNaCl (cffi) releases the GIL around it (2 threads
1.84× one); the rest (msgspec decode with the shape checks 12 µs, canonical
bytes and BLAKE3 ~3 µs) holds the GIL (2 threads 0.95×). So threads overlap
three quarters of the work with no pickling and no second decode, start in
microseconds (a server batch of 100 can use them), and share the caller's
memory. A process pool is kept for long files where the caller's own
per-event work is heavy (``processes=True``): its workers hand back each passed
line's canonical bytes with the event's members packed (msgpack), which the
caller turns into an inspection without checking again (~4 µs), and a verdict
per refused line; ``bench/log_append.py`` weighs this against the threads' GIL
hand-offs.

A caller that needs less than an inspection per line gives its own function
to :meth:`Verifier.map`: the audit's workers hand back judged facts per chunk
(:mod:`icn.application.audit_chunks`, ~70 bytes an event), since decoding every
event again with its typed body (~9-25 µs) made the caller the bound of two
cores (audit 1.55x one worker).
"""

from __future__ import annotations

import gc
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import suppress
from itertools import islice
from typing import Any, Literal, Protocol, TypeVar

import msgspec

from icn.domain.events.envelope import (
    Event,
    Inspection,
    decode_stored,
    inspect,
    passed_inspection,
    stored_inspection,
)
from icn.domain.events.verdicts import Verdict

CHUNK = 1000
"""Lines per unit of work in a stream: large enough that hand-offs cost nothing
measurable (one future per 1,000 events), small enough to bound memory."""

MIN_SPLIT = 8
"""A batch smaller than this is inspected in the calling thread: splitting it saves
less than one hand-off to a worker costs (~50-100 µs on this VM)."""

Chunked = tuple[list[bytes], list[Inspection]]
R = TypeVar("R")
T = TypeVar("T")
Refused = tuple[int, str, str, str]
"""A line a worker refused: its index in the chunk, verdict, reason, code."""
Checked = tuple[bytes | list[bytes], list[Refused]]
"""A worker process's answer for one chunk: the lines that passed (:class:`_Passed`,
msgpack-packed, or their canonical bytes if packing failed) and those refused."""


class Verifier(Protocol):
    """The port: stateless checks of many lines, on as many cores as it was given."""

    @property
    def workers(self) -> int:
        """How many lines it inspects at once."""
        ...

    def inspect(self, lines: Sequence[bytes]) -> list[Inspection]:
        """Inspect one batch, returning inspections in input order."""
        ...

    def stream(self, lines: Iterable[bytes], chunk: int = CHUNK) -> Iterator[Chunked]:
        """Yield (lines, inspections) chunk by chunk, in input order, with a bounded
        number of chunks in flight, so the caller judges one chunk while the next are
        being verified."""
        ...

    def map(
        self, fn: Callable[[list[bytes]], R], lines: Iterable[bytes], chunk: int = CHUNK
    ) -> Iterator[tuple[list[bytes], R]]:
        """Yield (lines, ``fn(lines)``) chunk by chunk, in input order, as :meth:`stream`
        does with ``inspect``: for a caller whose workers hand back less than an
        inspection per line (``fn`` at module level, so that a process can run it)."""
        ...

    def start(self, fn: Callable[[list[T]], R], part: list[T]) -> Future[R]:
        """Begin ``fn(part)`` on a worker now (``fn`` at module level), for a caller that
        hands out work as it reads and collects it at the end (the recount). A future no
        worker has taken yet can be cancelled, and the caller then runs ``fn`` itself: the
        inline verifier takes none, so everything is done by the caller."""
        ...

    def close(self) -> None:
        """Stop the workers (a closed verifier must not be used again)."""
        ...


def inspect_all(lines: Iterable[bytes]) -> list[Inspection]:
    """:func:`inspect` over ``lines``, in this thread."""
    return [inspect(line) for line in lines]


def chunks(lines: Iterable[bytes], size: int) -> Iterator[list[bytes]]:
    """Consecutive lists of at most ``size`` lines."""
    it = iter(lines)
    while chunk := list(islice(it, size)):
        yield chunk


def split(lines: Sequence[bytes], parts: int) -> list[Sequence[bytes]]:
    """``lines`` in ``parts`` consecutive slices of nearly equal length (none empty)."""
    n = len(lines)
    parts = max(1, min(parts, n))
    return [lines[i * n // parts : (i + 1) * n // parts] for i in range(parts)]


class InlineVerifier:
    """Everything in the calling thread: one core, no pool (``--workers 1``)."""

    workers = 1

    def inspect(self, lines: Sequence[bytes]) -> list[Inspection]:
        """Inspect ``lines`` here."""
        return inspect_all(lines)

    def stream(self, lines: Iterable[bytes], chunk: int = CHUNK) -> Iterator[Chunked]:
        """Inspect chunk by chunk, here."""
        return self.map(inspect_all, lines, chunk)

    def map(
        self, fn: Callable[[list[bytes]], R], lines: Iterable[bytes], chunk: int = CHUNK
    ) -> Iterator[tuple[list[bytes], R]]:
        """``fn`` chunk by chunk, here."""
        for part in chunks(lines, chunk):
            yield part, fn(part)

    def start(self, fn: Callable[[list[T]], R], part: list[T]) -> Future[R]:
        """A future nobody runs: the caller cancels it and runs ``fn`` itself."""
        return Future()

    def close(self) -> None:
        """Nothing to stop."""


class ThreadVerifier:
    """Inspection on ``workers`` threads; the calling thread takes a share of each batch.

    Safe to share between threads (a server's request handlers and its stream
    intake use one): ``ThreadPoolExecutor`` is thread-safe and ``inspect`` keeps
    no state.
    """

    def __init__(self, workers: int) -> None:
        self._workers = max(1, workers)
        self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="icn-verify")

    @property
    def workers(self) -> int:
        """Threads inspecting at once (the calling thread counts as one in ``inspect``)."""
        return self._workers

    def inspect(self, lines: Sequence[bytes]) -> list[Inspection]:
        """Split ``lines`` across the workers; the caller inspects the first slice itself
        rather than waiting idle, which saves one hand-off per batch."""
        if self._workers == 1 or len(lines) < MIN_SPLIT:
            return inspect_all(lines)
        first, *rest = split(lines, self._workers)
        futures = [self._pool.submit(inspect_all, part) for part in rest]
        out = inspect_all(first)
        for future in futures:
            out += future.result()
        return out

    def stream(self, lines: Iterable[bytes], chunk: int = CHUNK) -> Iterator[Chunked]:
        """Up to ``2 × workers`` chunks in flight on the pool while the caller judges."""
        return self.map(inspect_all, lines, chunk)

    def map(
        self, fn: Callable[[list[bytes]], R], lines: Iterable[bytes], chunk: int = CHUNK
    ) -> Iterator[tuple[list[bytes], R]]:
        """``fn`` on the threads, up to ``2 × workers`` chunks in flight."""
        if self._workers == 1:
            yield from InlineVerifier().map(fn, lines, chunk)
            return
        pending: deque[tuple[list[bytes], Future[R]]] = deque()
        for part in chunks(lines, chunk):
            pending.append((part, self._pool.submit(fn, part)))
            if len(pending) > 2 * self._workers:
                done, future = pending.popleft()
                yield done, future.result()
        while pending:
            done, future = pending.popleft()
            yield done, future.result()

    def start(self, fn: Callable[[list[T]], R], part: list[T]) -> Future[R]:
        """``fn(part)`` on a thread (fine while the caller waits; a caller holding the GIL
        stalls the threads after every signature, so long work wants processes)."""
        return self._pool.submit(fn, part)

    def close(self) -> None:
        """Stop the threads once their work is done."""
        self._pool.shutdown(wait=True)


# -- worker processes ----------------------------------------------------------------


class _Passed(msgspec.Struct, array_like=True, frozen=True):
    """A line that passed, as a worker hands it back: its canonical bytes and the event's
    members, packed with msgpack (no names, no JSON). Rebuilding an inspection from this
    costs the caller ~4 µs where decoding the canonical bytes again costs ~8 (the envelope's
    patterns and typed members checked once more, for bytes a worker just checked)."""

    wire: bytes
    v: Literal[1]
    coop: str
    author: str
    seq: int
    prev: str | None
    ts: int
    type: str
    body: dict[str, Any]
    id: str
    sig: str


_pack = msgspec.msgpack.Encoder()
_unpack = msgspec.msgpack.Decoder(list[_Passed])


def _check_chunk(lines: list[bytes]) -> Checked:
    passed: list[_Passed] = []
    refused: list[Refused] = []
    for i, line in enumerate(lines):
        ins = inspect(line)
        e = ins.event
        if ins.verdict is None and e is not None:
            passed.append(_Passed(ins.wire, e.v, e.coop, e.author, e.seq, e.prev, e.ts, e.type,
                                  e.body, e.id, e.sig))  # fmt: skip
        else:
            refused.append((i, ins.verdict.value if ins.verdict else "", ins.reason, ins.code))
    try:
        return _pack.encode(passed), refused
    except (msgspec.EncodeError, OverflowError):  # not for a body that passed; still exact
        return [p.wire for p in passed], refused


def _passed(p: _Passed) -> Inspection:
    """What :func:`stored_inspection` makes of ``p.wire``, from the members as the worker
    decoded them (an Event built by its constructor is not checked again)."""
    event = Event(v=p.v, coop=p.coop, author=p.author, seq=p.seq, prev=p.prev, ts=p.ts,
                  type=p.type, body=p.body, id=p.id, sig=p.sig)  # fmt: skip
    return passed_inspection(event, p.wire)


def _refused(line: bytes, verdict: str, reason: str, code: str) -> Inspection:
    if verdict == Verdict.MALFORMED:
        return Inspection(None, Verdict.MALFORMED, reason, code=code)
    return Inspection(decode_stored(line), Verdict(verdict), reason)


def _rebuild_chunk(lines: list[bytes], checked: Checked) -> list[Inspection]:
    """The caller's side of :func:`_check_chunk`, in input order."""
    packed, refused = checked
    passed: Iterator[Inspection] = (
        map(_passed, _unpack.decode(packed))
        if isinstance(packed, bytes)
        else map(stored_inspection, packed)
    )
    out: list[Inspection] = []
    at = 0
    for i, verdict, reason, code in refused:
        out += islice(passed, i - at)
        out.append(_refused(lines[i], verdict, reason, code))
        at = i + 1
    out += passed
    return out


def _as_is(_: list[bytes], answer: R) -> R:
    return answer


WORKER_NICE = 3
"""How much lower a worker process runs than its caller when the caller has serial work of
its own per event (an import judges and appends every one, ~70-95 µs: as much CPU as the
signatures on the other side). Three busy processes on two cores share them by thirds, so
the caller, the serial part, ran at two thirds of a core while its workers ran ahead; a
lower weight for the workers lets the scheduler give the caller a core whenever it is
runnable, and the workers everything else. Measured: verified batch append (100) of
10,000 events in 2 worker processes, 5 alternating pairs at load 8.5-10.6: 0.84x the
wall time per event with the workers at +3."""


def _leave_with_parent(parent: int, nice: int = 0) -> None:
    """Worker start: exit when the parent is gone. A parent killed with SIGKILL never stops
    its pool, and the workers would wait for work for ever (found as orphans after the
    SIGKILL-mid-import test).

    Also freezes what the worker inherited from its parent (``gc.freeze``): the
    collector then never walks those objects, and each page of them it would have
    written to is not copied (fork's copy on write). Measured on an audit's worker,
    20,000 events: page faults 0.39 -> 0.07 per event, each ~3.7 µs on this VM.
    """
    gc.freeze()
    if nice:
        with suppress(OSError):  # not allowed here: run at the caller's priority
            os.nice(nice)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, name="icn-orphan-watch", daemon=True).start()


class ProcessVerifier:
    """Inspection on ``workers`` cores: ``workers - 1`` processes and the calling process,
    which inspects a chunk itself whenever the oldest one is not back from the pool.

    For long files only: a pool takes ~50 ms to start and every line crosses a pipe
    twice. The caller takes a share rather than idle between chunks while a third
    process competes for two cores (its own work per event, rebuilding the workers'
    inspections ~4 µs and judging ~5 µs in an audit, is small beside a worker's 77 µs).
    Measured: audit of 60,000 events on 2 cores, 1.66x one worker against 1.64x with two
    worker processes: the same speed with one process fewer.
    """

    def __init__(
        self, workers: int, *, caller_verifies: bool = True, yield_to_caller: bool = False
    ) -> None:
        self._workers = max(2, workers)
        self._nice = WORKER_NICE if yield_to_caller else 0
        """The workers' niceness above the caller's: :data:`WORKER_NICE` for a caller whose
        own serial work per event is as large as theirs (an import)."""
        self._caller_verifies = caller_verifies
        """False where the caller has its own work per event (an import appends each
        chunk, ~50 µs/event; an audit checks its workers' facts) or should stay free for
        it: then every chunk goes to ``workers`` processes (what :func:`stream_verifier`
        gives)."""
        self._pool: ProcessPoolExecutor | None = None

    @property
    def workers(self) -> int:
        """Worker processes."""
        return self._workers

    def _started(self) -> ProcessPoolExecutor:
        if self._pool is None:
            processes = self._workers - 1 if self._caller_verifies else self._workers
            self._pool = ProcessPoolExecutor(
                processes, initializer=_leave_with_parent, initargs=(os.getpid(), self._nice)
            )
        return self._pool

    def inspect(self, lines: Sequence[bytes]) -> list[Inspection]:
        """One batch split across the processes."""
        return [ins for _, part in self.stream(lines, max(1, -(-len(lines) // self._workers)))
                for ins in part]  # fmt: skip

    def stream(self, lines: Iterable[bytes], chunk: int = CHUNK) -> Iterator[Chunked]:
        """Chunks in input order; the caller verifies one itself only while it would wait.

        A fixed share (every ``workers``-th chunk) made the caller the bottleneck: it
        also decodes the workers' answers again and judges every event, so with half
        the signatures on top it fell behind while the worker idled (audit 1.58-1.66x
        one worker on 2 cores). Instead the pool always has ``2 × processes`` chunks
        queued, and when the oldest is not back yet the caller inspects the next chunk
        itself rather than block: the split follows each side's real speed.
        """
        return self._pipeline(lines, chunk, _check_chunk, inspect_all, _rebuild_chunk)

    def map(
        self, fn: Callable[[list[bytes]], R], lines: Iterable[bytes], chunk: int = CHUNK
    ) -> Iterator[tuple[list[bytes], R]]:
        """``fn`` in the processes (and in the caller, as :meth:`stream` shares)."""
        return self._pipeline(lines, chunk, fn, fn, _as_is)

    def _pipeline(
        self,
        lines: Iterable[bytes],
        chunk: int,
        remote: Callable[[list[bytes]], R],
        here: Callable[[list[bytes]], T],
        back: Callable[[list[bytes], R], T],
    ) -> Iterator[tuple[list[bytes], T]]:
        """``remote`` on the pool (its answer turned by ``back``) or ``here`` in the caller."""
        pool = self._started()
        processes = self._workers - 1 if self._caller_verifies else self._workers
        depth = 2 * processes
        most = 4 * self._workers  # chunks held at once, in flight or done: bounded memory
        source = iter(lines)
        pending: deque[tuple[list[bytes], Future[R] | None, list[T]]] = deque()
        in_pool = 0
        drained = False

        def take() -> list[bytes]:
            nonlocal drained
            part = [] if drained else list(islice(source, chunk))
            drained = not part
            return part

        while True:
            while in_pool < depth and len(pending) < most and (part := take()):
                pending.append((part, pool.submit(remote, part), []))
                in_pool += 1
            if not pending:
                return
            head, future, mine = pending[0]
            waiting = future is not None and not future.done()
            if waiting and self._caller_verifies and len(pending) < most and (part := take()):
                pending.append((part, None, [here(part)]))
                continue
            pending.popleft()
            if future is None:
                yield head, mine[0]
            else:
                in_pool -= 1
                yield head, back(head, future.result())

    def start(self, fn: Callable[[list[T]], R], part: list[T]) -> Future[R]:
        """``fn(part)`` in a worker process (``fn`` and ``part`` pickled)."""
        return self._started().submit(fn, part)

    def close(self) -> None:
        """Stop the processes."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


# -- construction --------------------------------------------------------------------


def cores() -> int:
    """Cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def make_verifier(workers: int | None = None, *, processes: bool = False) -> Verifier:
    """A verifier on ``workers`` threads (default: every core), or processes if asked."""
    n = cores() if workers is None else workers
    if n <= 1:
        return InlineVerifier()
    return ProcessVerifier(n) if processes else ThreadVerifier(n)


PROCESSES_FROM = 5_000
"""Streams at least this long are verified in processes when more than one core is asked
for: a pool's ~50 ms start is then under 1 %, and the caller's own per-event work
(judging, appending: 5-90 µs, holding the GIL for a whole chunk) no longer stalls
verifier threads waiting to take the GIL back after each signature."""


def stream_verifier(workers: int, lines: int, *, caller_appends: bool = False) -> Verifier:
    """The verifier for a stream of ``lines`` lines on ``workers`` cores (import, audit).

    Long streams go to ``workers`` processes and the caller verifies none itself: an
    import judges and appends every chunk (~50 µs per event; measured, 6,000 events in
    batches of 100 on 2 cores: 10,000 events/s with two worker processes against 9,400
    with one plus the caller), and an audit, now that its workers hand back judged facts
    (:mod:`icn.application.audit_chunks`), only checks them (~3.5 µs per event): with a
    share of the chunks too the caller became the slower side (CPU per event, 20,000
    events: caller 63 µs, worker 57; 2 free cores allow 1.79x one worker, against 1.94x
    when the caller only judges).

    ``caller_appends``: the caller judges and appends every event (an import, a restore),
    so its workers run at a lower priority (:data:`WORKER_NICE`) and leave it a core.
    """
    if workers > 1 and lines >= PROCESSES_FROM:
        return ProcessVerifier(workers, caller_verifies=False, yield_to_caller=caller_appends)
    return make_verifier(workers)


_shared: Verifier | None = None
_shared_lock = threading.Lock()


def shared_verifier() -> Verifier:
    """The process's one thread verifier on every core, made on first use.

    What the server's paths (HTTP batches, stream intake) use unless given
    another: one pool per process, so two paths never oversubscribe the cores.
    Its threads are joined when the interpreter exits.
    """
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = make_verifier()
        return _shared


def inspect_chunks(
    lines: Iterable[bytes], workers: int = 1, chunk: int = CHUNK, *, processes: bool = False
) -> Iterator[Chunked]:
    """Yield (lines, inspections) chunk by chunk, in input order, on ``workers`` cores."""
    verifier = make_verifier(workers, processes=processes)
    try:
        yield from verifier.stream(lines, chunk)
    finally:
        verifier.close()
