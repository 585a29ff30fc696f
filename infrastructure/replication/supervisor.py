"""Replication while the node runs: NATS, and per served coop an outbox relay and a consumer.

``icn node run`` builds one :class:`ReplicationSupervisor` (unless
``--no-replication``; see ``interfaces/bootstrap.py``) and the HTTP app runs
it in its lifespan, on the server's event loop:

- without ``--nats`` / ``ICN_NATS_URL`` it starts the node's own
  ``nats-server -js`` (store under ``<data-dir>/nats``) and stops it when the
  node stops;
- it connects (reconnecting for ever), and for every coop it serves (those
  the store holds, those named with ``--serve`` / ``ICN_SERVE``, and any that
  appears later) ensures the stream ``ICN_<coop>``, runs the outbox relay
  (woken by each local commit, and polling for appends by other processes)
  and a durable consumer named after the node's key, whose batches go
  through :class:`~icn.application.intake.Intake` in a worker thread and are
  acked only after it returned;
- it sequences the node's own writes: each goes into its coop's stream
  (compare-and-set on the stream's last sequence) inside the transaction
  that stores it, so every node judges every write in one order
  (:mod:`icn.application.sequencing`); a coop takes writes once its consumer
  position is known and its outbox has been published;
- it keeps a snapshot of each coop's numbers for ``/v1/ready``
  (:mod:`.numbers`); a stream message whose handling keeps failing is set
  aside as a dead letter (:mod:`.dead_letters`) so one poison message cannot
  stop a coop's stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import nats.errors
from nats.aio.client import Client

from icn.application.append import AppendEvents, CommittedEvent
from icn.application.intake import Intake, IntakeCounts
from icn.application.relay import OutboxRelay
from icn.application.sequencing import StreamPositions
from icn.infrastructure.replication.connection import close, connect, durable_for, nats_urls
from icn.infrastructure.replication.consumer import (
    DEFAULT_MAX_ATTEMPTS,
    Delivered,
    DurableCoopConsumer,
)
from icn.infrastructure.replication.dead_letters import TRANSIENT_ERRORS, record_dead_letter
from icn.infrastructure.replication.local_nats import local_nats_server, stop_orphaned_nats
from icn.infrastructure.replication.nats_auth import NatsUser, credentials_from_env
from icn.infrastructure.replication.nats_server import LocalNatsServer
from icn.infrastructure.replication.numbers import (
    CoopReplication,
    ReplicationReadiness,
    coop_numbers,
)
from icn.infrastructure.replication.outbox import JetStreamOutbox
from icn.infrastructure.replication.publisher import JetStreamPublisher
from icn.infrastructure.replication.sequencer import JetStreamSequencer, LoopThread
from icn.infrastructure.replication.streams import default_replicas, ensure_stream
from icn.infrastructure.replication.write_gates import WriteGates
from icn.infrastructure.settings import Settings
from icn.infrastructure.store.event_store import SqlEventStore
from icn.infrastructure.store.parked import SqlReplicationState

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


@dataclass(frozen=True, kw_only=True)
class ReplicationConfig:
    """What an operator chose for replication (settings, ``--nats``, ``--serve``)."""

    nats: list[str] | None
    """NATS server URLs; None: run the node's own server."""
    serve: list[str] = field(default_factory=list)
    credentials: NatsUser | None = None
    parked_max: int = 10_000
    rejected_max: int = 10_000
    dead_letter_after: int = DEFAULT_MAX_ATTEMPTS
    max_skew_s: int = 300
    ack_wait_s: float = ACK_WAIT_S
    retry_pause_s: tuple[float, float] = RETRY_PAUSE_S
    poll_s: float = POLL_S

    @classmethod
    def from_settings(
        cls, settings: Settings, *, nats: str | None = None, serve: Sequence[str] = ()
    ) -> ReplicationConfig:
        """The configuration ``icn node run`` replicates with."""
        return cls(
            nats=nats_urls(nats or settings.nats_url),
            serve=[*settings.serve, *serve],
            credentials=credentials_from_env(),
            parked_max=settings.parked_max,
            rejected_max=settings.rejected_max,
            dead_letter_after=settings.dead_letter_after,
            max_skew_s=settings.max_clock_skew_s,
        )


class ReplicationSupervisor:
    """NATS, plus a relay and a consumer per served coop, on the caller's event loop."""

    def __init__(
        self,
        store: SqlEventStore,
        append: AppendEvents,
        *,
        node_did: str,
        data_dir: Path,
        clock_ms: Callable[[], int],
        config: ReplicationConfig,
        on_appended: Callable[[str], None] | None = None,
    ) -> None:
        self.store = store
        self.append = append
        self.data_dir = data_dir
        self.clock_ms = clock_ms
        self.config = config
        self.credentials = config.credentials
        """The user for a NATS given by URL (the node's own server: its node user)."""
        self.urls = list(config.nats) if config.nats else None
        self.serve = list(dict.fromkeys(config.serve))
        self.durable = durable_for(node_did)
        self.state = SqlReplicationState(store)
        self.intake = Intake(
            append, self.state, clock_ms,
            max_parked=config.parked_max, max_rejected=config.rejected_max,
        )  # fmt: skip
        self.on_appended = on_appended
        """Called on the event loop after the consumer appended events of a coop."""
        self.local: LocalNatsServer | None = None
        self.nc: Client | None = None
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
        self.gates: WriteGates | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def _gates(self) -> WriteGates:
        """Built by :meth:`start` (on the loop), before any coop is served."""
        assert self.gates is not None, "start() builds the gates"
        return self.gates

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
        self.gates = WriteGates(self.positions, self.sequencer, loop)
        self.sequencer.opener = self._open_coop
        self.append.use_sequencer(self.sequencer)
        self._loop = loop
        # The relay and the consumer hop between the event loop and worker threads a few
        # times per batch; with the default 5 ms GIL switch interval each hop can wait that
        # long behind a busy request thread, which adds up on the propagation path.
        sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL_S))
        if self.urls is None:
            await asyncio.to_thread(stop_orphaned_nats, self.data_dir)
            self.local = local_nats_server(self.data_dir)
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
            self.append.remove_commit_listener(self._on_commit)
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
        self._main = None

    @contextlib.asynccontextmanager
    async def lifespan(self, _app: object) -> AsyncIterator[None]:
        """For Litestar: run while the app runs. A supervisor already running (started by
        whoever built it, e.g. on another loop) is served as it is, and left running."""
        started_here = self._main is None
        if started_here:
            await self.start()
        try:
            yield
        finally:
            if started_here:
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
        self.append.add_commit_listener(self._on_commit)
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
                coops = await asyncio.to_thread(self.store.coops)
                for coop in dict.fromkeys([*coops, *self.serve]):
                    if coop not in self._tasks:
                        self._serve(coop)
                await self._refresh_numbers()
            except Exception:  # keep replicating; the next round retries
                log.exception("replication supervisor round failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), DISCOVER_S)

    def _on_commit(self, events: list[CommittedEvent]) -> None:
        """In the committing thread: hand the relay what was just committed, and wake the
        relays of those coops (publish now rather than at the next poll)."""
        assert self._relay is not None
        self._relay.offer(events)
        loop = self._loop
        if loop is not None and not loop.is_closed():
            for coop in {e.coop for e in events}:
                loop.call_soon_threadsafe(self.wake, coop)

    def _already_in_stream(self, coop: str, event_id: str) -> bool:
        """For the relay: events received from the stream, or put there by a sequenced write."""
        if self.intake.came_from_stream(coop, event_id):
            return True
        return self.sequencer is not None and self.sequencer.in_stream.take(coop, event_id)

    async def _open_coop(self, coop: str) -> bool:
        """For the sequencer: serve ``coop`` if not yet, and wait until it takes writes."""
        await self._connected.wait()
        if coop not in self._tasks:
            self._serve(coop)
        await self._gates.opened(coop)
        return True

    def _serve(self, coop: str) -> None:
        log.info("replicating %s through %s", coop, self.url)
        self._gates.track(coop)
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
        pause = self.config.poll_s
        while not self._stop.is_set():
            waker.clear()
            try:
                result = await self._relay.pump(coop)
                pause = self.config.poll_s if result.caught_up else min(pause * 2, _PAUSE_MAX_S)
                if result.caught_up:
                    self._gates.part_ready(coop, "relay")
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
        c = self.config
        consumer = DurableCoopConsumer(
            self.nc, self.durable, coop, ack_wait=c.ack_wait_s, linger_s=LINGER_S,
            dead_letter=functools.partial(self._dead_letter, coop),
            max_attempts=c.dead_letter_after, transient=TRANSIENT_ERRORS,
            pause_min=c.retry_pause_s[0], pause_max=c.retry_pause_s[1],
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
            self.config.rejected_max, self.clock_ms(),
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
        self._gates.part_ready(coop, "consumer")
        return True

    async def _handle(self, coop: str, batch: list[Delivered]) -> None:
        messages = [d.data for d in batch]
        relay, parked = self._relay, self.intake.may_have_parked(coop)
        gates = self._gates
        own = not parked and await gates.committed_up_to(coop, batch[-1].stream_seq)
        if own or (
            relay is not None
            and self.intake.skip_own(coop, messages, functools.partial(relay.published_here, coop))
        ):
            # Our own events read back, sequenced or relayed: no thread hop, no query.
            counts = IntakeCounts(received=len(messages), duplicates=len(messages))
        else:
            skew_ms = self.config.max_skew_s * 1000
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
