"""The application's :class:`~icn.application.sequencing.Sequencer` on a JetStream publisher.

Writes are decided in store threads; the NATS connection lives on an event
loop (its :class:`~.link.NatsLink`'s own). :meth:`JetStreamSequencer.sequence`
hands the publish to that loop and waits for it, with the store transaction
open: it must fail fast (not connected, no ack within ``timeout``), since
every other writer of the store waits behind it. Whether a coop takes writes
at all is its :class:`~.write_gates.WriteGates`' answer.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Iterable, Sequence

import nats.errors

from icn.application.ports import Accepted
from icn.application.remembered_ids import RememberedIds
from icn.application.sequencing import StreamMoved, StreamPositions, StreamUnavailable
from icn.infrastructure.replication.link import NatsLink
from icn.infrastructure.replication.publisher import (
    MAX_ATOMIC_BATCH,
    JetStreamPublisher,
    Outgoing,
    PublishFailed,
    WrongLastSequence,
)
from icn.infrastructure.replication.streams import stream_is_clustered
from icn.infrastructure.replication.subjects import stream_name
from icn.infrastructure.replication.write_gates import WriteGates

TIMEOUT_S = 3.0
OPEN_TIMEOUT_S = 10.0
MAX_REMEMBERED = 100_000


class JetStreamSequencer:
    """Publishes a write's events right after a stream position, from any store thread."""

    def __init__(
        self,
        gates: WriteGates,
        link: NatsLink,
        *,
        timeout: float = TIMEOUT_S,
        open_timeout: float = OPEN_TIMEOUT_S,
    ) -> None:
        self.gates = gates
        self.link = link
        """Where the writes' connection lives: a loop of its own in a running node, so a
        write does not queue behind the HTTP requests the main loop is serving."""
        self.timeout = timeout
        self.open_timeout = open_timeout
        self.positions: StreamPositions = gates.positions
        """How far each coop's stream is applied here (the gates open on it)."""
        self.in_stream = RememberedIds(MAX_REMEMBERED)
        """Ids this sequencer put in the stream (the outbox relay need not publish them)."""
        self._clustered: dict[str, bool] = {}

    def prepare(self, coops: Iterable[str]) -> None:
        """Before a write's transaction: have these coops served and open, or refuse."""
        for coop in coops:
            if self.gates.is_open(coop):
                continue
            _not_on_a_loop()
            if not self.gates.wait_open(coop, self.open_timeout):
                raise StreamUnavailable(
                    f"the stream of {coop} is not ready on this node yet; try again shortly"
                )

    def sequence(
        self, coop: str, after: int, events: Sequence[Accepted], *, atomic: bool = True
    ) -> int:
        publisher = self.link.publisher
        if not self.gates.is_open(coop) or publisher is None:
            raise StreamUnavailable(
                f"replication of {coop} is starting or stopping on this node; try again shortly"
            )
        _not_on_a_loop()
        # Never a chain on a cluster: there the stream leader checks a chain's
        # Nats-Expected-Last-Msg-Id against what it has applied, not what it has proposed,
        # so two nodes' writes in flight can both pass, and then every replica fails to
        # apply one ("last msgid mismatch", nats-server 2.15: a critical write error after
        # which the stream takes no more writes). Batches and lone events expect a last
        # sequence, which the leader tracks as proposed.
        atomic = atomic or self._is_clustered(coop)
        items = [
            Outgoing(coop, a.event.id, a.event.type, a.event.author, a.wire, a.trusted_ms)
            for a in events
        ]
        future: concurrent.futures.Future[int] | None = None
        try:
            future = self.link.submit(self._publish(publisher, items, after, atomic))
            last = future.result(self.timeout)
        except WrongLastSequence as moved:
            stored = [a.event.id for a in events[: moved.stored]]
            self.in_stream.add(coop, stored)
            raise StreamMoved(coop, max(moved.last, after + 1), stored) from None
        except (PublishFailed, nats.errors.Error, concurrent.futures.TimeoutError) as exc:
            if future is not None:
                future.cancel()
            raise StreamUnavailable(
                f"the stream of {coop} cannot take writes now ({exc}); try again shortly"
            ) from None
        self.in_stream.add(coop, [a.event.id for a in events])
        self.gates.published(coop, last)
        return last

    def _is_clustered(self, coop: str) -> bool:
        """Whether ``coop``'s stream lives in a cluster: asked of JetStream once per coop."""
        known = self._clustered.get(coop)
        if known is not None:
            return known
        client = self.link.client
        if client is None:
            raise StreamUnavailable(f"replication of {coop} is not connected; try again shortly")

        async def ask() -> bool:
            return stream_is_clustered(await client.jetstream().stream_info(stream_name(coop)))

        try:
            known = self.link.submit(ask()).result(self.timeout)
        except (nats.errors.Error, concurrent.futures.TimeoutError) as exc:
            raise StreamUnavailable(
                f"the stream of {coop} cannot take writes now ({exc}); try again shortly"
            ) from None
        self._clustered[coop] = known
        return known

    @staticmethod
    async def _publish(
        publisher: JetStreamPublisher, items: list[Outgoing], after: int, atomic: bool
    ) -> int:
        """One atomic batch, or (a write of over 1,000 events) several in a row, each
        after the last: then a refusal can leave the first ones stored (the consumer
        brings them in; the write is judged again, and finds them there)."""
        for start in range(0, len(items), MAX_ATOMIC_BATCH):
            chunk = items[start : start + MAX_ATOMIC_BATCH]
            after = (await publisher.publish_after(chunk, after, atomic=atomic))[-1].seq
        return after


def _not_on_a_loop() -> None:
    """A sequenced write blocks its thread until another loop answers: on an event loop's
    thread it would stall that loop, or (its own) never end."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError("a sequenced write must not run on the event loop: it waits for NATS")
