"""Read models: tables the projections fill from the log, and their tracking positions.

Declared on the same :data:`~icn.infrastructure.store.schema.metadata` as the
log's own tables, so ``SqlEventStore.create_tables()`` creates them on
SQLite and PostgreSQL alike. Nothing here is on the write path: the
projections (``icn.projections``) fill these tables after the events commit,
each with its own position per coop in ``projection_positions``, written in
the same transaction as the rows it accounts for. ``icn replay`` rebuilds
them from scratch and compares.

Column names match the projections' table shapes
(:mod:`icn.projections.ledger`); the SQL side checks that at start.
"""

from __future__ import annotations

from sqlalchemy import Column, Index, String, Table, Text

from icn.infrastructure.store.governance_schema import GOVERNANCE_TABLES
from icn.infrastructure.store.schema import BigInt, metadata

projection_positions = Table(
    "projection_positions",
    metadata,
    Column("projection", String(64), primary_key=True),
    Column("coop", String(64), primary_key=True),
    Column("position", BigInt, nullable=False),
    sqlite_with_rowid=False,
)
"""The last leaf index of ``coop``'s log that ``projection`` applied (-1: none yet).
Moved only by a conditional update (``WHERE position = <the old one>``) in the
transaction that writes the projection's rows, so an entry's effect lands once."""

ledger_balances = Table(
    "ledger_balances",
    metadata,
    Column("coop", String(64), primary_key=True),
    Column("did", Text, primary_key=True),
    Column("currency", String(16), primary_key=True),
    Column("balance", BigInt, nullable=False),
    Column("cleared_volume", BigInt, nullable=False),
    Column("debited_volume", BigInt, nullable=False),
    Column("entries", BigInt, nullable=False),
    sqlite_with_rowid=False,
)
"""Per (coop, account, currency): balance, total credited (cleared volume), total
debited, and how many entries moved it. Credit used and available are computed
when read, from the limit at that moment."""

ledger_history = Table(
    "ledger_history",
    metadata,
    Column("coop", String(64), primary_key=True),
    Column("did", Text, primary_key=True),
    Column("cursor", BigInt, primary_key=True, autoincrement=False),
    Column("event_id", String(64), nullable=False),
    Column("counterparty", Text, nullable=False),
    Column("amount", BigInt, nullable=False),
    Column("currency", String(16), nullable=False),
    Column("memo", Text, nullable=True),
    Column("ts", BigInt, nullable=False),
    Index("ledger_history_by_counterparty", "coop", "did", "counterparty", "cursor"),
    Index("ledger_history_by_currency", "coop", "did", "currency", "cursor"),
    Index("ledger_history_by_time", "coop", "did", "ts", "cursor"),
    sqlite_with_rowid=False,
)
"""One row per (account, transaction): both parties of a transaction see it.
``cursor`` = leaf index × 64 + transaction index (an entry holds at most 64),
so one integer orders a member's rows in log order and pages them. The
primary key clusters each member's rows together; the indexes serve the
counterparty, currency and time filters, each in cursor order."""

ledger_totals = Table(
    "ledger_totals",
    metadata,
    Column("coop", String(64), primary_key=True),
    Column("currency", String(16), primary_key=True),
    Column("volume", BigInt, nullable=False),
    Column("transactions", BigInt, nullable=False),
    Column("entries", BigInt, nullable=False),
    sqlite_with_rowid=False,
)
"""Per (coop, currency): units moved, transactions and entries. The sum of the
balances (always 0) is computed from ``ledger_balances`` when read, as a check."""

trust_attestations = Table(
    "trust_attestations",
    metadata,
    Column("coop", String(64), primary_key=True),
    Column("leaf", BigInt, primary_key=True, autoincrement=False),
    Column("event_id", String(64), nullable=False),
    Column("context", String(16), nullable=False),
    Column("truster", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("score_ppm", BigInt, nullable=False),
    Column("ts", BigInt, nullable=False),
    Column("expires_ts", BigInt, nullable=True),
    Column("note", Text, nullable=True),
    Index("trust_attestations_by_pair", "coop", "context", "truster", "subject", "leaf"),
    Index("trust_attestations_by_subject", "coop", "subject", "leaf"),
    Index("trust_attestations_by_id", "coop", "event_id"),
    sqlite_with_rowid=False,
)
"""Every ``trust.AttestationRecorded`` (icn.projections.trust). The pair index finds the
latest statement of a (context, truster, subject) and, by its prefix, a truster's; the
subject index what a member received."""

trust_revocations = Table(
    "trust_revocations",
    metadata,
    Column("coop", String(64), primary_key=True),
    Column("attestation", String(64), primary_key=True),
    Column("leaf", BigInt, nullable=False),
    Column("event_id", String(64), nullable=False),
    sqlite_with_rowid=False,
)
"""Every ``trust.AttestationRevoked``, under the attestation it withdrew."""

trust_epochs = Table(
    "trust_epochs",
    metadata,
    Column("coop", String(64), primary_key=True),
    Column("context", String(16), primary_key=True),
    Column("epoch", BigInt, primary_key=True, autoincrement=False),
    Column("leaf", BigInt, nullable=False),
    Column("event_id", String(64), nullable=False),
    Column("as_of", BigInt, nullable=False),
    Column("count", BigInt, nullable=False),
    Column("digest", String(64), nullable=False),
    Column("ts", BigInt, nullable=False),
    sqlite_with_rowid=False,
)
"""Every ``trust.StandingPublished``: each context's epochs in order."""

READ_MODEL_TABLES = (
    ledger_balances,
    ledger_history,
    ledger_totals,
    trust_attestations,
    trust_revocations,
    trust_epochs,
    *GOVERNANCE_TABLES,
)
"""Every table a projection writes (``projection_positions`` aside)."""
