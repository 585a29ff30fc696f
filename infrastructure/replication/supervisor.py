"""Replication while the node runs: NATS, and per served coop an outbox relay and a consumer.

``icn node run`` builds one :class:`ReplicationSupervisor` with every part it
works with (``interfaces/bootstrap.build_node``, unless ``--no-replication``),
and the HTTP app runs it in its lifespan, on the server's event loop:

- without ``--nats`` / ``ICN_NATS_URL`` it starts the node's own
  ``nats-server -js`` (store under ``<data-dir>/nats``) and stops it when the
  node stops;
- it connects its two links (reconnecting for ever): its own, on this loop,
  for the relays and consumers, and the writes' link, on a loop of its own,
  for the sequencer;
- it serves every coop the store holds, those named with ``--serve`` /
  ``ICN_SERVE``, those a write asks for, and any that appears later: one
  :class:`~.coop_worker.CoopWorker` each (stream, relay, durable consumer);
- the node's own writes are sequenced in the coops' streams
  (:mod:`icn.application.sequencing`, :mod:`.sequencer`) once a coop's
  gates open (:mod:`.write_gates`);
- it keeps a snapshot of each coop's numbers for ``/v1/ready`` (:mod:`.numbers`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from icn.application.append import AppendEvents, CommittedEvent
from icn.application.intake import Intake
from icn.application.relay import OutboxRelay
from icn.infrastructure.replication.config import (
    DISCOVER_S,
    STOP_TIMEOUT_S,
    SWITCH_INTERVAL_S,
    ReplicationConfig,
)
from icn.infrastructure.replication.connection import durable_for
from icn.infrastructure.replication.coop_worker import CoopWorker, Shared
from icn.infrastructure.replication.link import NatsLink
from icn.infrastructure.replication.local_nats import local_nats_server, stop_orphaned_nats
from icn.infrastructure.replication.nats_server import LocalNatsServer
from icn.infrastructure.replication.numbers import (
    CoopReplication,
    ReplicationReadiness,
    coop_numbers,
)
from icn.infrastructure.replication.outbox import JetStreamOutbox
from icn.infrastructure.replication.sequencer import JetStreamSequencer
from icn.infrastructure.store.event_store import SqlEventStore
from icn.infrastructure.store.parked import SqlReplicationState

log = logging.getLogger("icn.replication")


class ReplicationSupervisor:
    """NATS, plus a relay and a consumer per served coop, on the caller's event loop."""

    def __init__(
        self,
        store: SqlEventStore,
        append: AppendEvents,
        sequencer: JetStreamSequencer,
        *,
        node_did: str,
        data_dir: Path,
        clock_ms: Callable[[], int],
        config: ReplicationConfig,
        on_appended: Callable[[str], None] | None = None,
    ) -> None:
        self.store = store
        self.data_dir = data_dir
        self.clock_ms = clock_ms
        self.config = config
        self.urls = list(config.nats) if config.nats else None
        self.serve = list(dict.fromkeys(config.serve))
        self.durable = durable_for(node_did, store.get_meta)
        self.sequencer = sequencer
        self.gates = sequencer.gates
        self.link = NatsLink()
        """The relays' and consumers' connection, on the caller's loop."""
        self.state = SqlReplicationState(store)
        self.intake = Intake(
            append, self.state, clock_ms, max_rejected=config.rejected_max
        )  # fmt: skip
        self.relay = OutboxRelay(
            self.state, self.state, JetStreamOutbox(self.link),
            already_in_stream=self._already_in_stream,
        )  # fmt: skip
        self.on_appended = on_appended
        """Called on the event loop after the consumer appended events of a coop."""
        self.local: LocalNatsServer | None = None
        self.workers: dict[str, CoopWorker] = {}
        self._numbers: dict[str, CoopReplication] = {}
        self._main: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connected = False

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
        self._loop = asyncio.get_running_loop()
        self.gates.resume()
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
        """Finish the batches in hand, close the connections, stop our nats-server."""
        self._stop.set()
        self._connected = False
        self.gates.close()  # writes from now on: "try again" (another node takes them)
        for worker in self.workers.values():
            worker.wake()
            # A relay may be waiting out NATS (up to the publisher's deadline): cancel it.
            # That is safe at any point, as its cursor only ever moves behind acks.
            # Consumers finish the batch in hand (commit, ack) and stop at their next fetch.
            worker.relaying.cancel()
        if self.link.client is None and self._main is not None:
            self._main.cancel()  # still trying to reach NATS: nothing in hand to finish
        tasks = [t for w in self.workers.values() for t in (w.relaying, w.consuming)]
        if self._main is not None:
            tasks.append(self._main)
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=STOP_TIMEOUT_S)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late, timeout=2)
        for coop in self.workers:
            try:
                await self.relay.flush(coop)
            except Exception as exc:  # the next start publishes a little more again
                log.warning("outbox cursor of %s not stored: %s", coop, exc)
        self.workers.clear()
        await self.sequencer.link.close()
        await self.link.close()
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

    # -- listeners (registered by build_node) ----------------------------------------------

    def on_commit(self, events: list[CommittedEvent]) -> None:
        """In the committing thread: hand the relay what was just committed, and wake the
        relays of those coops (publish now rather than at the next poll). Not running:
        nothing (the relay reads the store once it runs)."""
        if not self._connected:
            return
        self.relay.offer(events)
        for coop in {e.coop for e in events}:
            self._on_loop(self._wake, coop)

    def want(self, coop: str) -> None:
        """In a writing thread: a write asks for ``coop``; serve it now if connected (else
        once connected: the gates remember it)."""
        self._on_loop(self._serve_if_connected, coop)

    def _on_loop(self, call: Callable[[str], None], coop: str) -> None:
        """From another thread: ``call(coop)`` on the supervisor's loop, if it still runs."""
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # closed meanwhile: nothing to tell
                loop.call_soon_threadsafe(call, coop)

    # -- what /v1/ready shows ---------------------------------------------------------------

    def readiness(self) -> ReplicationReadiness:
        """The last snapshot (refreshed every second), and whether NATS is connected now."""
        coops = dict(self._numbers)
        return ReplicationReadiness(
            nats=self.url,
            connected=self.link.connected,
            local_server=self.urls is None,
            coops=coops,
            status="degraded" if any(c.dead_letters for c in coops.values()) else "ok",
        )

    async def _refresh_numbers(self) -> None:
        for coop, worker in list(self.workers.items()):
            numbers = await coop_numbers(self.link.client, self.state, coop, self.durable)
            numbers.intake = worker.totals.as_dict()
            self._numbers[coop] = numbers

    # -- the work ------------------------------------------------------------------------------

    async def _run(self) -> None:
        urls = self.urls or [self.local.url if self.local else ""]
        login = self.local.node_user if self.local else self.config.credentials
        tag = self.durable[:16]
        await self.link.connect(urls, name=f"icn-node-{tag}", credentials=login)
        await self.sequencer.link.connect(urls, name=f"icn-writes-{tag}", credentials=login)
        self._connected = True
        while not self._stop.is_set():
            try:
                coops = await asyncio.to_thread(self.store.coops)
                for coop in dict.fromkeys([*coops, *self.serve, *self.gates.wanted()]):
                    self._serve_if_connected(coop)
                await self._refresh_numbers()
            except Exception:  # keep replicating; the next round retries
                log.exception("replication supervisor round failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), DISCOVER_S)

    def _already_in_stream(self, coop: str, event_id: str) -> bool:
        """For the relay: events received from the stream, or put there by a sequenced write."""
        return self.intake.came_from_stream(coop, event_id) or self.sequencer.in_stream.take(
            coop, event_id
        )

    def _wake(self, coop: str) -> None:
        worker = self.workers.get(coop)
        if worker is not None:
            worker.wake()

    def _serve_if_connected(self, coop: str) -> None:
        client = self.link.client
        if not self._connected or client is None or coop in self.workers:
            return
        log.info("replicating %s through %s", coop, self.url)
        shared = Shared(
            nc=client, durable=self.durable, relay=self.relay, intake=self.intake,
            gates=self.gates, state=self.state, config=self.config, clock_ms=self.clock_ms,
            stop=self._stop, on_appended=self.on_appended,
        )  # fmt: skip
        self.workers[coop] = CoopWorker(coop, shared)
