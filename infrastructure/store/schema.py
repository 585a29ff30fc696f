"""Tables the node keeps beside eventsourcing's ``stored_events``.

Declared once with SQLAlchemy Core so the same definitions create the
schema on SQLite and PostgreSQL and serve the read side. Every page a commit
touches is written to the WAL and synced, so on SQLite the tables with a
natural key are ``WITHOUT ROWID`` (one B-tree instead of two) and no index
exists that no query uses: each append touches about seven B-trees. The write side
fills them with plain SQL on the recorder's own cursor, inside the
transaction that inserts the stored events (see ``log_rows.py``).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
)

metadata = MetaData()

# BigInteger is INTEGER on SQLite so that an INTEGER PRIMARY KEY stays the rowid.
BigInt = BigInteger().with_variant(Integer(), "sqlite")

log_entries = Table(
    "log_entries",
    metadata,
    Column("coop", String(64), primary_key=True),
    Column("leaf_index", BigInt, primary_key=True, autoincrement=False),
    Column("event_id", String(64), nullable=False, unique=True),
    Column("author", Text, nullable=False),
    Column("seq", BigInt, nullable=False),
    Column("type", Text, nullable=False),
    Column("ts", BigInt, nullable=False),
    sqlite_with_rowid=False,
)
"""The node's log order per coop: leaf ``leaf_index`` of the coop's Merkle tree."""

chain_heads = Table(
    "chain_heads",
    metadata,
    Column("coop", String(64), primary_key=True),
    Column("author", Text, primary_key=True),
    Column("seq", BigInt, nullable=False),
    Column("event_id", String(64), nullable=False),
    Column("ts", BigInt, nullable=False),
    sqlite_with_rowid=False,
)
"""Last accepted event of each author's chain: what the next event must link to."""

log_trees = Table(
    "log_trees",
    metadata,
    Column("coop", String(64), primary_key=True),
    Column("size", BigInt, nullable=False),
    Column("edge", LargeBinary, nullable=False),
    sqlite_with_rowid=False,
)
"""Size and right edge of each coop's tree (the hashes of its maximal complete
subtrees, left to right, 32 bytes each): one row read per append, O(log n) bytes."""

merkle_nodes = Table(
    "merkle_nodes",
    metadata,
    Column("coop", String(64), primary_key=True),
    Column("level", SmallInteger, primary_key=True, autoincrement=False),
    Column("idx", BigInt, primary_key=True, autoincrement=False),
    Column("hash", LargeBinary(32), nullable=False),
    sqlite_with_rowid=False,
)
"""Hash of every complete subtree (2^level leaves from idx·2^level): proofs are O(log n) reads."""

coops = Table(
    "coops",
    metadata,
    Column("coop", String(64), primary_key=True),
    Column("did", Text, nullable=False),
    Column("founded_event_id", String(64), nullable=False),
    sqlite_with_rowid=False,
)
"""The coop's own DID: author of its first accepted ``coop.Founded``."""

checkpoints = Table(
    "checkpoints",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("coop", String(64), nullable=False),
    Column("author", Text, nullable=False),
    Column("size", BigInt, nullable=False),
    Column("root", String(64), nullable=False),
    Column("note", Text, nullable=False),
    Column("leaf_index", BigInt, nullable=False),
    Index("checkpoints_by_author", "coop", "author", "size"),
)

quarantine = Table(
    "quarantine",
    metadata,
    Column("id", BigInt, primary_key=True, autoincrement=True),
    Column("coop", String(64), nullable=False),
    Column("author", Text, nullable=False),
    Column("seq", BigInt, nullable=False),
    Column("event_id", String(64), nullable=False),
    Column("conflicts_with", String(64), nullable=False),
    Column("wire", LargeBinary, nullable=False),
    Column("received_ms", BigInt, nullable=False),
    Index("quarantine_unique", "coop", "event_id", unique=True),
)
"""Fork evidence: the second event at a (coop, author, seq); the first stays in the log."""

node_meta = Table(
    "node_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)
