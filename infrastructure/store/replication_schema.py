"""Tables replication keeps beside the log: parked events and each coop's outbox cursor.

Declared on the same :data:`~icn.infrastructure.store.schema.metadata` as the
log's own tables, so ``SqlEventStore.create_tables()`` creates them on
SQLite and PostgreSQL alike. Neither is on the write path of an event: the
outbox *is* the log (``log_entries``, written in the event's own
transaction), and these rows only say how far the relay got and which
received events wait for something else to arrive first.
"""

from __future__ import annotations

from sqlalchemy import Column, Index, LargeBinary, String, Table, Text

from icn.infrastructure.store.schema import BigInt, metadata

replication_coops = Table(
    "replication_coops",
    metadata,
    Column("coop", String(64), primary_key=True),
    Column("outbox_acked", BigInt, nullable=False, server_default="-1"),
    Column("parked_dropped", BigInt, nullable=False, server_default="0"),
    sqlite_with_rowid=False,
)
"""Per coop: the last leaf index whose JetStream ack arrived (``-1``: none yet),
and how many parked events the bound has evicted so far.

A table rather than ``node_meta`` keys: ``node_meta.key`` is ``VARCHAR(64)``
and a coop name alone may be 64 characters, so ``outbox:<coop>`` would not
fit on PostgreSQL."""

parked_events = Table(
    "parked_events",
    metadata,
    Column("id", BigInt, primary_key=True, autoincrement=True),
    Column("coop", String(64), nullable=False),
    Column("event_id", String(64), nullable=False),
    Column("author", Text, nullable=False),
    Column("seq", BigInt, nullable=False),
    Column("code", String(64), nullable=False),
    Column("wire", LargeBinary, nullable=False),
    Column("parked_ms", BigInt, nullable=False),
    Index("parked_events_by_id", "coop", "event_id", unique=True),
)
"""Received events that passed every stateless check (id, signature) but could
not be appended yet: their chain predecessor has not arrived (``gap``), or a
node rule refused them on state that other events may still change
(``code``). Retried, oldest first, whenever the coop accepts something new;
the oldest are dropped beyond the bound."""
