"""The governance read models' tables (icn.projections.governance), on the log's metadata.

Kept apart from :mod:`~icn.infrastructure.store.read_schema` (which lists them
in ``READ_MODEL_TABLES``) so the capability's tables read as one page. Column
names match the projections' table shapes; the SQL side checks that at start.
"""

from __future__ import annotations

from sqlalchemy import Column, Index, String, Table, Text

from icn.infrastructure.store.schema import BigInt, metadata

governance_proposals = Table(
    "governance_proposals",
    metadata,
    Column("coop", String(64), primary_key=True),
    Column("proposal", String(64), primary_key=True),
    Column("leaf", BigInt, nullable=False),
    Column("domain", String(32), nullable=False),
    Column("author", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("action_kind", String(32), nullable=False),
    Column("opens_at", BigInt, nullable=True),
    Column("closes_at", BigInt, nullable=False),
    Column("appeal", String(64), nullable=True),
    Column("ts", BigInt, nullable=False),
    Index("governance_proposals_by_leaf", "coop", "leaf"),
    Index("governance_proposals_by_domain", "coop", "domain", "leaf"),
    sqlite_with_rowid=False,
)
"""Every ``governance.ProposalSubmitted`` (icn.projections.governance), paged in log order."""

governance_proposal_ends = Table(
    "governance_proposal_ends",
    metadata,
    Column("coop", String(64), primary_key=True),
    Column("proposal", String(64), primary_key=True),
    Column("leaf", BigInt, nullable=False),
    Column("event_id", String(64), nullable=False),
    Column("state", String(16), nullable=False),
    Column("reason", Text, nullable=True),
    Column("ts", BigInt, nullable=False),
    *[
        Column(name, BigInt, nullable=True)
        for name in (
            "yes",
            "no",
            "abstain",
            "block",
            "yes_weight",
            "no_weight",
            "abstain_weight",
            "block_weight",
            "eligible",
            "counted",
        )
    ],
    Column("ballots_digest", String(64), nullable=True),
    Index("governance_ends_by_state", "coop", "state", "proposal"),
    sqlite_with_rowid=False,
)
"""How each proposal ended: closed (``state`` its outcome, with the close's tally),
``withdrawn`` or ``vetoed``. A proposal without a row is open."""

governance_executions = Table(
    "governance_executions",
    metadata,
    Column("coop", String(64), primary_key=True),
    Column("proposal", String(64), primary_key=True),
    Column("leaf", BigInt, nullable=False),
    Column("event_id", String(64), nullable=False),
    Column("effects", Text, nullable=False),
    Column("failed", String(64), nullable=True),
    Column("ts", BigInt, nullable=False),
    sqlite_with_rowid=False,
)
"""Every ``governance.ProposalExecuted``: effect ids (space-separated) or the refusal met."""

governance_votes = Table(
    "governance_votes",
    metadata,
    Column("coop", String(64), primary_key=True),
    Column("leaf", BigInt, primary_key=True, autoincrement=False),
    Column("proposal", String(64), nullable=False),
    Column("event_id", String(64), nullable=False),
    Column("voter", Text, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("choice", String(16), nullable=True),
    Column("credits", BigInt, nullable=True),
    Column("commitment", String(64), nullable=True),
    Column("reason", Text, nullable=True),
    Column("ts", BigInt, nullable=False),
    Index("governance_votes_by_proposal", "coop", "proposal", "leaf"),
    Index("governance_votes_by_voter", "coop", "voter", "leaf"),
    sqlite_with_rowid=False,
)
"""Every vote event (``cast``, ``committed``, ``revealed``): a member's votes in log order."""

governance_vote_counts = Table(
    "governance_vote_counts",
    metadata,
    Column("coop", String(64), primary_key=True),
    Column("proposal", String(64), primary_key=True),
    Column("casts", BigInt, nullable=False),
    Column("commitments", BigInt, nullable=False),
    Column("reveals", BigInt, nullable=False),
    sqlite_with_rowid=False,
)
"""Vote events per proposal, summed (a recast counts again: events, not voters)."""

governance_delegations = Table(
    "governance_delegations",
    metadata,
    Column("coop", String(64), primary_key=True),
    Column("leaf", BigInt, primary_key=True, autoincrement=False),
    Column("event_id", String(64), nullable=False),
    Column("domain", String(32), nullable=False),
    Column("member", Text, nullable=False),
    Column("delegate", Text, nullable=True),
    Column("ts", BigInt, nullable=False),
    Index("governance_delegations_by_member", "coop", "member", "leaf"),
    Index("governance_delegations_by_delegate", "coop", "delegate", "leaf"),
    sqlite_with_rowid=False,
)
"""Every ``governance.VoteDelegated`` (``delegate`` null: revoked): the latest row of a
(domain, member) is their live delegation."""

governance_charter = Table(
    "governance_charter",
    metadata,
    Column("coop", String(64), primary_key=True),
    Column("section", String(64), primary_key=True),
    Column("leaf", BigInt, primary_key=True, autoincrement=False),
    Column("event_id", String(64), nullable=False),
    Column("proposal", String(64), nullable=False),
    Column("text", Text, nullable=False),
    Column("rationale", Text, nullable=False),
    Column("ts", BigInt, nullable=False),
    sqlite_with_rowid=False,
)
"""Every ``governance.CharterAmended``: each section's versions in order."""

governance_domains = Table(
    "governance_domains",
    metadata,
    Column("coop", String(64), primary_key=True),
    Column("domain", String(32), primary_key=True),
    Column("leaf", BigInt, primary_key=True, autoincrement=False),
    Column("event_id", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("proposal", String(64), nullable=True),
    Column("rules", Text, nullable=False),
    Column("ts", BigInt, nullable=False),
    sqlite_with_rowid=False,
)
"""Every ``governance.DomainDefined`` and ``DomainChanged``: each domain's versions in order
(``kind`` ``defined`` or ``changed``; ``rules`` the canonical JSON signed)."""


GOVERNANCE_TABLES = (
    governance_proposals,
    governance_proposal_ends,
    governance_executions,
    governance_votes,
    governance_vote_counts,
    governance_delegations,
    governance_charter,
    governance_domains,
)
"""Every table the governance projections write."""
