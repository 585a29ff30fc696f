"""The node's writer in a process of its own, so that reads never wait on it for the GIL.

``icn node run`` serves HTTP in one process; judging, sequencing and committing
(:class:`~icn.application.append.AppendEvents` behind
:class:`~icn.application.group_commit.GroupCommit`) take ~250 µs of Python per
event, and in one process every read request waited for the GIL behind them.
Here they run in a child process, with everything that must share their process:
the replication supervisor (the sequencer writes inside the commit, the intake
appends), the checkpoint schedule and the coop duties.

The serving process keeps the data dir's lock and hands the child each request's
lines over a pipe, with the function that checks them (the HTTP route's own: the
stateless checks on the child's verifier threads, then the route's sender checks);
the child answers each request with that check's refusal, or its outcomes or its
refusal exactly as its own ``GroupCommit`` answered. Verifying there keeps the
serving process free of CPU-bound threads: with them, a read request waited for
the GIL at every hop between its thread and the event loop.
Every commit of the child (HTTP writes, intake, duties, checkpoints) is sent back,
before the answers of its requests, so the serving process's commit listeners
(standings, trust and governance books, rate-limit classes, live streams) hear of
it as they did in one process. Other calls of the serving process's
``node.append`` (e.g. publishing a trust epoch) run in the child too, and so do the
compute routes' module shares and fetches (the coops' buckets are on the child's NATS
link: ``interfaces.module_peers.WriterPeers``); the child also shares the modules kept
here that the buckets lack (``share_loop``).

Telemetry crosses with the requests (:mod:`icn.infrastructure.telemetry_relay`): each
request carries its trace context down, and the child's spans continue it (exported by
the child, to the same OTLP endpoint); the child's figures (verification, group commits,
refusals) come back as increments before each answer, into the instruments that
``GET /metrics`` of the serving process reads; its log lines have the same format.

A writer that dies while the node serves fails the requests waiting for it and
stops the server; ``icn node run`` then exits with :data:`WRITER_DIED`.
"""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import functools
import gc
import itertools
import logging
import multiprocessing
import pickle
import queue
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from icn.application.append import AppendEvents, CommitListener, CommittedEvent, Outcome
from icn.application.errors import BatchRefused, StoreBusy
from icn.application.group_commit import GroupCommit, Writer
from icn.application.ports import NO_TELEMETRY, Telemetry
from icn.domain.events.envelope import Inspection, stored_inspection
from icn.infrastructure.settings import Settings
from icn.infrastructure.telemetry import JsonLogFormatter, log_format
from icn.infrastructure.telemetry_relay import MetricDeltas, add_deltas, carry, flush_traces

if TYPE_CHECKING:
    from icn.infrastructure.replication.config import ReplicationConfig
    from icn.infrastructure.replication.numbers import ReplicationReadiness
    from icn.infrastructure.telemetry import NodeMetrics
    from icn.interfaces.bootstrap import ServedNode

log = logging.getLogger("icn.writer")

WRITER_DIED = 3
"""``icn node run``'s exit status when its writer process died under it."""
START_TIMEOUT_S = 300.0
"""How long the writer may take to open the store and start replication."""
STOP_TIMEOUT_S = 60.0
READINESS_S = 0.25
"""How often the writer reports replication's numbers (``/v1/ready``) to the server."""
CONNECT_WAIT_S = 5.0
"""How long the writer waits at start for NATS before it reports ready, so ``/v1/ready``
does not answer 503 for a connection that was moments away (it starts anyway)."""

Line = bytes | Inspection
"""A checked line travels as its wire bytes; one the checks refused, as its inspection."""
Check = Callable[[list[bytes], Telemetry, object], Sequence[Inspection]]
"""A request's checks, run in the writer: ``check(lines, telemetry, parent)`` (``parent``:
the trace its span continues), raising the request's refusal."""


class WriterDied(StoreBusy):
    """The writer process is gone: nothing more can be written (the node stops)."""


@dataclass(frozen=True)
class WriterSpec:
    """What the child needs to build its half of the node (pickled to it at start)."""

    settings: Settings
    nats: str | None
    serve: tuple[str, ...]
    replication: bool
    config: ReplicationConfig | None


def _line(ins: Inspection) -> Line:
    return ins.wire if ins.verdict is None and ins.event is not None else ins


def _inspection(line: Line) -> Inspection:
    return stored_inspection(line) if isinstance(line, bytes) else line


def _portable(exc: BaseException) -> BaseException:
    """``exc`` if it survives a pickle round trip, else a plain error with its message."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return StoreBusy(f"writer: {type(exc).__name__}: {exc}")
    return exc


# -- the serving process's side ---------------------------------------------------------------


class WriterProcess(Writer):
    """The serving process's handle on its writer process."""

    def __init__(self, spec: WriterSpec) -> None:
        self._spec = spec
        self._proc: Any = None
        self._launched: tuple[Any, Connection] | None = None
        """The process and its pipe from :meth:`launch` until :meth:`start` returns."""
        self._begun = False
        self._conn: Connection | None = None
        self._send_lock = threading.Lock()
        self._pending: dict[int, Future[Any]] = {}
        self._pending_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._listeners: list[CommitListener] = []
        self._readiness: ReplicationReadiness | None = None
        self._reader: threading.Thread | None = None
        self._stopping = False
        self.failed = False
        """True once the writer died while it was wanted."""
        self.on_death: Callable[[], None] | None = None
        """Called (in a background thread) when the writer died while it was wanted."""
        self.pid: int | None = None
        self.forked = False
        """Whether :meth:`launch` forked this process (else it spawned a fresh one)."""
        self.replication_url: str | None = None
        self.passphrase: str | None = None
        """The node key's, for the checkpoints the writer signs (None: it issues none;
        it cannot prompt). Set before :meth:`begin`; sent down the pipe, never in argv."""
        self.appender: RemoteAppend | None = None
        """The serving process's ``node.append`` (its telemetry is the writes')."""
        self.metrics: NodeMetrics | None = None
        """The serving process's instruments: the writer's figures are added to them."""

    @property
    def telemetry(self) -> Telemetry:
        return self.appender.telemetry if self.appender is not None else NO_TELEMETRY

    @property
    def checkpoints(self) -> bool:
        """Whether the writer issues checkpoints (it has the node key's passphrase)."""
        return self.passphrase is not None

    # lifecycle

    def launch(self) -> None:
        """Create the writer's process now; it waits for :meth:`begin` before it builds
        its half of the node. Called before this process opens the store or starts a
        thread, it is forked, and inherits the imports a fresh interpreter spends ~1.3 s
        of CPU on (a node start's largest cost); with threads running, forking could
        copy a lock some thread holds, so it is spawned instead."""
        if self._proc is not None or self._launched is not None or self._stopping:
            return
        forked = threading.active_count() == 1
        ctx = (
            multiprocessing.get_context("fork") if forked else multiprocessing.get_context("spawn")
        )
        ours, theirs = ctx.Pipe()
        for stream in (sys.stdout, sys.stderr):  # or the child would write it out again
            stream.flush()
        proc = ctx.Process(
            target=child_main,
            args=(theirs, self._spec, ours if forked else None),
            name="icn-writer",
            daemon=False,
        )
        proc.start()
        theirs.close()
        self._launched, self.pid, self.forked = (proc, ours), proc.pid, forked

    def begin(self) -> None:
        """Let the launched writer build its half of the node (the store, replication,
        the node key with :attr:`passphrase`) while this process goes on; :meth:`start`
        waits for it. The passphrase crosses the pipe, never the command line."""
        self.launch()
        if self._launched is None or self._begun:
            return
        self._begun = True
        self._launched[1].send(("go", self.passphrase))

    def start(self) -> None:
        """Start the writer process (unless :meth:`launch` did); return once it serves
        (raise what stopped it). Once stopped, a writer does not start again."""
        if self._proc is not None or self._stopping:
            return
        self.begin()
        assert self._launched is not None
        (proc, ours), self._launched = self._launched, None
        try:
            kind, rest = "", []
            while kind not in ("ready", "failed"):
                if not ours.poll(START_TIMEOUT_S):
                    raise StoreBusy("the writer process did not start in time")
                message = ours.recv()
                kind, *rest = message
                if kind not in ("ready", "failed"):  # replication's first numbers, the
                    self._heard(message)  # intake's first commits: all before "ready"
        except (EOFError, OSError, StoreBusy):
            proc.kill()
            proc.join()
            ours.close()
            raise StoreBusy(f"the writer process exited at start ({proc.exitcode})") from None
        if kind == "failed":
            proc.join(timeout=STOP_TIMEOUT_S)
            ours.close()
            raise rest[0]
        self._proc, self._conn = proc, ours
        self.pid, self.replication_url = proc.pid, rest[0]
        self._reader = threading.Thread(target=self._read, name="icn-writer-answers", daemon=True)
        self._reader.start()

    def stop(self) -> None:
        """Have the writer finish what is queued and stop (its replication too)."""
        proc, conn = self._launched or (self._proc, self._conn)
        self._launched = None  # launched, never waited for: stopped all the same
        if proc is None or conn is None:
            return
        self._stopping = True
        with contextlib.suppress(OSError), self._send_lock:
            conn.send(("stop",))
        proc.join(timeout=STOP_TIMEOUT_S)
        if proc.is_alive():
            log.error("the writer process did not stop in %g s: killing it", STOP_TIMEOUT_S)
            proc.kill()
            proc.join()
        if self._reader is not None:
            self._reader.join(timeout=5)
        if proc.exitcode != 0:
            self.failed = True
            log.error("the writer process exited with %s", proc.exitcode)
        conn.close()
        self._proc = self._conn = None

    # requests

    def enqueue(self, inspections: Sequence[Inspection]) -> Future[list[Outcome]]:
        answer: Future[list[Outcome]] = Future()
        trace = carry(self.telemetry.current())
        self._send(answer, "append", [_line(i) for i in inspections], trace)
        return answer

    def enqueue_unchecked(
        self, lines: list[bytes], check: Check, trace: object = None
    ) -> Future[list[Outcome]]:
        """:meth:`enqueue` for lines not checked yet: the writer process runs ``check`` (a
        picklable function: the stateless checks and the caller's own, raising the
        caller's refusal) on them first, so their cost is not this process's. ``trace``:
        the request's (``Telemetry.current()``), which the check and the commit continue."""
        answer: Future[list[Outcome]] = Future()
        self._send(answer, "check", lines, check, carry(trace))
        return answer

    @property
    def replicates(self) -> bool:
        """Whether the writer runs replication (and so holds the node's NATS link)."""
        return self._spec.replication

    def peers(self, op: str, *args: Any) -> Future[Any]:
        """``ModulePeers.<op>(*args)`` (``share``, ``fetch``: the coops' module buckets)
        on the writer's replication link; its answer."""
        answer: Future[Any] = Future()
        self._send(answer, "peers", op, args)
        return answer

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """``node.append.<method>(*args, **kwargs)`` in the writer; its answer (blocking)."""
        answer: Future[Any] = Future()
        self._send(answer, "call", method, args, kwargs)
        return answer.result()

    def _send(self, answer: Future[Any], kind: str, *payload: Any) -> None:
        conn = self._conn
        if conn is None or self.failed:
            answer.set_exception(WriterDied("the node's writer is not running"))
            return
        rid = next(self._ids)
        with self._pending_lock:
            self._pending[rid] = answer
        try:
            with self._send_lock:
                conn.send((kind, rid, *payload))
        except (OSError, ValueError):
            with self._pending_lock:
                self._pending.pop(rid, None)
            answer.set_exception(WriterDied("the node's writer is not running"))

    # what the writer tells

    def add_commit_listener(self, listener: CommitListener) -> None:
        """Have ``listener`` told (in a background thread) what every commit added."""
        self._listeners.append(listener)

    def remove_commit_listener(self, listener: CommitListener) -> None:
        """Stop telling ``listener``."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    def readiness(self) -> ReplicationReadiness | None:
        """The writer's last replication snapshot (None without replication)."""
        return self._readiness

    def _read(self) -> None:
        conn = self._conn
        assert conn is not None
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                break
            self._heard(message)
        self._gone()

    def _heard(self, message: tuple[Any, ...]) -> None:
        """Act on one message of the writer's: an answer, a commit, numbers or figures."""
        kind = message[0]
        if kind == "answer":
            _, rid, ok, value = message
            with self._pending_lock:
                answer = self._pending.pop(rid, None)
            if answer is not None and not answer.cancelled():
                if ok:
                    answer.set_result(value)
                else:
                    answer.set_exception(value)
        elif kind == "commit":
            events: list[CommittedEvent] = message[1]
            for listener in list(self._listeners):
                try:
                    listener(events)
                except Exception:
                    log.exception("a commit listener failed")
        elif kind == "readiness":
            self._readiness = message[1]
        elif kind == "metrics":
            deltas: MetricDeltas = message[1]
            if self.metrics is not None:
                add_deltas(self.metrics, deltas)

    def _gone(self) -> None:
        with self._pending_lock:
            waiting, self._pending = list(self._pending.values()), {}
        for answer in waiting:
            if not answer.done():
                answer.set_exception(WriterDied("the node's writer stopped"))
        if self._stopping:
            return
        self.failed = True
        log.error("the writer process (pid %s) died: stopping the node", self.pid)
        if self.on_death is not None:
            self.on_death()


class RemoteAppend(AppendEvents):
    """The serving process's ``node.append``: every append runs in the writer process, and
    its commit listeners hear of the writer's commits."""

    def __init__(self, writer: WriterProcess, store: Any, clock_ms: Callable[[], int]) -> None:
        super().__init__(store, clock_ms)
        self.writer = writer
        writer.appender = self

    def add_commit_listener(self, listener: CommitListener) -> None:
        self.writer.add_commit_listener(listener)

    def remove_commit_listener(self, listener: CommitListener) -> None:
        self.writer.remove_commit_listener(listener)

    def append(self, lines: Sequence[bytes], *, atomic: bool = False) -> list[Outcome]:
        result: list[Outcome] = self.writer.call("append", list(lines), atomic=atomic)
        return result

    def append_inspected(
        self,
        inspections: Sequence[Inspection],
        *,
        atomic: bool = False,
        from_stream: bool = False,
        trusted_ms: Sequence[int] | None = None,
    ) -> list[Outcome]:
        result: list[Outcome] = self.writer.call(
            "append_inspected",
            list(inspections),
            atomic=atomic,
            from_stream=from_stream,
            trusted_ms=trusted_ms,
        )
        return result

    def append_requests(
        self, requests: Sequence[Sequence[Inspection]]
    ) -> list[list[Outcome] | BatchRefused]:
        result: list[list[Outcome] | BatchRefused] = self.writer.call(
            "append_requests", [list(r) for r in requests]
        )
        return result


# -- the writer process's side ----------------------------------------------------------------


def child_main(conn: Connection, spec: WriterSpec, parents_end: Connection | None) -> None:
    """The writer process: wait for the serving process's go (with the node key's
    passphrase), build the writing half of the node, serve the pipe until told to stop (or
    the serving process is gone), stop cleanly. ``parents_end``: the pipe's other end,
    which a forked child inherited and closes, so that the serving process's exit reads
    here as the pipe's end."""
    if parents_end is not None:
        parents_end.close()
        gc.freeze()  # the server's start-up heap: never scanned here, nor copied for it
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's ^C is the server's to handle
    # A crash in native code (seen once: SIGSEGV at a PostgreSQL node's start under load)
    # leaves the writer's Python stacks in the node's log, where the server's report is.
    faulthandler.enable()
    _log_as_the_server_does()
    try:
        kind, *rest = conn.recv()
    except (EOFError, OSError):
        return  # the serving process is gone before it needed a writer
    if kind != "go":
        return  # stopped before it began (the serving half failed to open)
    passphrase: str | None = rest[0]
    from icn.interfaces.bootstrap import build_node

    try:
        served = build_node(
            spec.settings,
            nats=spec.nats,
            serve=spec.serve,
            replication=spec.replication,
            config=spec.config,
            lock=False,  # the serving process holds the data dir's lock for both
        )
    except BaseException as exc:
        conn.send(("failed", _portable(exc)))
        conn.close()
        return
    try:
        asyncio.run(_serve(conn, spec, served, passphrase))
    finally:
        served.node.close()
        conn.close()
        flush_traces()


class WriterLogFormatter(JsonLogFormatter):
    """The node's JSON log line (with the trace and span ids of the write it was logged
    in), marked ``"process": "writer"``."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)  # one JSON object
        return '{"process": "writer", ' + line[1:] if line.startswith("{") else line


def _log_as_the_server_does() -> None:
    """The serving process's log format (``ICN_LOG_FORMAT``): JSON lines with the current
    trace's ids and ``"process": "writer"``, or text lines marked ``[writer]``."""
    handler = logging.StreamHandler()
    if log_format() == "json":
        handler.setFormatter(WriterLogFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(levelname)s:     [writer] %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)  # not a fork's


async def _serve(
    conn: Connection, spec: WriterSpec, served: ServedNode, passphrase: str | None
) -> None:
    from icn.application.checkpoint_schedule import CheckpointSchedule
    from icn.application.checkpoints import CheckpointPolicy
    from icn.infrastructure import telemetry
    from icn.infrastructure.telemetry_relay import resumed, take_deltas
    from icn.interfaces.bootstrap import NODE_KEY
    from icn.interfaces.module_peers import ModulePeers, share_loop
    from icn.interfaces.node_duties import checkpoint_loop, duties_loop

    node, replication = served.node, served.replication
    loop = asyncio.get_running_loop()
    send_lock = threading.Lock()
    metrics = None
    if telemetry.enabled():  # as the serving process's app has it (the same environment)
        telemetry.setup_tracing()  # spans exported only when ICN_OTLP_ENDPOINT is set
        metrics = telemetry.node_metrics()
        node.append.telemetry = telemetry.node_telemetry(metrics)

    def send(message: tuple[Any, ...] | None) -> None:
        """Send ``message`` (None: only the figures), after what was measured so far: the
        server counts a write before it hears the answer the write led to."""
        with contextlib.suppress(OSError, ValueError), send_lock:
            deltas = take_deltas(metrics) if metrics is not None else None
            if deltas is not None:
                conn.send(("metrics", deltas))
            if message is not None:
                conn.send(message)

    def tell(events: list[CommittedEvent]) -> None:
        send(("commit", events))

    node.append.add_commit_listener(tell)
    group = GroupCommit(node.append)
    group.start()
    if replication is not None:
        await replication.start()
    tasks: list[asyncio.Task[None]] = []
    if passphrase is not None:
        settings = spec.settings
        policy = CheckpointPolicy(settings.checkpoint_every, settings.checkpoint_seconds)
        key = node.keystore.unlock(NODE_KEY, passphrase)
        schedule = CheckpointSchedule(node.store, node.checkpoints(key), policy, node.clock_ms)
        tasks.append(asyncio.create_task(checkpoint_loop(schedule)))
    tasks.append(
        asyncio.create_task(duties_loop(node, served.feed, spec.settings.duties_interval_s))
    )
    if replication is not None:  # the modules kept here that the coops' buckets lack
        tasks.append(asyncio.create_task(share_loop(node, replication)))
    peers = ModulePeers(replication) if replication is not None else None
    stop = asyncio.Event()

    def answer(rid: int, future: Future[Any]) -> None:
        exc = future.exception()
        if exc is None:
            send(("answer", rid, True, future.result()))
        else:
            send(("answer", rid, False, _portable(exc)))

    def call(rid: int, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        try:
            send(("answer", rid, True, getattr(node.append, method)(*args, **kwargs)))
        except Exception as exc:
            send(("answer", rid, False, _portable(exc)))

    work: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()

    def read() -> None:
        """Drain the pipe at once (the server's sends never wait for the checks), in order."""
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                break  # the serving process is gone: stop too
            if message[0] == "stop":
                break
            work.put(message)
        work.put(None)

    def handle() -> None:
        """Check and queue each request for the group commit, in the order they came."""
        while (message := work.get()) is not None:
            kind = message[0]
            if kind == "append":
                _, rid, lines, trace = message
                with resumed(trace):  # the group commit continues the request's trace
                    future = group.enqueue([_inspection(x) for x in lines])
                future.add_done_callback(functools.partial(answer, rid))
            elif kind == "check":
                _, rid, lines, check, trace = message
                with resumed(trace):
                    try:
                        checked = check(lines, group.telemetry, group.telemetry.current())
                    except Exception as exc:
                        send(("answer", rid, False, _portable(exc)))
                        continue
                    future = group.enqueue(checked)
                future.add_done_callback(functools.partial(answer, rid))
            elif kind == "peers":  # on the event loop, where the NATS link lives
                _, rid, op, args = message
                if peers is None:  # no replication here: not connected
                    send(("answer", rid, True, None if op == "fetch" else False))
                    continue
                asked = asyncio.run_coroutine_threadsafe(getattr(peers, op)(*args), loop)
                asked.add_done_callback(functools.partial(answer, rid))
            elif kind == "call":
                _, rid, method, args, kwargs = message
                threading.Thread(target=call, args=(rid, method, args, kwargs)).start()
        loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=read, name="icn-writer-requests", daemon=True).start()
    threading.Thread(target=handle, name="icn-writer-checks", daemon=True).start()
    if replication is not None:
        deadline = loop.time() + CONNECT_WAIT_S
        while not replication.link.connected and loop.time() < deadline:
            await asyncio.sleep(0.02)
        send(("readiness", replication.readiness()))
    send(("ready", replication.url if replication is not None else None))
    while not stop.is_set():
        if replication is not None:
            send(("readiness", replication.readiness()))
        send(None)  # the figures of replication and the duties, which answer nobody
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), READINESS_S)
    for task in tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    if replication is not None:
        await replication.stop()
    await asyncio.to_thread(group.stop)
