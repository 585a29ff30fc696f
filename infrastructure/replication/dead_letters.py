"""Stream messages whose handling kept failing: set aside with what failed, never retried
for ever (one poison message must not stop a coop's stream)."""

from __future__ import annotations

import sqlalchemy.exc

from icn.application.errors import StoreBusy
from icn.application.intake import REJECTED_WIRE_MAX
from icn.application.ports import StoreError
from icn.infrastructure.replication.consumer import Delivered
from icn.infrastructure.store.parked import DeadLetter, SqlReplicationState

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    StoreBusy, StoreError, sqlalchemy.exc.OperationalError,
)  # fmt: skip
"""Failures of the store (busy, locked, connection lost), not of the message: they never
make a dead letter (NATS errors never do either)."""


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
