"""What an operator chose for replication, and the timings the supervisor runs with."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from icn.infrastructure.replication.connection import nats_urls
from icn.infrastructure.replication.consumer import DEFAULT_MAX_ATTEMPTS
from icn.infrastructure.replication.nats_auth import NatsUser, credentials_from_env
from icn.infrastructure.settings import Settings

POLL_S = 0.05
"""How often the relay looks for appends it was not told about (CLI imports, checkpoints)."""
DISCOVER_S = 1.0
"""How often the supervisor looks for new coops and refreshes its numbers."""
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
PAUSE_MAX_S = 2.0
"""The longest pause between two tries of a step that waits for NATS."""
RETRY_PAUSE_S = (0.1, 2.0)
"""The consumer's pause after a failed batch: first, and longest (doubling in between)."""


@dataclass(frozen=True, kw_only=True)
class ReplicationConfig:
    """What an operator chose for replication (settings, ``--nats``, ``--serve``)."""

    nats: list[str] | None
    """NATS server URLs; None: run the node's own server."""
    serve: list[str] = field(default_factory=list)
    credentials: NatsUser | None = None
    """The user for a NATS given by URL (the node's own server: its node user)."""
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
            rejected_max=settings.rejected_max,
            dead_letter_after=settings.dead_letter_after,
            max_skew_s=settings.max_clock_skew_s,
        )
