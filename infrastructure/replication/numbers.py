"""What a served coop's replication looks like: the numbers ``/v1/ready`` and ``icn node
status`` show, read from the store and, when connected, from JetStream."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import msgspec
import nats.errors
from nats.aio.client import Client

from icn.infrastructure.replication.subjects import stream_name
from icn.infrastructure.store.parked import SqlReplicationState


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
