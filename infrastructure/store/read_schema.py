"""Read models: tables the projections fill from the log, and their tracking positions.

Declared on the same :data:`~icn.infrastructure.store.schema.metadata` as the
log's own tables, so ``SqlEventStore.create_tables()`` creates them on
SQLite and PostgreSQL alike. Nothing here is on the write path: the
projections (``icn.projections``) fill these tables after the events commit,
each with its own position per coop in ``projection_positions``, written in
the same transaction as the rows it accounts for. ``icn replay`` rebuilds
them from scratch and compares.

Column names match the projections' table shapes
(:mod:`icn.projections.ledger`); the SQL side checks that at start. One
difference: a table that lists columns in ``info["accounts"]`` stores each
member DID of those columns as its account number in ``read_accounts`` (the
coop folded in, so the table has no ``coop`` column): the shape's
``(coop, did, …)`` row is ``(account, …)`` in SQL. A DID is ~56 bytes of text;
the number is one to three, and it is repeated in the row and every index.

Each table's layout has a version (``info["layout"]``, 1 when absent), kept in
``node_meta`` under ``read-layout.<table>``. A store made with another layout
has those tables dropped at start (with every table of the projections that
write them, whose positions go back to the start) and rebuilt from the log by
the next catch-up: see :func:`upgrade_layouts`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import Column, Connection, Index, Integer, String, Table, Text, inspect, text

from icn.infrastructure.store.contract_schema import CONTRACT_TABLES
from icn.infrastructure.store.governance_schema import GOVERNANCE_TABLES
from icn.infrastructure.store.ledger_holds_schema import HOLDS_TABLES
from icn.infrastructure.store.member_names import NAMES_TABLES
from icn.infrastructure.store.schema import BigInt, metadata

ACCOUNT = BigInt
"""An account number (``read_accounts.id``): a varint of 1 to 3 bytes on SQLite."""

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

read_accounts = Table(
    "read_accounts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("coop", String(64), nullable=False),
    Column("did", Text, nullable=False),
    Index("read_accounts_by_did", "coop", "did", unique=True),
)
"""A number for each (coop, member DID) the read models name, given the first time a
batch names it and never changed (kept when the tables that use it are rebuilt). One
row per member: its cost does not grow with history."""

ledger_balances = Table(
    "ledger_balances",
    metadata,
    Column("did", ACCOUNT, primary_key=True, autoincrement=False),
    Column("currency", String(16), primary_key=True),
    Column("balance", BigInt, nullable=False),
    Column("cleared_volume", BigInt, nullable=False),
    Column("debited_volume", BigInt, nullable=False),
    Column("entries", BigInt, nullable=False),
    sqlite_with_rowid=False,
    info={"layout": 2, "accounts": ("did",)},
)
"""Per (account, currency): balance, total credited (cleared volume), total debited,
and how many entries moved it. Credit used and available are computed when read,
from the limit at that moment."""

ledger_history = Table(
    "ledger_history",
    metadata,
    Column("did", ACCOUNT, primary_key=True, autoincrement=False),
    Column("cursor", BigInt, primary_key=True, autoincrement=False),
    Column("counterparty", ACCOUNT, nullable=False),
    Column("amount", BigInt, nullable=False),
    Column("currency", String(16), nullable=False),
    Column("memo", Text, nullable=True),
    Column("ts", BigInt, nullable=False),
    Index("ledger_history_by_counterparty", "did", "counterparty", "cursor"),
    Index("ledger_history_by_currency", "did", "currency", "cursor"),
    Index("ledger_history_by_time", "did", "ts", "cursor"),
    sqlite_with_rowid=False,
    info={"layout": 2, "accounts": ("did", "counterparty")},
)
"""One row per (account, transaction): both parties of a transaction see it.
``cursor`` = leaf index × 64 + transaction index (an entry holds at most 64),
so one integer orders a member's rows in log order and pages them, and names
the entry: its event id is read from ``log_entries`` by (coop, leaf), not
stored again. The primary key clusters each member's rows together; the indexes
serve the counterparty, currency and time filters, each in cursor order (with
account numbers, an index entry is ~15 bytes)."""

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
    read_accounts,
    ledger_balances,
    ledger_history,
    ledger_totals,
    *HOLDS_TABLES,
    trust_attestations,
    trust_revocations,
    trust_epochs,
    *GOVERNANCE_TABLES,
    *CONTRACT_TABLES,
    *NAMES_TABLES,
)
"""Every table a projection writes (``projection_positions`` aside)."""


LAYOUT_META = "read-layout."
"""``node_meta`` key prefix of a read-model table's layout version."""


def layout(table: Table) -> int:
    """The layout version this release writes ``table`` in."""
    return int(table.info.get("layout", 1))


def accounts(table: Table) -> tuple[str, ...]:
    """The columns of ``table`` that hold account numbers (member DIDs in the shapes)."""
    return tuple(table.info.get("accounts", ()))


def upgrade_layouts(conn: Connection, writers: Iterable[tuple[str, Sequence[str]]]) -> list[str]:
    """Drop the read-model tables a store holds in another layout than this release's.

    ``writers``: (projection name, names of the tables it writes) for every projection.
    A stale table takes with it every table of the projections that write it (their
    positions are deleted: the next catch-up rebuilds them from the log, from leaf 0),
    so no projection is left half rebuilt. Run before ``create_all``, which then makes
    them anew; :func:`record_layouts` after. Returns the projections to rebuild.
    """
    present = set(inspect(conn).get_table_names())
    known = (
        {
            k[len(LAYOUT_META) :]: int(v)
            for k, v in conn.execute(
                text("SELECT key, value FROM node_meta WHERE key LIKE :p"), {"p": LAYOUT_META + "%"}
            )
        }
        if "node_meta" in present
        else {}
    )
    by_name = {t.name: t for t in READ_MODEL_TABLES}
    stale = {
        name for name, t in by_name.items() if name in present and known.get(name, 1) != layout(t)
    }
    if not stale:
        return []
    writers = list(writers)
    projections: set[str] = set()
    while True:  # a projection is rebuilt whole or not at all
        more = [(n, t) for n, t in writers if n not in projections and stale.intersection(t)]
        if not more:
            break
        for name, tables in more:
            projections.add(name)
            stale.update(tables)
    for name in sorted(stale & present):
        conn.execute(text(f"DROP TABLE {name}"))
    if projections and "projection_positions" in present:
        for name in sorted(projections):
            conn.execute(
                text("DELETE FROM projection_positions WHERE projection = :p"), {"p": name}
            )
    return sorted(projections)


def record_layouts(conn: Connection) -> None:
    """Note each read-model table's layout version (after ``create_all`` made them)."""
    for t in READ_MODEL_TABLES:
        key, value = LAYOUT_META + t.name, str(layout(t))
        have = conn.execute(text("SELECT value FROM node_meta WHERE key = :k"), {"k": key}).scalar()
        if have is None:
            conn.execute(
                text("INSERT INTO node_meta (key, value) VALUES (:k, :v)"), {"k": key, "v": value}
            )
        elif have != value:
            conn.execute(
                text("UPDATE node_meta SET value = :v WHERE key = :k"), {"k": key, "v": value}
            )
