"""The holds read model's tables (icn.projections.ledger_holds), on the log's metadata.

Column names match the projection's table shapes; the SQL side checks that at start.
"""

from __future__ import annotations

from sqlalchemy import Column, Index, String, Table, Text

from icn.infrastructure.store.schema import BigInt, metadata

ledger_holds = Table(
    "ledger_holds",
    metadata,
    Column("coop", String(64), primary_key=True),
    Column("task", String(64), primary_key=True),
    Column("did", Text, nullable=False),
    Column("currency", String(16), nullable=False),
    Column("amount", BigInt, nullable=False),
    Column("leaf", BigInt, nullable=False),
    Column("ts", BigInt, nullable=False),
    Index("ledger_holds_by_account", "coop", "did", "currency"),
    sqlite_with_rowid=False,
)
"""Every ``compute.TaskSubmitted``: what the task holds on its submitter's account."""

ledger_releases = Table(
    "ledger_releases",
    metadata,
    Column("coop", String(64), primary_key=True),
    Column("task", String(64), primary_key=True),
    Column("reason", String(16), nullable=False),
    Column("leaf", BigInt, nullable=False),
    Column("ts", BigInt, nullable=False),
    sqlite_with_rowid=False,
)
"""Every release of a task's hold: ``settled`` or ``expired``."""

HOLDS_TABLES = (ledger_holds, ledger_releases)
