"""Replication's own rows in the node's database: parked events, outbox cursors, counts.

Implements the application's :class:`~icn.application.intake.ParkingLot` and
:class:`~icn.application.relay.OutboxCursors` on the tables of
:mod:`.replication_schema`, and the two reads replication needs that the
event store does not offer (which received events the log already holds,
byte for byte; how many forks a coop has in quarantine).

Writes go through a connection of their own: on SQLite one that opens its
transactions with ``BEGIN IMMEDIATE`` (the store's read engine is query-only,
and a deferred transaction that reads first could fail to upgrade its lock
while the write path holds it); on PostgreSQL the read engine's pool.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from sqlalchemy import Engine, Table, case, delete, func, select
from sqlalchemy import event as sa_event
from sqlalchemy.engine import URL, Connection

from icn.application.intake import Parked, ToPark, ToReject
from icn.application.relay import OutboxHead
from icn.infrastructure.store import schema
from icn.infrastructure.store.database import SQLITE_LOCK_TIMEOUT_S
from icn.infrastructure.store.event_store import SqlEventStore
from icn.infrastructure.store.replication_schema import (
    dead_letters,
    parked_events,
    rejected_messages,
    replication_coops,
)
from icn.infrastructure.store.wire_packing import unpack

ROWS_PER_STATEMENT = 200
"""Rows per multi-row INSERT (8 columns): far below either database's bind limit."""
IDS_PER_QUERY = 500


def _sqlite_writer(path: str) -> Engine:
    from sqlalchemy import create_engine

    engine = create_engine(
        URL.create("sqlite+pysqlite", database=path),
        connect_args={"timeout": SQLITE_LOCK_TIMEOUT_S, "check_same_thread": False},
    )

    @sa_event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves

    @sa_event.listens_for(engine, "begin")
    def _begin(conn):  # type: ignore[no-untyped-def]
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class DeadLetter(NamedTuple):
    """A stream message set aside after its handling failed ``attempts`` times."""

    stream_seq: int
    subject: str
    attempts: int
    error: str
    wire: bytes
    size: int


class Rejected(NamedTuple):
    """A recorded rejection, as ``icn node status`` and tests read it."""

    stream_seq: int | None
    code: str
    reason: str
    wire: bytes
    size: int


class SqlReplicationState:
    """Parked events, outbox cursors, quarantine counts, rejections and dead letters."""

    def __init__(self, store: SqlEventStore) -> None:
        self._store = store
        self._reader: Engine = store.engine
        database = store.database
        self._sqlite = database.is_sqlite
        self._writer = _sqlite_writer(database.sqlite_path) if self._sqlite else store.engine
        self._insert: Any
        if self._sqlite:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            self._insert = sqlite_insert
        else:  # imported only here, as the recorder's psycopg is (recorders_postgres)
            from sqlalchemy.dialects.postgresql import insert as postgres_insert

            self._insert = postgres_insert

    def close(self) -> None:
        """Release the writer connection (the store closes its own engine)."""
        if self._writer is not self._reader:
            self._writer.dispose()

    # -- the log, as replication reads it ----------------------------------------

    def tree_size(self, coop: str) -> int:
        """Events in the coop's log."""
        rows = self._raw("SELECT size FROM log_trees WHERE coop = ?", [coop])
        return int(rows[0][0]) if rows else 0

    def _raw(self, sql: str, params: Sequence[Any]) -> list[Any]:
        """A read on a raw driver connection: these run for every batch, and SQLAlchemy's
        statement layer costs more than the query itself."""
        conn = self._reader.raw_connection()
        try:
            cursor = conn.cursor()
            cursor.execute(sql if self._sqlite else sql.replace("?", "%s"), tuple(params))
            return list(cursor.fetchall())
        finally:
            conn.close()

    def known_ids(self, coop: str, event_ids: Sequence[str]) -> set[str]:
        """Those of ``event_ids`` that ``coop``'s log holds.

        By the ``event_id`` index alone, the coop checked on the rows found: with
        ``coop = ?`` in the query SQLite prefers the primary key's ``coop`` prefix
        and scans the coop's whole log.
        """
        unique = list(dict.fromkeys(event_ids))
        found: set[str] = set()
        for start in range(0, len(unique), IDS_PER_QUERY):
            chunk = unique[start : start + IDS_PER_QUERY]
            marks = ",".join("?" * len(chunk))
            rows = self._raw(
                f"SELECT event_id, coop FROM log_entries WHERE event_id IN ({marks})",
                [schema.id_bytes(i) for i in chunk],
            )
            found.update(bytes(r[0]).hex() for r in rows if r[1] == coop)
        return found

    def outbox_heads(self, coop: str, start: int, limit: int) -> list[OutboxHead]:
        """Position, id, type and author of up to ``limit`` leaves from ``start`` (no bytes)."""
        rows = self._raw(
            "SELECT e.leaf_index, e.event_id, e.type, a.did, e.trusted_ms FROM log_entries e"
            " JOIN log_authors a ON a.id = e.author"
            " WHERE e.coop = ? AND e.leaf_index >= ? ORDER BY e.leaf_index LIMIT ?",
            [coop, start, limit],
        )
        return [OutboxHead(int(r[0]), bytes(r[1]).hex(), r[2], r[3], r[4]) for r in rows]

    def outbox_wires(self, coop: str, start: int, stop: int) -> dict[int, bytes]:
        """The stored wire bytes of leaves ``start`` … ``stop - 1``."""
        rows = self._raw(
            "SELECT e.leaf_index, s.state FROM log_entries e JOIN stored_events s"
            " ON s.originator_id = e.coop || '/' || e.author AND s.originator_version = e.seq"
            " WHERE e.coop = ? AND e.leaf_index >= ? AND e.leaf_index < ?",
            [coop, start, stop],
        )
        return {int(r[0]): unpack(bytes(r[1])) for r in rows}

    def quarantined_count(self, coop: str) -> int:
        """Fork evidence held for ``coop``."""
        q = schema.quarantine
        with self._reader.connect() as conn:
            return int(
                conn.execute(select(func.count()).select_from(q).where(q.c.coop == coop)).scalar()
                or 0
            )

    # -- outbox cursors --------------------------------------------------------------

    def outbox_cursor(self, coop: str) -> int:
        """The last leaf index of ``coop`` whose JetStream ack arrived (-1: none)."""
        t = replication_coops
        with self._reader.connect() as conn:
            value = conn.execute(select(t.c.outbox_acked).where(t.c.coop == coop)).scalar()
        return -1 if value is None else int(value)

    def set_outbox_cursor(self, coop: str, position: int) -> None:
        """Move the cursor forward to ``position`` (never back: two relays may race)."""
        t = replication_coops
        stmt = self._insert(t).values(coop=coop, outbox_acked=position, parked_dropped=0)
        stmt = stmt.on_conflict_do_update(
            index_elements=[t.c.coop],
            set_={
                "outbox_acked": case(
                    (t.c.outbox_acked < stmt.excluded.outbox_acked, stmt.excluded.outbox_acked),
                    else_=t.c.outbox_acked,
                )
            },
        )
        with self._writer.begin() as conn:
            conn.execute(stmt)

    # -- parked events ---------------------------------------------------------------

    def park(self, coop: str, events: Sequence[ToPark], bound: int, now_ms: int) -> tuple[int, int]:
        """Keep ``events`` (known ones are ignored); drop the oldest beyond ``bound``.

        Returns (newly parked, dropped by the bound), in one transaction.
        """
        if not events:
            return 0, 0
        t = parked_events
        inserted = 0
        with self._writer.begin() as conn:
            for start in range(0, len(events), ROWS_PER_STATEMENT):
                rows = [
                    {
                        "coop": coop,
                        "event_id": p.event_id,
                        "author": p.author,
                        "seq": p.seq,
                        "code": p.code[:64],
                        "wire": p.wire,
                        "parked_ms": now_ms,
                        "trusted_ms": p.trusted_ms,
                    }
                    for p in events[start : start + ROWS_PER_STATEMENT]
                ]
                stmt = self._insert(t).values(rows).on_conflict_do_nothing()
                # RETURNING counts what went in on both databases (rowcount does not).
                inserted += len(conn.execute(stmt.returning(t.c.id)).all())
            dropped = self._evict(conn, coop, bound)
        return inserted, dropped

    def _evict(self, conn: Connection, coop: str, bound: int) -> int:
        t = parked_events
        count = int(
            conn.execute(select(func.count()).select_from(t).where(t.c.coop == coop)).scalar() or 0
        )
        excess = count - bound
        if excess <= 0:
            return 0
        oldest = select(t.c.id).where(t.c.coop == coop).order_by(t.c.id).limit(excess)
        conn.execute(delete(t).where(t.c.id.in_(oldest.scalar_subquery())))
        self._count_dropped(conn, coop, excess)
        return excess

    def _count_dropped(self, conn: Connection, coop: str, n: int) -> None:
        c = replication_coops
        stmt = self._insert(c).values(coop=coop, outbox_acked=-1, parked_dropped=n)
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[c.c.coop],
                set_={"parked_dropped": c.c.parked_dropped + stmt.excluded.parked_dropped},
            )
        )

    def parked(self, coop: str) -> list[Parked]:
        """Every parked event of ``coop``, oldest first."""
        t = parked_events
        with self._reader.connect() as conn:
            rows = conn.execute(
                select(t.c.event_id, t.c.wire, t.c.code, t.c.trusted_ms)
                .where(t.c.coop == coop)
                .order_by(t.c.id)
            ).all()
        return [Parked(r.event_id, bytes(r.wire), r.code, r.trusted_ms) for r in rows]

    def unpark(self, coop: str, event_ids: Sequence[str]) -> None:
        """Forget parked events (appended, or found permanently invalid)."""
        if not event_ids:
            return
        t = parked_events
        with self._writer.begin() as conn:
            for start in range(0, len(event_ids), IDS_PER_QUERY):
                chunk = list(event_ids[start : start + IDS_PER_QUERY])
                conn.execute(delete(t).where(t.c.coop == coop, t.c.event_id.in_(chunk)))

    def drop(self, coop: str, event_ids: Sequence[str]) -> int:
        """Forget parked events the bound dropped (as :meth:`park`'s own bound does):
        counted in ``parked_dropped``. Returns how many were still parked."""
        if not event_ids:
            return 0
        t = parked_events
        dropped = 0
        with self._writer.begin() as conn:
            for start in range(0, len(event_ids), IDS_PER_QUERY):
                chunk = list(event_ids[start : start + IDS_PER_QUERY])
                stmt = delete(t).where(t.c.coop == coop, t.c.event_id.in_(chunk))
                dropped += len(conn.execute(stmt.returning(t.c.id)).all())
            if dropped:
                self._count_dropped(conn, coop, dropped)
        return dropped

    def parked_count(self, coop: str) -> int:
        """How many events of ``coop`` are parked."""
        t = parked_events
        with self._reader.connect() as conn:
            return int(
                conn.execute(select(func.count()).select_from(t).where(t.c.coop == coop)).scalar()
                or 0
            )

    def parked_dropped(self, coop: str) -> int:
        """How many parked events of ``coop`` the bound has dropped, ever."""
        t = replication_coops
        with self._reader.connect() as conn:
            value = conn.execute(select(t.c.parked_dropped).where(t.c.coop == coop)).scalar()
        return int(value or 0)

    # -- rejected messages and dead letters ----------------------------------------------

    def reject(self, coop: str, rows: Sequence[ToReject], bound: int, now_ms: int) -> int:
        """Record refused messages (known stream sequences are ignored); keep at most
        ``bound`` per coop, the newest. Returns how many went in."""
        if not rows:
            return 0
        t = rejected_messages
        values = [
            {
                "coop": coop,
                "stream_seq": r.stream_seq,
                "code": r.code[:64],
                "reason": r.reason,
                "wire": r.wire,
                "size": r.size,
                "rejected_ms": now_ms,
            }
            for r in rows
        ]
        inserted = 0
        with self._writer.begin() as conn:
            for start in range(0, len(values), ROWS_PER_STATEMENT):
                chunk = values[start : start + ROWS_PER_STATEMENT]
                stmt = self._insert(t).values(chunk).on_conflict_do_nothing()
                inserted += len(conn.execute(stmt.returning(t.c.id)).all())
            _keep_newest(conn, t, coop, bound)
        return inserted

    def rejected(self, coop: str, limit: int = 100) -> list[Rejected]:
        """The newest ``limit`` rejections of ``coop``, oldest first."""
        t = rejected_messages
        with self._reader.connect() as conn:
            rows = conn.execute(
                select(t.c.stream_seq, t.c.code, t.c.reason, t.c.wire, t.c.size)
                .where(t.c.coop == coop)
                .order_by(t.c.id.desc())
                .limit(limit)
            ).all()
        return [
            Rejected(r.stream_seq, r.code, r.reason, bytes(r.wire), int(r.size))
            for r in reversed(rows)
        ]

    def rejected_count(self, coop: str) -> int:
        """How many rejections of ``coop`` are recorded (up to the bound)."""
        return self._count(rejected_messages, coop)

    def dead_letter(self, coop: str, letter: DeadLetter, bound: int, now_ms: int) -> bool:
        """Set a message aside (once per stream sequence); False if it already was."""
        t = dead_letters
        stmt = (
            self._insert(t)
            .values(
                coop=coop,
                stream_seq=letter.stream_seq,
                subject=letter.subject,
                attempts=letter.attempts,
                error=letter.error,
                wire=letter.wire,
                size=letter.size,
                dead_ms=now_ms,
            )
            .on_conflict_do_nothing()
        )
        with self._writer.begin() as conn:
            inserted = bool(conn.execute(stmt.returning(t.c.id)).all())
            _keep_newest(conn, t, coop, bound)
        return inserted

    def dead_letters(self, coop: str) -> list[DeadLetter]:
        """Every dead letter of ``coop``, oldest first."""
        t = dead_letters
        with self._reader.connect() as conn:
            rows = conn.execute(
                select(t.c.stream_seq, t.c.subject, t.c.attempts, t.c.error, t.c.wire, t.c.size)
                .where(t.c.coop == coop)
                .order_by(t.c.id)
            ).all()
        return [
            DeadLetter(int(r.stream_seq), r.subject, int(r.attempts), r.error, bytes(r.wire),
                       int(r.size))
            for r in rows
        ]  # fmt: skip

    def dead_letter_count(self, coop: str) -> int:
        """How many dead letters ``coop`` has: more than 0 makes it ``degraded``."""
        return self._count(dead_letters, coop)

    def _count(self, table: Table, coop: str) -> int:
        with self._reader.connect() as conn:
            return int(
                conn.execute(
                    select(func.count()).select_from(table).where(table.c.coop == coop)
                ).scalar()
                or 0
            )


def _keep_newest(conn: Connection, table: Table, coop: str, bound: int) -> None:
    """Delete the oldest rows of ``coop`` in ``table`` beyond ``bound``."""
    count = int(
        conn.execute(select(func.count()).select_from(table).where(table.c.coop == coop)).scalar()
        or 0
    )
    if count > bound:
        oldest = (
            select(table.c.id).where(table.c.coop == coop).order_by(table.c.id).limit(count - bound)
        )
        conn.execute(delete(table).where(table.c.id.in_(oldest.scalar_subquery())))
