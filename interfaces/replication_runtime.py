"""Replication while the node runs: NATS, and per served coop an outbox relay and a consumer.

``icn node run`` builds one :class:`ReplicationRuntime` (unless
``--no-replication``) and the HTTP app runs it in its lifespan, on the
server's event loop:

- without ``--nats`` / ``ICN_NATS_URL`` it starts the node's own
  ``nats-server -js`` (store under ``<data-dir>/nats``) and stops it, by PID,
  when the node stops;
- it connects (reconnecting for ever), and for every coop it serves — those
  the store holds, those named with ``--serve`` / ``ICN_SERVE``, and any
  that appears later — ensures the stream ``ICN_<coop>``, runs the outbox
  relay (woken by each local commit, and polling for appends by other
  processes) and a durable consumer named after the node's key, whose
  batches go through :class:`~icn.application.intake.Intake` in a worker
  thread and are acked only after it returned;
- it sequences the node's own writes: each goes into its coop's stream
  (compare-and-set on the stream's last sequence) inside the transaction
  that stores it, so every node judges every write in one order
  (:mod:`icn.application.sequencing`); a coop takes writes once its
  consumer position is known and its outbox has been published;
- it keeps a snapshot of each coop's numbers (stream position, consumer
  lag, outbox backlog, parked, quarantined, rejected and dead-lettered
  counts) for ``/v1/ready``; a coop with dead letters is ``degraded``;
- a stream message whose handling keeps failing (``ICN_DEAD_LETTER_AFTER``
  deliveries) is recorded as a dead letter and passed over, so one poison
  message cannot stop a coop's stream (and the writes waiting on it).

``icn node sync`` and ``icn node status`` reuse the pieces without the app.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import msgspec
import nats.errors
import sqlalchemy.exc
from nats.aio.client import Client

from icn.application.errors import StoreBusy
from icn.application.intake import REJECTED_WIRE_MAX, Intake, IntakeCounts
from icn.application.ports import StoreError
from icn.application.relay import OutboxItem, OutboxRelay
from icn.application.sequencing import StreamPositions
from icn.domain.identity.did import did_key_part
from icn.infrastructure.replication.connection import close, connect
from icn.infrastructure.replication.consumer import (
    DEFAULT_MAX_ATTEMPTS,
    Delivered,
    DurableCoopConsumer,
)
from icn.infrastructure.replication.nats_auth import NatsUser, credentials_from_env, ensure_users
from icn.infrastructure.replication.nats_server import LocalNatsServer
from icn.infrastructure.replication.publisher import JetStreamPublisher, Outgoing, PublishFailed
from icn.infrastructure.replication.sequencer import JetStreamSequencer, LoopThread
from icn.infrastructure.replication.streams import default_replicas, ensure_stream
from icn.infrastructure.replication.subjects import stream_name
from icn.infrastructure.settings import Settings
from icn.infrastructure.store.parked import DeadLetter, SqlReplicationState
from icn.interfaces.bootstrap import Node

log = logging.getLogger("icn.replication")

POLL_S = 0.05
"""How often the relay looks for appends it was not told about (CLI imports, checkpoints)."""
DISCOVER_S = 1.0
"""How often the runtime looks for new coops and refreshes its numbers."""
STOP_TIMEOUT_S = 15.0
LINGER_S = 0.002
"""After the first message of a batch, how long the consumer collects more before handing over."""
SWITCH_INTERVAL_S = 0.001
"""The GIL switch interval while replicating (Python's default is 5 ms)."""
ACK_WAIT_S = 10.0
"""How long a delivered batch may stay unacknowledged before JetStream delivers it again.

Short, because that is how long messages stay stuck after a node is killed
between delivery and ack, or a NATS restart loses the acks: the consumer's
lag (and ``icn node sync``) waits that long for them. A batch that takes
longer to commit than this is simply delivered again after it committed,
and the second delivery is a no-op (known ids, recognised before any check).
"""
_PAUSE_MAX_S = 2.0
RETRY_PAUSE_S = (0.1, 2.0)
"""The consumer's pause after a failed batch: first, and longest (doubling in between)."""
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    StoreBusy, StoreError, sqlalchemy.exc.OperationalError,
)  # fmt: skip
"""Failures of the store (busy, locked, connection lost), not of the message: they never
make a dead letter (NATS errors never do either)."""
OWN_COMMIT_WAIT_S = 1.0
"""How long the consumer waits, for a batch made only of this node's own sequenced writes,
for their commit (it normally follows the stream's ack within milliseconds) before it
takes the batch the long way."""


# -- where NATS is -------------------------------------------------------------------


def local_nats_dir(data_dir: Path) -> Path:
    """Where a node's own nats-server keeps its store, log and ports file."""
    return data_dir / "nats"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_our_nats(pid: int, directory: Path) -> bool:
    """True when ``pid`` is a nats-server whose store is ``directory`` (Linux: /proc)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return bool(argv) and argv[0].endswith(b"nats-server") and str(directory).encode() in argv


def _ports_files(directory: Path) -> list[tuple[int, Path]]:
    found = []
    for path in directory.glob("nats-server_*.ports"):
        try:
            found.append((int(path.stem.rsplit("_", 1)[1]), path))
        except ValueError:
            continue
    return found


def running_local_nats(data_dir: Path) -> str | None:
    """The client URL of a live nats-server running on this data dir's store, if any."""
    directory = local_nats_dir(data_dir)
    for pid, path in _ports_files(directory):
        if _pid_alive(pid) and _is_our_nats(pid, directory):
            try:
                return str(json.loads(path.read_text())["nats"][0])
            except (OSError, ValueError, KeyError, IndexError):
                continue
    return None


def stop_orphaned_nats(data_dir: Path, timeout: float = 10.0) -> None:
    """Stop a nats-server left running on this store by a node that was killed (-9).

    The server runs in a session of its own (so a Ctrl-C meant for the node
    does not reach it first), which also means it outlives a node killed
    without a chance to stop it. Its ports file names its PID; it is stopped
    by that PID only after /proc confirms it is a nats-server on this store.
    """
    directory = local_nats_dir(data_dir)
    for pid, path in _ports_files(directory):
        if not _pid_alive(pid) or not _is_our_nats(pid, directory):
            with contextlib.suppress(OSError):
                path.unlink()
            continue
        log.warning("stopping nats-server %d left running on %s", pid, directory)
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _pid_alive(pid) and _is_our_nats(pid, directory):
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                break
            time.sleep(0.05)
        with contextlib.suppress(OSError):
            path.unlink()


def local_nats_server(data_dir: Path) -> LocalNatsServer:
    """The node's own nats-server (not started), requiring the data dir's NATS users."""
    return LocalNatsServer(local_nats_dir(data_dir), users=ensure_users(data_dir))


def reload_local_nats(data_dir: Path) -> bool:
    """Have the node's running nats-server (if any) apply the data dir's current users.

    Rewrites its config (0600) and sends SIGHUP to the PID its ports file names, once
    /proc confirms that is a nats-server on this store. False: none is running.
    """
    directory = local_nats_dir(data_dir)
    for pid, _path in _ports_files(directory):
        if _pid_alive(pid) and _is_our_nats(pid, directory):
            local_nats_server(data_dir).write_config()
            os.kill(pid, signal.SIGHUP)
            return True
    return False


def credentials_for(data_dir: Path, external: bool) -> NatsUser | None:
    """Who to log in as: ``ICN_NATS_USER`` for a NATS given by URL, else the node user of
    the data dir's own server."""
    return credentials_from_env() if external else ensure_users(data_dir).node


def nats_urls(setting: str | None) -> list[str] | None:
    """``ICN_NATS_URL`` / ``--nats`` as a list of server URLs (None: run our own)."""
    if not setting:
        return None
    urls = [u.strip() for u in setting.replace(" ", ",").split(",") if u.strip()]
    return urls or None


def durable_for(node_did: str) -> str:
    """A node's consumer name: its DID's key part (the stream already names the coop)."""
    return did_key_part(node_did)


# -- consuming with low latency -------------------------------------------------------------


class _EagerSubscription:
    """A pull subscription whose ``fetch`` returns soon after the first message arrives.

    nats-py's ``fetch(n, timeout)`` on an idle consumer sends a lingering pull
    request and then waits until ``n`` messages arrived or ``timeout`` passed:
    under light load every event waits up to the whole fetch timeout. Here a
    lingering request for *one* message waits for activity; the rest of the
    batch is whatever arrives within ``LINGER_S`` after it (a busy stream fills
    the batch at once).
    """

    def __init__(self, sub: Any) -> None:
        self._sub = sub

    async def fetch(self, batch: int, timeout: float) -> list[Any]:
        msgs: list[Any] = await self._sub.fetch(1, timeout=timeout)
        if batch > 1:
            # A failure here (NATS going away) must not drop the message in hand: hand it
            # over now; the next fetch meets the failure and the consumer starts over.
            with contextlib.suppress(TimeoutError, nats.errors.Error):
                msgs += await self._sub.fetch(batch - 1, timeout=LINGER_S)
        return msgs

    async def unsubscribe(self) -> None:
        await self._sub.unsubscribe()


class _EagerJetStream:
    """The consumer's JetStream context, handing out eager subscriptions."""

    def __init__(self, js: Any) -> None:
        self._js = js

    def __getattr__(self, name: str) -> Any:
        return getattr(self._js, name)

    async def pull_subscribe_bind(self, *args: Any, **kwargs: Any) -> _EagerSubscription:
        return _EagerSubscription(await self._js.pull_subscribe_bind(*args, **kwargs))


class EagerCoopConsumer(DurableCoopConsumer):
    """:class:`DurableCoopConsumer` delivering a batch as soon as messages are there."""

    def __init__(self, nc: Client, node: str, coop: str, **kwargs: Any) -> None:
        super().__init__(nc, node, coop, **kwargs)
        self._js = _EagerJetStream(self._js)  # type: ignore[assignment]


# -- publishing the outbox ------------------------------------------------------------


class JetStreamOutbox:
    """The relay's :class:`~icn.application.relay.OutboxPublisher` on a JetStream publisher."""

    def __init__(self, publisher: JetStreamPublisher) -> None:
        self._publisher = publisher

    async def publish(self, items: Sequence[OutboxItem]) -> int:
        outgoing = [
            Outgoing(i.coop, i.event_id, i.event_type, i.author, i.wire, i.trusted_ms)
            for i in items
        ]
        try:
            await self._publisher.publish_many(outgoing)
        except PublishFailed as exc:
            log.warning("outbox: %s", str(exc).split(". ")[0])
            acked = 0
            for result in exc.results:
                if result is None:
                    break
                acked += 1
            return acked
        return len(items)


# -- what each coop looks like ----------------------------------------------------------


class CoopReplication(msgspec.Struct):
    """One served coop's replication numbers."""

    stream_seq: int | None = None
    """The stream's last sequence number (None: unknown, NATS unreachable)."""
    consumer_lag: int | None = None
    """Messages this node's consumer has not yet committed and acked."""
    outbox_backlog: int | None = None
    """Events in this node's log not yet acknowledged by the stream (size − 1 − cursor)."""
    parked: int = 0
    quarantined: int = 0
    parked_dropped: int = 0
    rejected: int = 0
    """Stream messages refused for good and recorded (``rejected_messages``, up to its bound)."""
    dead_letters: int = 0
    """Stream messages set aside because handling them kept failing (``dead_letters``)."""
    status: str = "ok"
    """``degraded`` while the coop has dead letters: this replica may lack what they held."""
    intake: dict[str, Any] | None = None
    """What the consumer did since the node started (received, accepted, parked …)."""


class ReplicationReadiness(msgspec.Struct):
    """Replication as ``/v1/ready`` shows it."""

    nats: str
    connected: bool
    local_server: bool
    coops: dict[str, CoopReplication]
    status: str = "ok"
    """``degraded`` when any coop is (it has dead letters)."""


async def coop_numbers(
    nc: Client | None, state: SqlReplicationState, coop: str, durable: str
) -> CoopReplication:
    """Read one coop's numbers from the store and, if connected, from JetStream."""

    def local() -> tuple[int, int, int, int, int, int]:
        size, cursor = state.tree_size(coop), state.outbox_cursor(coop)
        return (
            max(0, size - 1 - cursor),
            state.parked_count(coop),
            state.quarantined_count(coop),
            state.parked_dropped(coop),
            state.rejected_count(coop),
            state.dead_letter_count(coop),
        )

    backlog, parked, quarantined, dropped, rejected, dead = await asyncio.to_thread(local)
    numbers = CoopReplication(
        outbox_backlog=backlog, parked=parked, quarantined=quarantined, parked_dropped=dropped,
        rejected=rejected, dead_letters=dead, status="degraded" if dead else "ok",
    )  # fmt: skip
    if nc is not None and nc.is_connected:
        js = nc.jetstream(timeout=2)
        with contextlib.suppress(nats.errors.Error, TimeoutError):
            info = await js.stream_info(stream_name(coop))
            numbers.stream_seq = int(info.state.last_seq)
        with contextlib.suppress(nats.errors.Error, TimeoutError):
            cinfo = await js.consumer_info(stream_name(coop), durable)
            numbers.consumer_lag = (cinfo.num_pending or 0) + (cinfo.num_ack_pending or 0)
    return numbers


# -- the runtime ------------------------------------------------------------------------


class ReplicationRuntime:
    """NATS, plus a relay and a consumer per served coop, on the caller's event loop."""

    def __init__(
        self,
        node: Node,
        *,
        nats: Sequence[str] | None,
        serve: Sequence[str] = (),
        credentials: NatsUser | None = None,
        parked_max: int = 10_000,
        poll_s: float = POLL_S,
        rejected_max: int = 10_000,
        dead_letter_after: int = DEFAULT_MAX_ATTEMPTS,
        ack_wait_s: float = ACK_WAIT_S,
        retry_pause_s: tuple[float, float] = RETRY_PAUSE_S,
    ) -> None:
        self.node = node
        self.credentials = credentials
        """The user for a NATS given by URL (the node's own server: its node user)."""
        self.urls = list(nats) if nats else None
        self.serve = list(dict.fromkeys(serve))
        self.poll_s = poll_s
        self.durable = durable_for(node.node_did)
        self.state = SqlReplicationState(node.store)
        self.intake = Intake(
            node.append, self.state, node.clock_ms,
            max_parked=parked_max, max_rejected=rejected_max,
        )  # fmt: skip
        self.rejected_max = rejected_max
        self.dead_letter_after = dead_letter_after
        self.ack_wait_s = ack_wait_s
        self.retry_pause_s = retry_pause_s
        self.local: LocalNatsServer | None = None
        self.nc: Client | None = None
        self.on_appended: Callable[[str], None] | None = None
        """Called on the event loop after the consumer appended events of a coop."""
        self.totals: dict[str, IntakeCounts] = {}
        self._numbers: dict[str, CoopReplication] = {}
        self._wakers: dict[str, asyncio.Event] = {}
        self._tasks: dict[str, list[asyncio.Task[None]]] = {}
        self._main: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._relay: OutboxRelay | None = None
        self.positions = StreamPositions()
        self.sequencer: JetStreamSequencer | None = None
        self._publishing: LoopThread | None = None
        self._publishing_nc: Client | None = None
        self._connected = asyncio.Event()
        self._opened: dict[str, asyncio.Event] = {}
        self._ready_parts: dict[str, set[str]] = {}
        self._advanced: dict[str, asyncio.Event] = {}
        """Set (on the loop) whenever a coop's stream position advances."""

    @property
    def url(self) -> str:
        """Where replication goes (for status and logs)."""
        if self.urls:
            return ",".join(self.urls)
        return self.local.url if self.local and self.local.port else "(local nats-server)"

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Start our own nats-server if no URL was given; connect and serve in the background."""
        self._stop = asyncio.Event()
        self._connected = asyncio.Event()
        # From now on the node's writes go through the coops' streams (refused while a
        # coop's stream cannot take them), never judged on this node's state alone.
        loop = asyncio.get_running_loop()
        self.sequencer = JetStreamSequencer(loop, self.positions)

        def wake(coop: str, _position: int) -> None:
            event = self._advanced.get(coop)
            if event is not None:
                loop.call_soon_threadsafe(event.set)

        self.positions.listeners.append(wake)
        self.sequencer.opener = self._open_coop
        self.node.append.use_sequencer(self.sequencer)
        # The relay and the consumer hop between the event loop and worker threads a few
        # times per batch; with the default 5 ms GIL switch interval each hop can wait that
        # long behind a busy request thread, which adds up on the propagation path.
        sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL_S))
        if self.urls is None:
            await asyncio.to_thread(stop_orphaned_nats, self.node.data_dir)
            self.local = local_nats_server(self.node.data_dir)
            self.local.spawn()  # on the loop's thread: its death signal lasts as long as we do
            await asyncio.to_thread(self.local.wait_ready)
            log.info("nats-server %d on %s", self.local.pid, self.local.url)
        self._main = asyncio.create_task(self._run(), name="icn-replication")

    async def stop(self) -> None:
        """Finish the batches in hand, close the connection, stop our nats-server."""
        self._stop.set()
        if self.sequencer is not None:
            self.sequencer.close()  # writes from now on: "try again" (another node takes them)
        for waker in self._wakers.values():
            waker.set()
        # A relay may be waiting out NATS (up to the publisher's deadline): cancel it. That is
        # safe at any point, as its cursor only ever moves behind acks. Consumers finish the
        # batch in hand (commit, ack) and stop at their next fetch.
        for relay, _ in self._tasks.values():
            relay.cancel()
        if self.nc is None and self._main is not None:
            self._main.cancel()  # still trying to reach NATS: nothing in hand to finish
        tasks = [t for ts in self._tasks.values() for t in ts]
        if self._main is not None:
            tasks.append(self._main)
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=STOP_TIMEOUT_S)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late, timeout=2)
        if self._relay is not None:
            self.node.append.remove_commit_listener(self._relay.offer)
            for coop in self._tasks:
                try:
                    await self._relay.flush(coop)
                except Exception as exc:  # the next start publishes a little more again
                    log.warning("outbox cursor of %s not stored: %s", coop, exc)
        if self._publishing is not None:
            if self._publishing_nc is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._publishing.run(close(self._publishing_nc)), 5)
                self._publishing_nc = None
            self._publishing.stop()
            self._publishing = None
        if self.nc is not None:
            await close(self.nc)
            self.nc = None
        if self.local is not None:
            await asyncio.to_thread(self.local.stop)
            self.local = None
        self.state.close()

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Any) -> AsyncIterator[None]:
        """For Litestar: run while the app runs; wake relays on the app's commit notices."""
        feed = getattr(app.state, "feed", None)
        if feed is not None:
            notify = feed.notify

            def notify_and_wake(coop: str) -> None:
                notify(coop)
                self.wake(coop)

            feed.notify = notify_and_wake
            self.on_appended = notify_and_wake
        await self.start()
        try:
            yield
        finally:
            await self.stop()

    def wake(self, coop: str) -> None:
        """The coop's log grew here: publish now rather than at the next poll (loop thread)."""
        waker = self._wakers.get(coop)
        if waker is not None:
            waker.set()

    # -- what /v1/ready shows ---------------------------------------------------------------

    def readiness(self) -> ReplicationReadiness:
        """The last snapshot (refreshed every second), and whether NATS is connected now."""
        coops = dict(self._numbers)
        return ReplicationReadiness(
            nats=self.url,
            connected=self.nc is not None and self.nc.is_connected,
            local_server=self.urls is None,
            coops=coops,
            status="degraded" if any(c.dead_letters for c in coops.values()) else "ok",
        )

    # -- the work ------------------------------------------------------------------------------

    async def _run(self) -> None:
        urls = self.urls or [self.local.url if self.local else ""]
        login = self.local.node_user if self.local else self.credentials
        self.nc = await connect(urls, name=f"icn-node-{self.durable[:16]}", credentials=login)
        publisher = JetStreamPublisher(self.nc)
        self._relay = OutboxRelay(
            self.state,
            self.state,
            JetStreamOutbox(publisher),
            already_in_stream=self._already_in_stream,
        )
        self.node.append.add_commit_listener(self._relay.offer)
        if self.sequencer is not None:
            # Writes publish on a connection and loop of their own: on the main loop they
            # waited behind the HTTP requests it serves (single-post p50 +12-20 ms at 500/s).
            self._publishing = LoopThread("icn-sequencer")
            self._publishing_nc = await self._publishing.run(
                connect(urls, name=f"icn-writes-{self.durable[:16]}", credentials=login)
            )
            self.sequencer.publish_loop = self._publishing.loop
            self.sequencer.publisher = JetStreamPublisher(self._publishing_nc)
        self._connected.set()
        while not self._stop.is_set():
            try:
                coops = await asyncio.to_thread(self.node.store.coops)
                for coop in dict.fromkeys([*coops, *self.serve]):
                    if coop not in self._tasks:
                        self._serve(coop)
                await self._refresh_numbers()
            except Exception:  # keep replicating; the next round retries
                log.exception("replication supervisor round failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), DISCOVER_S)

    def _already_in_stream(self, coop: str, event_id: str) -> bool:
        """For the relay: events received from the stream, or put there by a sequenced write."""
        if self.intake.came_from_stream(coop, event_id):
            return True
        return self.sequencer is not None and self.sequencer.in_stream.take(coop, event_id)

    async def _committed_up_to(self, coop: str, last: int) -> bool:
        """True when the store holds the coop's stream up to ``last``: then a batch ending
        there needs no work. A batch of this node's own sequenced writes may arrive
        before their commit: wait for it, briefly."""
        if self.positions.at(coop) >= last:
            return True
        if self.sequencer is None or self.sequencer.published_to(coop) < last:
            return False
        advanced = self._advanced.setdefault(coop, asyncio.Event())
        deadline = time.monotonic() + OWN_COMMIT_WAIT_S
        while self.positions.at(coop) < last:
            left = deadline - time.monotonic()
            if left <= 0:
                return False  # the write failed after its publish: the intake commits it
            advanced.clear()
            if self.positions.at(coop) >= last:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(advanced.wait(), left)
        return True

    async def _open_coop(self, coop: str) -> bool:
        """For the sequencer: serve ``coop`` if not yet, and wait until it takes writes."""
        await self._connected.wait()
        if coop not in self._tasks:
            self._serve(coop)
        await self._opened[coop].wait()
        return True

    def _part_ready(self, coop: str, part: str) -> None:
        """The consumer's position is known, or the relay published the backlog once:
        with both, the coop's writes can be judged at a position that says it all."""
        parts = self._ready_parts[coop]
        parts.add(part)
        if parts >= {"consumer", "relay"} and self.sequencer is not None:
            self.sequencer.open(coop)
            self._opened[coop].set()

    def _serve(self, coop: str) -> None:
        log.info("replicating %s through %s", coop, self.url)
        self._opened.setdefault(coop, asyncio.Event())
        self._ready_parts[coop] = set()
        self._wakers[coop] = asyncio.Event()
        self.totals.setdefault(coop, IntakeCounts())
        self._tasks[coop] = [
            asyncio.create_task(self._relay_loop(coop), name=f"icn-relay-{coop}"),
            asyncio.create_task(self._consume(coop), name=f"icn-consume-{coop}"),
        ]

    async def _ensure_stream(self, coop: str) -> bool:
        assert self.nc is not None
        nc = self.nc
        return await self._until_done(
            f"stream for {coop}",
            lambda: ensure_stream(nc.jetstream(), coop, default_replicas(nc)),
        )

    async def _until_done(self, what: str, step: Callable[[], Awaitable[object]]) -> bool:
        """Run ``step`` until it succeeds (True) or the runtime stops (False), pausing longer
        after each failure (NATS away or electing a leader)."""
        pause = 0.1
        while not self._stop.is_set():
            try:
                await step()
                return True
            except (nats.errors.Error, TimeoutError) as exc:
                log.warning("%s not ready (%s); retrying", what, exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), pause)
                pause = min(pause * 2, _PAUSE_MAX_S)
        return False

    async def _relay_loop(self, coop: str) -> None:
        assert self._relay is not None
        if not await self._ensure_stream(coop):
            return
        waker = self._wakers[coop]
        pause = self.poll_s
        while not self._stop.is_set():
            waker.clear()
            try:
                result = await self._relay.pump(coop)
                pause = self.poll_s if result.caught_up else min(pause * 2, _PAUSE_MAX_S)
                if result.caught_up:
                    self._part_ready(coop, "relay")
            except Exception as exc:  # NATS refused, store busy …: publish again later
                log.warning("outbox relay of %s: %s; retrying", coop, exc)
                pause = min(max(pause, 0.1) * 2, _PAUSE_MAX_S)
            try:
                await asyncio.wait_for(waker.wait(), pause)
            except TimeoutError:  # idle: store the cursor the pumps moved
                with contextlib.suppress(Exception):
                    await self._relay.flush(coop)

    async def _consume(self, coop: str) -> None:
        assert self.nc is not None
        if not await self._ensure_stream(coop):
            return
        consumer = EagerCoopConsumer(
            self.nc, self.durable, coop, ack_wait=self.ack_wait_s,
            dead_letter=functools.partial(self._dead_letter, coop),
            max_attempts=self.dead_letter_after, transient=TRANSIENT_ERRORS,
            pause_min=self.retry_pause_s[0], pause_max=self.retry_pause_s[1],
        )  # fmt: skip
        if not await self._known_position(consumer, coop):
            return
        await consumer.run(functools.partial(self._handle, coop), self._stop)

    async def _dead_letter(
        self, coop: str, delivered: Delivered, attempts: int, exc: BaseException
    ) -> None:
        """Set a message aside that kept failing; the stream position moves past it, so the
        coop's writes (judged at that position) go on."""
        await asyncio.to_thread(
            record_dead_letter, self.state, coop, delivered, attempts, exc,
            self.rejected_max, self.node.clock_ms(),
        )  # fmt: skip
        self.positions.advance(coop, delivered.stream_seq)

    async def _known_position(self, consumer: DurableCoopConsumer, coop: str) -> bool:
        """Bind the consumer and learn how far the store holds the stream: everything up to
        the consumer's ack floor was committed before it was acked."""
        assert self.nc is not None
        js = self.nc.jetstream()

        async def learn() -> None:
            await consumer.ensure()
            info = await js.consumer_info(consumer.stream, consumer.durable)
            self.positions.advance(coop, int(info.ack_floor.stream_seq or 0))

        if not await self._until_done(f"consumer for {coop}", learn):
            return False
        self._part_ready(coop, "consumer")
        return True

    async def _handle(self, coop: str, batch: list[Delivered]) -> None:
        messages = [d.data for d in batch]
        relay, parked = self._relay, self.intake.may_have_parked(coop)
        if (not parked and await self._committed_up_to(coop, batch[-1].stream_seq)) or (
            relay is not None
            and self.intake.skip_own(coop, messages, functools.partial(relay.published_here, coop))
        ):
            # Our own events read back, sequenced or relayed: no thread hop, no query.
            counts = IntakeCounts(received=len(messages), duplicates=len(messages))
        else:
            skew_ms = self.node.settings.max_clock_skew_s * 1000
            times = [d.trusted_ms(skew_ms) for d in batch]
            receive = functools.partial(
                self.intake.receive, stream_seq=lambda i: batch[i].stream_seq
            )
            counts = await asyncio.to_thread(receive, coop, messages, times)
        self.totals[coop].add(counts)
        self.positions.advance(coop, batch[-1].stream_seq)  # committed, in stream order
        if counts.accepted and self.on_appended is not None:
            self.on_appended(coop)
        if counts.rejected or counts.forks or counts.evicted:
            log.warning(
                "%s: stream seq %d..%d: %d rejected %s, %d forks quarantined, %d parked evicted",
                coop, batch[0].stream_seq, batch[-1].stream_seq, counts.rejected,
                dict(counts.rejected_codes), counts.forks, counts.evicted,
            )  # fmt: skip

    async def _refresh_numbers(self) -> None:
        for coop in list(self._tasks):
            numbers = await coop_numbers(self.nc, self.state, coop, self.durable)
            numbers.intake = self.totals[coop].as_dict()
            self._numbers[coop] = numbers


def replication_for(
    node: Node,
    settings: Settings,
    *,
    nats: str | None = None,
    serve: Sequence[str] = (),
    disabled: bool = False,
) -> ReplicationRuntime | None:
    """The runtime ``icn node run`` should start (None with ``--no-replication``)."""
    if disabled or not settings.replication:
        return None
    return ReplicationRuntime(
        node,
        nats=nats_urls(nats or settings.nats_url),
        serve=[*settings.serve, *serve],
        credentials=credentials_from_env(),
        parked_max=settings.parked_max,
        rejected_max=settings.rejected_max,
        dead_letter_after=settings.dead_letter_after,
    )


def record_dead_letter(
    state: SqlReplicationState,
    coop: str,
    delivered: Delivered,
    attempts: int,
    exc: BaseException,
    bound: int,
    now_ms: int,
) -> None:
    """Store a stream message that kept failing, with what failed (bytes cut to the bound)."""
    data = delivered.data
    error = f"{type(exc).__name__}: {exc}"[:500]
    letter = DeadLetter(
        delivered.stream_seq, delivered.subject[:512], attempts, error,
        bytes(data[:REJECTED_WIRE_MAX]), len(data),
    )  # fmt: skip
    state.dead_letter(coop, letter, bound, now_ms)
