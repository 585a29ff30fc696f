"""The contract read models' tables (icn.projections.contracts), on the log's metadata.

Column names match the projections' table shapes; the SQL side checks that at start.
"""

from __future__ import annotations

from sqlalchemy import Column, Index, Integer, String, Table, Text

from icn.infrastructure.store.schema import BigInt, metadata

contract_versions = Table(
    "contract_versions",
    metadata,
    Column("coop", String(64), primary_key=True),
    Column("name", String(64), primary_key=True),
    Column("version", BigInt, primary_key=True),
    Column("leaf", BigInt, nullable=False),
    Column("event_id", String(64), nullable=False),
    Column("proposal", String(64), nullable=False),
    Column("capabilities", Text, nullable=False),
    Column("fuel_limit", BigInt, nullable=False),
    Column("code", Text, nullable=False),
    Column("ts", BigInt, nullable=False),
    sqlite_with_rowid=False,
)
"""Every ``contract.Deployed``: each version's code as canonical JSON."""

contract_invocations = Table(
    "contract_invocations",
    metadata,
    Column("coop", String(64), primary_key=True),
    Column("invocation", String(64), primary_key=True),
    Column("leaf", BigInt, nullable=False),
    Column("contract", String(64), nullable=False),
    Column("rule", String(32), nullable=False),
    Column("caller", Text, nullable=False),
    Column("args", Text, nullable=False),
    Column("schedule", Integer, nullable=True),
    Column("ts", BigInt, nullable=False),
    Index("contract_invocations_by_contract", "coop", "contract", "leaf"),
    sqlite_with_rowid=False,
)
"""Every ``contract.Invoked``, paged per contract in log order."""

contract_executions = Table(
    "contract_executions",
    metadata,
    Column("coop", String(64), primary_key=True),
    Column("invocation", String(64), primary_key=True),
    Column("leaf", BigInt, nullable=False),
    Column("event_id", String(64), nullable=False),
    Column("effects", Text, nullable=False),
    Column("fuel", BigInt, nullable=False),
    Column("failed", String(64), nullable=True),
    Column("ts", BigInt, nullable=False),
    sqlite_with_rowid=False,
)
"""Every ``contract.Executed``: the entries that carried an invocation out, or ``failed``."""

contract_counts = Table(
    "contract_counts",
    metadata,
    Column("coop", String(64), primary_key=True),
    Column("name", String(64), primary_key=True),
    Column("invocations", BigInt, nullable=False),
    sqlite_with_rowid=False,
)
"""Invocations per contract (summed rows)."""

contract_proposals = Table(
    "contract_proposals",
    metadata,
    Column("coop", String(64), primary_key=True),
    Column("proposal", String(64), primary_key=True),
    Column("leaf", BigInt, nullable=False),
    Column("invocation", String(64), nullable=False),
    Column("ts", BigInt, nullable=False),
    Index("contract_proposals_by_invocation", "coop", "invocation", "leaf"),
    sqlite_with_rowid=False,
)
"""Every proposal a contract invocation opened (``governance.ProposalSubmitted`` naming it),
found per invocation in log order."""

CONTRACT_TABLES = (
    contract_versions, contract_invocations, contract_executions, contract_counts,
    contract_proposals,
)  # fmt: skip
"""Every table the contract projections write."""
