"""The node's event store: eventsourcing recorders for writes, SQLAlchemy for reads.

One instance per process. Writes go through the recorder's ``insert_events``
(one transaction: stored events + log rows); the chain checks a write path
needs are read on the recorder's own connections (the hot path); everything
else (export, proofs, checkpoints) is read through SQLAlchemy.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from eventsourcing.persistence import IntegrityError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresDatastore
from eventsourcing.sqlite import SQLiteDatastore
from sqlalchemy import Engine, and_, select

from icn.application.ports import (
    Accepted,
    ConcurrentAppend,
    ForkEvidence,
    LogEntry,
    StoredCheckpoint,
    StoreError,
)
from icn.domain.events.chain import ChainHead
from icn.domain.events.envelope import Event
from icn.domain.log import merkle
from icn.infrastructure.store import schema
from icn.infrastructure.store.database import SQLITE_LOCK_TIMEOUT_S, Database
from icn.infrastructure.store.log_rows import LogBatch
from icn.infrastructure.store.reads import stored_events
from icn.infrastructure.store.recorders import IcnPostgresRecorder, IcnSQLiteRecorder

_event_decoder = __import__("msgspec").json.Decoder(Event)


def originator_id(coop: str, author: str) -> str:
    """eventsourcing's originator for one author's chain in one coop."""
    return f"{coop}/{author}"


class _PrefetchedView:
    """Chain state read once per batch; rarer questions go to the database."""

    def __init__(
        self,
        store: SqlEventStore,
        heads: dict[tuple[str, str], ChainHead],
        coop_dids: dict[str, str | None],
        flagged: set[tuple[str, str]],
    ) -> None:
        self._store = store
        self._heads = heads
        self._coop_dids = coop_dids
        self._flagged = flagged

    def head(self, coop: str, author: str) -> ChainHead | None:
        key = (coop, author)
        if key not in self._heads:
            found = self._store.head(coop, author)
            if found is None:
                return None
            self._heads[key] = found
        return self._heads[key]

    def id_at(self, coop: str, author: str, seq: int) -> str | None:
        return self._store.id_at(coop, author, seq)

    def coop_did(self, coop: str) -> str | None:
        if coop not in self._coop_dids:
            rows = self._store._raw("SELECT did FROM coops WHERE coop = ?", [coop])
            self._coop_dids[coop] = rows[0]["did"] if rows else None
        return self._coop_dids[coop]

    def is_flagged(self, coop: str, author: str) -> bool:
        return (coop, author) in self._flagged


class SqlEventStore:
    """:class:`~icn.application.ports.EventStore` on SQLite or PostgreSQL."""

    def __init__(self, database: Database) -> None:
        self.database = database
        if database.is_sqlite:
            self._datastore: Any = SQLiteDatastore(
                database.sqlite_path,
                lock_timeout=SQLITE_LOCK_TIMEOUT_S,
                originator_id_type="text",
            )
            self._recorder: Any = IcnSQLiteRecorder(self._datastore)
            self._ph = "?"
            # The write path's reads are single statements: on SQLite they run
            # on one autocommit, query-only connection (no BEGIN/ROLLBACK round
            # trips); WAL lets them proceed while another connection writes.
            self._hot: sqlite3.Connection | None = sqlite3.connect(
                database.sqlite_path,
                isolation_level=None,
                check_same_thread=False,
                timeout=SQLITE_LOCK_TIMEOUT_S,
            )
            self._hot.row_factory = sqlite3.Row
            self._hot_lock = threading.Lock()
        else:
            self._datastore = PostgresDatastore(
                **database.postgres_params(),
                originator_id_type="text",
                pool_size=4,
                max_overflow=4,
                lock_timeout=30,
            )
            self._recorder = IcnPostgresRecorder(self._datastore)
            self._ph = "%s"
            self._hot = None
        self.engine: Engine = database.read_engine()

    # -- lifecycle -----------------------------------------------------------

    def create_tables(self) -> None:
        """Create eventsourcing's table and ours if missing (idempotent)."""
        self._recorder.create_table()
        if self.database.is_sqlite:
            # The read engine is query-only; create with a plain writer engine.
            from sqlalchemy import create_engine

            writer = create_engine(f"sqlite+pysqlite:///{self.database.sqlite_path}")
            schema.metadata.create_all(writer)
            writer.dispose()
        else:
            schema.metadata.create_all(self.engine)

    def close(self) -> None:
        """Release connections."""
        if self._hot is not None:
            self._hot.close()
        self.engine.dispose()
        self._datastore.close()

    # -- write path ----------------------------------------------------------

    def _raw(self, sql: str, params: Sequence[Any]) -> list[Any]:
        """One read statement for the write path (``?`` placeholders)."""
        if self._hot is not None:
            with self._hot_lock:
                return self._hot.execute(sql, params).fetchall()
        with self._datastore.transaction(commit=False) as c:
            c.execute(sql.replace("?", self._ph), params)
            return list(c.fetchall())

    def chain_view(self, chains: Iterable[tuple[str, str]]) -> _PrefetchedView:
        """Prefetch heads, coop DIDs and fork flags for the named chains."""
        by_coop: dict[str, set[str]] = {}
        for coop, author in chains:
            by_coop.setdefault(coop, set()).add(author)
        heads: dict[tuple[str, str], ChainHead] = {}
        dids: dict[str, str | None] = {}
        flagged: set[tuple[str, str]] = set()
        for coop, authors in by_coop.items():
            names = sorted(authors)
            marks = ",".join(["?"] * len(names))
            # One round trip: the chain heads, the coop's DID and which of
            # these authors have fork evidence ('h', 'c', 'q' rows).
            rows = self._raw(
                f"SELECT 'h' AS k, author, seq, event_id, ts FROM chain_heads"
                f" WHERE coop = ? AND author IN ({marks})"
                f" UNION ALL SELECT 'c', did, 0, '', 0 FROM coops WHERE coop = ?"
                f" UNION ALL SELECT 'q', author, 0, '', 0 FROM quarantine"
                f" WHERE coop = ? AND author IN ({marks})",
                [coop, *names, coop, coop, *names],
            )
            dids[coop] = None
            for r in rows:
                if r["k"] == "h":
                    heads[(coop, r["author"])] = ChainHead(r["seq"], r["event_id"], r["ts"])
                elif r["k"] == "c":
                    dids[coop] = r["author"]
                else:
                    flagged.add((coop, r["author"]))
        return _PrefetchedView(self, heads, dids, flagged)

    def append(
        self, accepted: Sequence[Accepted], forks: Sequence[ForkEvidence], received_ms: int
    ) -> list[int]:
        """Store events, their log rows and fork evidence in one transaction."""
        if not accepted and not forks:
            return []
        stored = [
            StoredEvent(
                originator_id=originator_id(a.event.coop, a.event.author),
                originator_version=a.event.seq,
                topic=a.event.type,
                state=a.wire,
            )
            for a in accepted
        ]
        batch = LogBatch(accepted, forks, received_ms)
        try:
            self._recorder.insert_events(stored, log_batch=batch)
        except IntegrityError as exc:
            raise ConcurrentAppend(str(exc)) from None
        except OperationalError as exc:
            if "locked" in str(exc) or "lock timeout" in str(exc):
                raise ConcurrentAppend(str(exc)) from None
            raise StoreError(str(exc)) from exc
        return batch.positions

    # -- chain reads -----------------------------------------------------------

    def head(self, coop: str, author: str) -> ChainHead | None:
        """The author's last accepted event in ``coop``."""
        rows = self._raw(
            "SELECT seq, event_id, ts FROM chain_heads WHERE coop = ? AND author = ?",
            [coop, author],
        )
        return ChainHead(rows[0]["seq"], rows[0]["event_id"], rows[0]["ts"]) if rows else None

    def id_at(self, coop: str, author: str, seq: int) -> str | None:
        """The id accepted at ``seq`` of a chain."""
        rows = self._raw(
            "SELECT event_id FROM log_entries WHERE coop = ? AND author = ? AND seq = ?",
            [coop, author, seq],
        )
        return rows[0]["event_id"] if rows else None

    # -- log reads (SQLAlchemy) ------------------------------------------------

    def tree_size(self, coop: str) -> int:
        """Number of events in the coop's log."""
        with self.engine.connect() as conn:
            size = conn.execute(
                select(schema.log_trees.c.size).where(schema.log_trees.c.coop == coop)
            ).scalar()
        return int(size or 0)

    def _node_getter(self, conn: Any, coop: str) -> merkle.NodeGetter:
        t = schema.merkle_nodes
        cache: dict[tuple[int, int], bytes] = {}

        def get(level: int, idx: int) -> bytes:
            key = (level, idx)
            if key not in cache:
                value = conn.execute(
                    select(t.c.hash).where(
                        and_(t.c.coop == coop, t.c.level == level, t.c.idx == idx)
                    )
                ).scalar()
                if value is None:
                    raise StoreError(f"merkle node ({level}, {idx}) of {coop} is missing")
                cache[key] = bytes(value)
            return cache[key]

        return get

    def _check_size(self, conn: Any, coop: str, size: int) -> None:
        current = (
            conn.execute(
                select(schema.log_trees.c.size).where(schema.log_trees.c.coop == coop)
            ).scalar()
            or 0
        )
        if not 0 <= size <= current:
            raise ValueError(f"the log of {coop} has {current} events; size {size} is out of range")

    def root(self, coop: str, size: int) -> bytes:
        """Merkle root at ``size``."""
        with self.engine.connect() as conn:
            self._check_size(conn, coop, size)
            return merkle.root(self._node_getter(conn, coop), size)

    def inclusion_proof(self, coop: str, index: int, size: int) -> list[bytes]:
        """Inclusion proof, O(log n) node reads."""
        with self.engine.connect() as conn:
            self._check_size(conn, coop, size)
            return merkle.inclusion_proof(self._node_getter(conn, coop), index, size)

    def consistency_proof(self, coop: str, size1: int, size2: int) -> list[bytes]:
        """Consistency proof, O(log n) node reads."""
        with self.engine.connect() as conn:
            self._check_size(conn, coop, size2)
            return merkle.consistency_proof(self._node_getter(conn, coop), size1, size2)

    def _entry_query(self) -> Any:
        e, s = schema.log_entries, stored_events
        return select(e.c.coop, e.c.leaf_index, e.c.event_id, s.c.state).join(
            s,
            and_(
                s.c.originator_id == e.c.coop + "/" + e.c.author,
                s.c.originator_version == e.c.seq,
            ),
        )

    def find(self, event_id: str) -> LogEntry | None:
        """An event by id."""
        with self.engine.connect() as conn:
            row = conn.execute(
                self._entry_query().where(schema.log_entries.c.event_id == event_id)
            ).first()
        return LogEntry(row.coop, row.leaf_index, row.event_id, bytes(row.state)) if row else None

    def entries(self, coop: str, start: int = 0) -> Iterator[LogEntry]:
        """The coop's log in order, streamed in pages so memory stays flat."""
        e = schema.log_entries
        page = 2000
        while True:
            with self.engine.connect() as conn:
                rows = conn.execute(
                    self._entry_query()
                    .where(and_(e.c.coop == coop, e.c.leaf_index >= start))
                    .order_by(e.c.leaf_index)
                    .limit(page)
                ).all()
            for row in rows:
                yield LogEntry(row.coop, row.leaf_index, row.event_id, bytes(row.state))
            if len(rows) < page:
                return
            start = rows[-1].leaf_index + 1

    def coops(self) -> list[str]:
        """Coops with at least one event."""
        with self.engine.connect() as conn:
            return list(
                conn.execute(select(schema.log_trees.c.coop).order_by(schema.log_trees.c.coop))
                .scalars()
                .all()
            )

    def checkpoints(self, coop: str, author: str | None = None) -> list[StoredCheckpoint]:
        """Checkpoint events of a coop, in log order."""
        t = schema.checkpoints
        query = select(t).where(t.c.coop == coop)
        if author is not None:
            query = query.where(t.c.author == author)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(t.c.leaf_index)).all()
        return [
            StoredCheckpoint(
                event_id=r.event_id,
                coop=r.coop,
                author=r.author,
                size=r.size,
                root=r.root,
                note=r.note,
                leaf_index=r.leaf_index,
            )
            for r in rows
        ]

    def quarantined(self, coop: str) -> list[ForkEvidence]:
        """Fork evidence held for a coop."""
        t = schema.quarantine
        with self.engine.connect() as conn:
            rows = conn.execute(select(t).where(t.c.coop == coop).order_by(t.c.id)).all()
        return [
            ForkEvidence(_event_decoder.decode(bytes(r.wire)), bytes(r.wire), r.conflicts_with)
            for r in rows
        ]

    def stored_nodes(self, coop: str) -> dict[tuple[int, int], bytes]:
        """Every persisted complete-subtree hash of a coop."""
        t = schema.merkle_nodes
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.c.level, t.c.idx, t.c.hash).where(t.c.coop == coop))
            return {(r.level, r.idx): bytes(r.hash) for r in rows}

    # -- node metadata -----------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        """A node setting stored with the data (e.g. the node's DID)."""
        with self.engine.connect() as conn:
            return conn.execute(
                select(schema.node_meta.c.value).where(schema.node_meta.c.key == key)
            ).scalar()

    def set_meta(self, key: str, value: str) -> None:
        """Store a node setting (insert or replace)."""
        p = self._ph
        with self._datastore.transaction(commit=True) as c:
            c.execute(
                f"INSERT INTO node_meta (key, value) VALUES ({p}, {p})"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [key, value],
            )
