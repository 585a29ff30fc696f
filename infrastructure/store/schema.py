"""Tables the node keeps beside eventsourcing's ``stored_events``.

Declared once with SQLAlchemy Core so the same definitions create the
schema on SQLite and PostgreSQL and serve the read side. Every page a commit
touches is written to the WAL and synced, so on SQLite the tables with a
natural key are ``WITHOUT ROWID`` (one B-tree instead of two), no index
exists that no query uses, and nothing is stored twice: an append touches
seven B-trees (stored events and its key, log entries with its id, author and
type indexes, the tree's edge). The write side fills them with plain SQL on
the recorder's own cursor, inside the transaction that inserts the stored
events (see ``log_rows.py``).
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)

metadata = MetaData()

_EVENT_ID = re.compile(r"[0-9a-f]{64}")


def id_bytes(event_id: str) -> bytes:
    """An event id (64 lowercase hex characters) as the 32 bytes ``log_entries`` keeps.

    Anything else is no stored id: it becomes ``b""``, which matches no row (as the text
    matched none before), rather than an error a hostile id could raise.
    """
    return bytes.fromhex(event_id) if _EVENT_ID.fullmatch(event_id) else b""


class EventId(TypeDecorator[str]):
    """An event id, hex in Python and 32 raw bytes in the table: half the bytes of the text
    in the row and again in its unique index."""

    impl = LargeBinary
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Any) -> bytes | None:
        return None if value is None else id_bytes(value)

    def process_result_value(self, value: Any, dialect: Any) -> str | None:
        return None if value is None else bytes(value).hex()


ID_INDEX = "log_entries_by_id"
"""PostgreSQL's index of ``log_entries.event_id``: a hash index, not a unique B-tree.

The known-id check of every append and the fetch by id only ever ask ``event_id = …``
(or ``IN (…)``), which a hash index answers in one bucket read. Its entry is a 4-byte
hash code where the B-tree's holds the 32-byte id (with PostgreSQL's alignment, 48
bytes, in leaf pages split half full): 48 bytes per event instead of 81
(``bench/storage.py``). It cannot be ``UNIQUE``, and need not be: the id is the BLAKE3
of the event's bytes, which name its coop, author and seq, so a second row with one id
would be a second event at one (coop, author, seq), which ``stored_events``' primary
key already refuses. SQLite keeps its unique index (a ``WITHOUT ROWID`` table's
secondary index holds the key anyway, and its pages pack full)."""

# BigInteger is INTEGER on SQLite so that an INTEGER PRIMARY KEY stays the rowid.
BigInt = BigInteger().with_variant(Integer(), "sqlite")

log_authors = Table(
    "log_authors",
    metadata,
    Column("id", BigInt, primary_key=True, autoincrement=True),
    Column("coop", String(64), nullable=False),
    Column("did", Text, nullable=False),
    Index("log_authors_by_did", "coop", "did", unique=True),
)
"""A number for each (coop, author DID) with a chain in the store, given in the transaction
that stores the author's first event and never changed. One row per author.

The chain key and the log rows name the author by it: ``stored_events.originator_id`` is
``<coop>/<number>`` and ``log_entries.author`` is the number. A DID is ~56 bytes of text;
it was repeated in both tables' rows and in their primary key and author index, four
times per event (storage cut 4, issue 13: ``bench/storage.py``). Stores made before are
rewritten at open (``event_store.migrate_log``)."""

log_entries = Table(
    "log_entries",
    metadata,
    # The 8-byte columns first: PostgreSQL aligns each to 8 bytes after a variable-length
    # one, which cost 16 bytes per row in the order the columns were added in.
    Column("leaf_index", BigInt, nullable=False, autoincrement=False),
    Column("author", BigInt, nullable=False),
    Column("seq", BigInt, nullable=False),
    Column("ts", BigInt, nullable=False),
    Column("trusted_ms", BigInt, nullable=True),
    Column("coop", String(64), nullable=False),
    Column("event_id", EventId, nullable=False),
    Column("type", Text, nullable=False),
    Column("nodes", LargeBinary, nullable=False),
    PrimaryKeyConstraint("coop", "leaf_index"),
    Index("log_entries_by_author", "coop", "author", "leaf_index"),
    Index("log_entries_by_type", "coop", "type", "leaf_index"),
    UniqueConstraint("event_id").ddl_if(dialect="sqlite"),
    Index(ID_INDEX, "event_id", postgresql_using="hash").ddl_if(dialect="postgresql"),
    sqlite_with_rowid=False,
)
"""The node's log order per coop: leaf ``leaf_index`` of the coop's Merkle tree.

``event_id`` is the id's 32 bytes (:class:`EventId`; raw SQL converts with
:func:`id_bytes` and ``.hex()``). Stores made when it was hex text are rewritten
at start (``event_store.migrate_log``). ``author`` is the author's number in
:data:`log_authors`, so the event's stored row is ``stored_events`` at
(``coop || '/' || author``, ``seq``).

``nodes`` holds the hashes of the complete subtrees this leaf completes,
level 0 (the leaf hash) first: subtree (level, idx) ends at leaf
(idx+1)·2^level − 1, so it is found by primary key, and proofs are O(log n)
row reads without a table of their own.

``trusted_ms`` is the trusted time the node judged the event at
(icn.domain.events.timing): replay judges it at that time again, and an
auditor can check that no ``ts`` lies beyond it plus the allowed skew. It is
null only in stores created before the column (added at start, see
``add_missing_columns``).

The two indexes serve log pages filtered by author or type (HTTP pages, SSE and
WebSocket streams): without them such a page walks the coop's entries from its
cursor until it has found ``limit`` matches, so a rare type or a quiet author
cost a scan of the whole log (``bench/growth.py``, SQLite, p99 of a page after a random
position: 11.8 ms at 10,000 events, 61 ms at 100,000).

There is no chain-heads table: a chain's head is its last stored event,
eventsourcing's highest version for the originator ``coop/author``.
"""

UPPER_LEVEL = 8
"""The lowest level :data:`log_upper_nodes` keeps: subtrees of 256 leaves and up."""

log_upper_nodes = Table(
    "log_upper_nodes",
    metadata,
    Column("coop", String(64), primary_key=True),
    Column("leaf_index", BigInt, primary_key=True, autoincrement=False),
    Column("nodes", LargeBinary, nullable=False),
    sqlite_with_rowid=False,
)
"""A second copy of the hashes of the complete subtrees of :data:`UPPER_LEVEL` and above,
keyed as in ``log_entries`` (``nodes`` from that level up): one row per 256 leaves.

A proof or root needs one hash per level. The lower levels' siblings lie within 256 leaves
of the leaf, a few pages of ``log_entries``; the upper ones lie anywhere in the log, so
at 1M events a proof read ~20 scattered pages against 13 at 10k (SQLite p99 2.1x,
``bench/growth.py``). Here they are a table of ~4,000 rows per million events whose pages
stay cached, and the proof reads the same few cold pages at any size. Written in the
transaction of the leaf that completes them; stores made before are filled at open
(:func:`~icn.infrastructure.store.upper_nodes.backfill`)."""

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
    Index("checkpoints_by_leaf", "coop", "leaf_index"),
)
"""Every ``log.CheckpointIssued`` accepted. A node's latest is the end of
``checkpoints_by_author``; the checkpoints since a leaf (how many others issued since
this node's last) are a range of ``checkpoints_by_leaf``."""

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

coop_state = Table(
    "coop_state",
    metadata,
    Column("coop", String(64), primary_key=True),
    Column("kind", String(32), primary_key=True),
    Column("key", Text, primary_key=True),
    Column("value", LargeBinary, nullable=False),
    sqlite_with_rowid=False,
)
"""The records the coop rules read on the next write (coop, members, accounts,
disputes): written in the same transaction as the events that changed them,
so a decision never reads state the log does not imply. ``icn replay``
rebuilds it from the log and compares."""

trust_standing_history = Table(
    "trust_standing_history",
    metadata,
    Column("coop", String(64), primary_key=True),
    Column("did", Text, primary_key=True),
    Column("context", String(32), primary_key=True),
    Column("epoch", BigInt, primary_key=True),
    Column("standing_ppm", BigInt, nullable=False),
    Column("normalised_ppm", BigInt, nullable=False),
    Column("trust_class", String(16), nullable=False),
    sqlite_with_rowid=False,
)
"""Every member's standing at every published epoch (``StandingAtEpochRecord``): written once,
in the transaction that accepts the epoch; one member's history is one key range. ``icn
replay`` rebuilds it from the log and compares."""

node_meta = Table(
    "node_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)


ADDED_INDEXES: tuple[Index, ...] = (
    *(i for i in log_entries.indexes if i.name in ("log_entries_by_author", "log_entries_by_type")),
    *(i for i in checkpoints.indexes if i.name == "checkpoints_by_leaf"),
)
"""Indexes added to tables after their first release: a store made before gets them at start
(``create_all`` creates missing tables, never the indexes of existing ones); building them
reads the table once."""

ADDED_COLUMNS: dict[str, list[tuple[str, str]]] = {
    "log_entries": [("trusted_ms", "BIGINT")],
    "parked_events": [("trusted_ms", "BIGINT")],
}
"""Columns added to tables after their first release: a store made before gets them at start
(``create_all`` creates missing tables, never missing columns)."""
