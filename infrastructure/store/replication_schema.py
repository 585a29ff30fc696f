"""Tables replication keeps beside the log: parked events, each coop's outbox cursor, and
the stream messages a node refused (rejected) or could not handle at all (dead letters).

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

CONSUMER_META = "replication_consumer"
"""``node_meta`` key: the durable consumer name this node replicates with, when not its
DID's key part (a node restored from a backup gets one of its own: ``icn restore``)."""

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
    Column("trusted_ms", BigInt, nullable=True),
    Index("parked_events_by_id", "coop", "event_id", unique=True),
)
"""Received events that passed every stateless check (id, signature) but could
not be appended yet: their chain predecessor has not arrived (``gap``), or a
node rule refused them on state that other events may still change
(``code``). Retried, oldest first, whenever the coop accepts something new;
the oldest are dropped beyond the bound. ``trusted_ms``: the trusted time the
stream gave the event, which it is judged at on every retry (null: parked before
the column, judged at the node's clock)."""

rejected_messages = Table(
    "rejected_messages",
    metadata,
    Column("id", BigInt, primary_key=True, autoincrement=True),
    Column("coop", String(64), nullable=False),
    Column("stream_seq", BigInt, nullable=True),
    Column("code", String(64), nullable=False),
    Column("reason", Text, nullable=False),
    Column("wire", LargeBinary, nullable=False),
    Column("size", BigInt, nullable=False),
    Column("rejected_ms", BigInt, nullable=False),
    Index("rejected_messages_by_seq", "coop", "stream_seq", unique=True),
)
"""Stream messages intake judged and refused for good (``malformed``, ``bad-signature``,
``wrong-coop``, a rule no later event lifts): kept so an operator can see what was
published into the coop's stream and by whom, not only a counter.

``stream_seq`` is the message's position in ``ICN_<coop>`` (NULL for a parked event
refused on a later retry: the parked row does not know it); unique per coop, so a
redelivered batch does not record its refusals twice. ``wire`` holds at most the first
``REJECTED_WIRE_MAX`` bytes (``size`` is the whole message's), and the oldest rows go
beyond the per-coop bound: anyone who may publish must not be able to fill the disk."""

dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", BigInt, primary_key=True, autoincrement=True),
    Column("coop", String(64), nullable=False),
    Column("stream_seq", BigInt, nullable=False),
    Column("subject", Text, nullable=False),
    Column("attempts", BigInt, nullable=False),
    Column("error", Text, nullable=False),
    Column("wire", LargeBinary, nullable=False),
    Column("size", BigInt, nullable=False),
    Column("dead_ms", BigInt, nullable=False),
    Index("dead_letters_by_seq", "coop", "stream_seq", unique=True),
)
"""Stream messages whose handling raised on every one of the allowed attempts (a bug, a
message nothing could judge): set aside so the coop's stream goes on past them.

Unlike a rejection this is not a verdict: the node does not know what the message
would have done, so while a coop has dead letters its replica may differ from the
others and the node reports the coop ``degraded`` (``/v1/ready``, ``icn node status``)
until an operator looked at them and removed the rows. Bounded like
:data:`rejected_messages`."""
