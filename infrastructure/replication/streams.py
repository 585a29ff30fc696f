"""The per-coop JetStream stream: created once, bound afterwards, corrected when it drifts.

Every node serving a coop calls :func:`ensure_stream` at start; whichever
comes first creates ``ICN_<coop>``, the others bind to it. If the stream
exists with different settings (say it was made R1 before the cluster grew
to three servers), the settings this module owns are put back (replicas only
upwards); anything else an operator set (placement, description, ...) is kept.

The stream is a transport and a catch-up buffer, not the record: each node's
store is. It keeps everything by default (no age, count or size limit) so a
node that was down for a long time can still catch up from its position.
"""

from __future__ import annotations

from typing import Any

from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig, StreamInfo
from nats.js.errors import BadRequestError, NotFoundError

from icn.infrastructure.replication.subjects import coop_filter, stream_name

DUPLICATE_WINDOW_S = 300.0
"""How long JetStream remembers a ``Nats-Msg-Id`` (= event id) to drop a re-publish.

Five minutes. The outbox re-publishes every event it has no ack for when the
node restarts, so the window must span the longest ordinary gap between a
publish whose ack was lost and its re-publish: the publisher's own retry
deadline (30 s), plus a crash and a supervisor restart of the node, or a
NATS restart (seconds each), with a wide margin. JetStream rebuilds the
window from the stored messages when it restarts, so it holds across NATS
restarts too. A longer window costs server memory (one entry per message
published within it), which is why it is not hours.

Publishing again after the window is still harmless: the event is stored a
second time in the stream, and every receiver treats an event id it already
has as a no-op. The window saves work; it is not what keeps the log correct.
"""

_STREAM_EXISTS_DIFFERENTLY = 10058  # "stream name already in use with a different configuration"


def stream_config(coop: str, replicas: int = 1) -> StreamConfig:
    """The settings ``ICN_<coop>`` must have: file storage, keep everything, R``replicas``."""
    return StreamConfig(
        name=stream_name(coop),
        subjects=[coop_filter(coop)],
        storage=StorageType.FILE,
        retention=RetentionPolicy.LIMITS,
        discard=DiscardPolicy.OLD,
        max_age=0,
        max_msgs=-1,
        max_bytes=-1,
        num_replicas=replicas,
        duplicate_window=DUPLICATE_WINDOW_S,
        allow_atomic=True,  # a sequenced write is stored whole or not at all (publisher.py)
    )


_OWNED_FIELDS = (
    "subjects", "storage", "retention", "discard", "max_age", "max_msgs", "max_bytes",
    "num_replicas", "duplicate_window", "allow_atomic",
)  # fmt: skip


def _owned(config: StreamConfig) -> dict[str, Any]:
    return {name: getattr(config, name) for name in _OWNED_FIELDS}


async def ensure_stream(js: JetStreamContext, coop: str, replicas: int = 1) -> StreamInfo:
    """Create ``ICN_<coop>``, or bind to it and update it if its settings differ."""
    name = stream_name(coop)
    try:
        info = await js.stream_info(name)
    except NotFoundError:
        try:
            return await js.add_stream(stream_config(coop, replicas))
        except BadRequestError as exc:
            if exc.err_code != _STREAM_EXISTS_DIFFERENTLY:
                raise
            # Another node created it a moment ago, with other settings.
            info = await js.stream_info(name)
    # Replicas only ever grow here. A node starting while one of three servers is down
    # counts two (default_replicas: 1) and would otherwise shrink an R3 stream to R1 for
    # good; shrinking a cluster is an operator's decision (nats stream edit).
    wanted = stream_config(coop, max(replicas, int(info.config.num_replicas or 1)))
    if _owned(info.config) == _owned(wanted):
        return info
    return await js.update_stream(info.config.evolve(**_owned(wanted)))


def cluster_size(nc: Client) -> int:
    """How many servers the connected NATS has: 1 standalone, else the cluster's members.

    The client's server pool: the URLs it was given plus those the cluster
    advertises (``connect_urls`` in its INFO, one per reachable member when
    members listen on one address, as ours do). A member that is down or
    ``no_advertise`` makes this an undercount, a member listening on several
    addresses an overcount; a deployment that knows better passes ``replicas``
    to :func:`ensure_stream` itself.
    """
    return max(1, len({server.netloc for server in nc.servers}))


def stream_is_clustered(info: StreamInfo) -> bool:
    """True when the stream lives in a JetStream cluster (its info names the cluster): its
    leader then checks expectations against what it has applied, not what it has proposed,
    in some cases (:mod:`.sequencer`)."""
    return info.cluster is not None and info.cluster.name is not None


def default_replicas(nc: Client) -> int:
    """3 when the cluster has at least three servers (R3 survives losing one), else 1."""
    return 3 if cluster_size(nc) >= 3 else 1
