"""The node's event store: eventsourcing recorders for writes, SQLAlchemy for reads.

One instance per process. Each write is one recorder transaction in which
the decision is made (chain checks read on the transaction's own cursor) and
the stored events and log rows are written; everything else (export,
proofs, checkpoints, heads) is read through SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any, TypeVar

from eventsourcing.persistence import IntegrityError, OperationalError
from eventsourcing.sqlite import SQLiteConnection, SQLiteConnectionPool, SQLiteDatastore
from sqlalchemy import (
    Engine,
    Integer,
    LargeBinary,
    Text,
    and_,
    cast,
    func,
    literal,
    select,
    union_all,
)

from icn.application.ports import (
    Accepted,
    ConcurrentAppend,
    Decide,
    Decision,
    ForkEvidence,
    LogEntry,
    StoredCheckpoint,
    StoreError,
)
from icn.domain.events.chain import ChainHead
from icn.domain.events.envelope import decode_stored
from icn.domain.log import merkle
from icn.infrastructure.store import read_schema as _read_schema
from icn.infrastructure.store import replication_schema as _replication_schema  # noqa: F401
from icn.infrastructure.store import schema, standing_history, upper_nodes
from icn.infrastructure.store.database import SQLITE_LOCK_TIMEOUT_S, Database, WriteTurnTimeout
from icn.infrastructure.store.log_rows import LogUnit, head_of, id_of
from icn.infrastructure.store.reads import stored_events
from icn.infrastructure.store.recorders import IcnSQLiteRecorder
from icn.infrastructure.store.wal import AUTOCHECKPOINT_OFF
from icn.infrastructure.store.wire_packing import pack, unpack

PAGE = 2000
"""Rows per page of a streamed read of the log (export, audit, replay)."""


T = TypeVar("T")

TYPES_SQL = (
    "WITH RECURSIVE t(type) AS (SELECT MIN(type) FROM log_entries WHERE coop = ?"
    " UNION ALL SELECT (SELECT MIN(e.type) FROM log_entries e WHERE e.coop = ? AND e.type > t.type)"
    " FROM t WHERE t.type IS NOT NULL) SELECT type FROM t"
)
"""A coop's distinct event types, each the next one in ``log_entries_by_type``."""


def _author_number(coop: str, author: str) -> Any:
    """The number of ``author`` in ``coop`` (``log_authors``), as a scalar subquery: null,
    matching nothing, for an author without a chain."""
    a = schema.log_authors
    return select(a.c.id).where(a.c.coop == coop, a.c.did == author).scalar_subquery()


def _originator(coop: str, author: str) -> Any:
    """eventsourcing's originator id of an author's chain, as a scalar subquery."""
    a = schema.log_authors
    return (
        select(a.c.coop + "/" + cast(a.c.id, Text))
        .where(a.c.coop == coop, a.c.did == author)
        .scalar_subquery()
    )


def _entry(row: Any) -> LogEntry:
    """A row of ``_entry_query`` as a log entry."""
    return LogEntry(
        row.coop, row.leaf_index, row.event_id, unpack(bytes(row.state)), row.trusted_ms
    )


PAGE_SQL = (
    "SELECT group_concat(leaf_index, ','), group_concat(lower(hex(event_id)), ','),"
    " group_concat(ifnull(trusted_ms, ''), ','), group_concat(CAST(state AS TEXT), char(10))"
    " FROM (SELECT e.leaf_index, e.event_id, s.state, e.trusted_ms FROM log_entries e"
    " JOIN stored_events s ON s.originator_id = e.coop || '/' || e.author"
    " AND s.originator_version = e.seq WHERE e.coop = ? AND e.leaf_index > ?"
    " ORDER BY e.leaf_index LIMIT ?)"
)
"""An unfiltered SQLite page as one row (see :func:`_page_in_one_row`), as fixed SQL: built
and compiled by SQLAlchemy per call, the same statement cost 1.26 ms of GIL-held CPU per
100-event page, sent as it is 0.39 ms (20,000-event log), and a page is what a busy node
reads most."""


def _entry_query() -> Any:
    """Log rows joined with their stored events: what a :class:`LogEntry` is made of."""
    e, s = schema.log_entries, stored_events
    return select(e.c.coop, e.c.leaf_index, e.c.event_id, s.c.state, e.c.trusted_ms).join(
        s,
        and_(
            s.c.originator_id == e.c.coop + "/" + cast(e.c.author, Text),
            s.c.originator_version == e.c.seq,
        ),
    )


_range_engines: dict[str, Engine] = {}
"""One read engine per store per process, for the :class:`LogRanges` handed to it."""


class LogRanges:
    """Reads of a stored log by leaf range that another process can make on its own
    connection: an audit's workers read their units themselves, so the caller neither
    reads nor ships every event (see :mod:`icn.application.audit_units`).

    In the store's own process it reads on the store's engine; pickled, it is its
    :class:`Database` only, and the engine is made once per (worker) process.
    """

    def __init__(self, database: Database, engine: Engine | None = None) -> None:
        self.database = database
        self._local = engine

    def __getstate__(self) -> dict[str, Any]:
        return {"database": self.database, "_local": None}

    def _engine(self) -> Engine:
        if self._local is not None:
            return self._local
        key = self.database.url.render_as_string(hide_password=False)
        engine = _range_engines.get(key)
        if engine is None:
            engine = _range_engines[key] = self.database.read_engine()
        return engine

    def _rows(self, query: Any, coop: str, start: int, stop: int) -> list[Any]:
        e = schema.log_entries
        where = and_(e.c.coop == coop, e.c.leaf_index >= start, e.c.leaf_index < stop)
        with self._engine().connect() as conn:
            return list(conn.execute(query.where(where).order_by(e.c.leaf_index)).all())

    def entries(self, coop: str, start: int, stop: int) -> list[LogEntry]:
        """The entries at leaves ``start`` to ``stop`` (one query: callers keep ranges small)."""
        return [_entry(row) for row in self._rows(_entry_query(), coop, start, stop)]

    def stored_node_rows(self, coop: str, start: int, stop: int) -> list[tuple[int, bytes]]:
        """Each leaf's persisted subtree hashes for leaves ``start`` to ``stop``."""
        return [_served(row) for row in self._rows(_node_rows_query(), coop, start, stop)]


def _checkpoint(r: Any) -> StoredCheckpoint:
    """A row of ``checkpoints``."""
    return StoredCheckpoint(
        event_id=r.event_id,
        coop=r.coop,
        author=r.author,
        size=r.size,
        root=r.root,
        note=r.note,
        leaf_index=r.leaf_index,
    )


def _page_in_one_row(engine: Engine, coop: str, query: Any) -> list[LogEntry]:
    """A page of entries from SQLite as one aggregated row.

    Python's sqlite3 releases the GIL for every ``sqlite3_step``, i.e. every row,
    and takes it back after; while the node writes, another thread holds the GIL
    and each take-back waits up to the switch interval (5 ms). A 100-row page then
    waited for the GIL ~100 times: py-spy put the read threads in ``fetchall``, and
    ``bench/api.py`` measured reads p99 259.6 ms while batches posted (13.4 ms
    without). One row is one step. Canonical JSON has no raw newline, so the
    wires are joined by one; rows are sorted again by leaf here, since SQLite does
    not promise ``group_concat``'s order (3.40 has no ``ORDER BY`` inside it).
    ``query`` is a SQLAlchemy select, or ``(PAGE_SQL, parameters)``.
    """
    with engine.connect() as conn:
        if isinstance(query, tuple):
            result = conn.exec_driver_sql(*query)
        else:
            sub = query.subquery()
            result = conn.execute(
                select(
                    func.group_concat(sub.c.leaf_index, ","),
                    func.group_concat(func.lower(func.hex(sub.c.event_id)), ","),
                    func.group_concat(func.ifnull(sub.c.trusted_ms, ""), ","),
                    func.group_concat(cast(sub.c.state, Text), "\n"),
                )
            )
        leaves, ids, times, wires = result.one()
    if leaves is None:
        return []
    rows = sorted(
        zip(map(int, leaves.split(",")), ids.split(","), times.split(","), wires.split("\n"),
            strict=True)
    )  # fmt: skip
    return [LogEntry(coop, i, eid, w.encode(), int(t) if t else None) for i, eid, t, w in rows]


Progress = Callable[[str, int], AbstractContextManager[Callable[[int], None]]]
"""A progress display: ``progress(label, total)`` gives ``advance(n)`` while it is open."""

MIGRATE_ROWS = 50_000
"""Log rows copied per statement when a store's log is rewritten (one progress step)."""


def _node_rows_query() -> Any:
    """Each leaf's ``nodes`` and its upper hashes' row, if any (for :func:`_served`)."""
    t, u = schema.log_entries, schema.log_upper_nodes
    joined = t.outerjoin(u, and_(u.c.coop == t.c.coop, u.c.leaf_index == t.c.leaf_index))
    return select(t.c.leaf_index, t.c.nodes, u.c.nodes.label("upper")).select_from(joined)


def _served(row: Any) -> tuple[int, bytes]:
    """(leaf, the hashes it completed) for an audit, which compares them with the tree it
    recomputes. Proofs read the upper levels from ``log_upper_nodes``, the rest from
    ``log_entries``: where the two copies of the upper levels differ, both are given, one
    after the other, which no recomputed row equals, so damage to either copy fails it."""
    nodes = bytes(row.nodes)
    if row.upper is not None and bytes(row.upper) != nodes[32 * schema.UPPER_LEVEL :]:
        nodes += bytes(row.upper)
    return row.leaf_index, nodes


def _create(engine: Engine, progress: Progress | None = None) -> list[str]:
    """Upgrade stale read-model layouts and the log's event ids, create what is missing,
    note the layouts."""
    from icn.projections.catalogue import PROJECTIONS

    writers = [(p.name, [t.name for t in p.tables]) for p in PROJECTIONS]
    with engine.begin() as conn:
        rebuild = _read_schema.upgrade_layouts(conn, writers)
    migrate_log(engine, progress)
    schema.metadata.create_all(engine)
    _add_missing_columns(engine)
    hash_id_index(engine, progress)
    compact_stored_events(engine, progress)
    upper_nodes.backfill(engine)
    with engine.begin() as conn:
        _read_schema.record_layouts(conn)
    return rebuild


def _log_layout(engine: Engine) -> tuple[bool, bool, bool]:
    """(``log_entries.event_id`` is hex text, it has ``trusted_ms``, ``author`` is DID text)."""
    from sqlalchemy import inspect as inspect_db

    with engine.connect() as conn:
        tables = inspect_db(conn)
        if "log_entries" not in tables.get_table_names():
            return False, True, False
        columns = {c["name"]: c["type"] for c in tables.get_columns("log_entries")}
    return (
        not isinstance(columns["event_id"], LargeBinary),
        "trusted_ms" in columns,
        not isinstance(columns["author"], Integer),
    )


NUMBER_AUTHORS = (
    "INSERT INTO log_authors (coop, did) SELECT coop, author FROM {table}"
    " GROUP BY coop, author ORDER BY MIN(leaf_index)"
)
"""Numbers for the authors of a log made before ``log_authors`` (first seen, first numbered)."""


def _renumber_chains(
    execute: Callable[[str, tuple[Any, ...]], Any],
    authors: Sequence[Any],
    advance: Callable[[int], None] | None,
) -> None:
    """Rename each author's chain in ``stored_events`` from ``coop/DID`` to ``coop/number``:
    one statement per author, a range of the library's primary key."""
    for number, coop, did in authors:
        done = execute(
            "UPDATE stored_events SET originator_id = ? WHERE originator_id = ?",
            (f"{coop}/{number}", f"{coop}/{did}"),
        )
        if advance is not None:
            advance(done.rowcount)


def migrate_log(engine: Engine, progress: Progress | None = None) -> bool:
    """Rewrite a log an earlier release made, in one transaction (a crash leaves the old
    log whole): event ids as hex text become their 32 bytes (storage cut 2, issue 13),
    authors named by DID become numbers (``log_authors``, cut 4) in ``log_entries`` and
    in ``stored_events``' chain keys.

    SQLite: ``log_entries`` is renamed, made anew and copied in steps of
    :data:`MIGRATE_ROWS` rows; PostgreSQL: ``ALTER TABLE … TYPE``. ``progress`` shows
    each step. Returns whether there was anything to do.
    """
    text_ids, has_trusted, text_authors = _log_layout(engine)
    if not (text_ids or text_authors):
        return False
    if engine.dialect.name != "sqlite":
        _migrate_postgres(engine, text_ids, text_authors, progress)
        return True
    import sqlite3

    from sqlalchemy.schema import CreateIndex, CreateTable

    ddl = [str(CreateTable(schema.log_entries).compile(engine))] + [
        str(CreateIndex(i).compile(engine))
        for i in schema.log_entries.indexes
        if i.name != schema.ID_INDEX  # PostgreSQL's; SQLite has the unique constraint
    ]
    authors_ddl = [str(CreateTable(schema.log_authors, if_not_exists=True).compile(engine))] + [
        str(CreateIndex(i, if_not_exists=True).compile(engine)) for i in schema.log_authors.indexes
    ]
    columns = "coop, leaf_index, event_id, author, seq, type, ts, nodes, trusted_ms"
    old = (
        "o.coop, o.leaf_index, "
        + ("icn_unhex(o.event_id)" if text_ids else "o.event_id")
        + ", "
        + (
            "(SELECT a.id FROM log_authors a WHERE a.coop = o.coop AND a.did = o.author)"
            if text_authors
            else "o.author"
        )
        + ", o.seq, o.type, o.ts, o.nodes, "
        + ("o.trusted_ms" if has_trusted else "NULL")
    )
    db = sqlite3.connect(
        engine.url.database or "", isolation_level=None, timeout=SQLITE_LOCK_TIMEOUT_S
    )
    try:
        db.create_function("icn_unhex", 1, bytes.fromhex, deterministic=True)
        db.execute("BEGIN IMMEDIATE")
        db.execute("ALTER TABLE log_entries RENAME TO log_entries_old")
        for index in schema.log_entries.indexes:
            db.execute(f"DROP INDEX IF EXISTS {index.name}")
        for statement in ddl:
            db.execute(statement)
        spans = db.execute(
            "SELECT coop, count(*), max(leaf_index) FROM log_entries_old GROUP BY coop"
        ).fetchall()
        total = sum(n for _, n, _ in spans)
        if text_authors:
            for statement in authors_ddl:
                db.execute(statement)
            db.execute(NUMBER_AUTHORS.format(table="log_entries_old"))
            authors = db.execute("SELECT id, coop, did FROM log_authors").fetchall()
            with progress("chain keys", total) if progress else nullcontext(None) as advance:
                _renumber_chains(db.execute, authors, advance)
        label = "log ids" if text_ids else "log authors"
        with progress(label, total) if progress else nullcontext(None) as advance:
            for coop, _, last in spans:
                for start in range(0, last + 1, MIGRATE_ROWS):
                    done = db.execute(
                        f"INSERT INTO log_entries ({columns}) SELECT {old}"
                        " FROM log_entries_old o WHERE o.coop = ? AND o.leaf_index >= ?"
                        " AND o.leaf_index < ?",
                        (coop, start, start + MIGRATE_ROWS),
                    )
                    if advance is not None:
                        advance(done.rowcount)
        db.execute("DROP TABLE log_entries_old")
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    finally:
        db.close()
    return True


def _migrate_postgres(
    engine: Engine, text_ids: bool, text_authors: bool, progress: Progress | None
) -> None:
    """:func:`migrate_log` on PostgreSQL: one transaction, then a ``VACUUM`` of the chain
    keys' old rows (eventsourcing's table leaves autovacuum to 100 million dead rows)."""
    with engine.begin() as conn:
        total = int(conn.exec_driver_sql("SELECT count(*) FROM log_entries").scalar() or 0)
        if text_authors:
            schema.log_authors.create(conn, checkfirst=True)
            conn.exec_driver_sql(NUMBER_AUTHORS.format(table="log_entries"))
            authors = conn.exec_driver_sql("SELECT id, coop, did FROM log_authors").all()
            with progress("chain keys", total) if progress else nullcontext(None) as advance:
                _renumber_chains(
                    lambda sql, p: conn.exec_driver_sql(sql.replace("?", "%s"), p),
                    authors,
                    advance,
                )
            conn.exec_driver_sql(
                "CREATE FUNCTION pg_temp.icn_author_number(c text, d text) RETURNS bigint"
                " LANGUAGE sql STABLE AS $$SELECT id FROM log_authors"
                " WHERE coop = c AND did = d$$"
            )
            with progress("log authors", total) if progress else nullcontext(None) as advance:
                conn.exec_driver_sql(
                    "ALTER TABLE log_entries ALTER COLUMN author TYPE bigint"
                    " USING pg_temp.icn_author_number(coop, author)"
                )
                if advance is not None:
                    advance(total)
        if text_ids:
            with progress("log ids", total) if progress else nullcontext(None) as advance:
                conn.exec_driver_sql(
                    "ALTER TABLE log_entries ALTER COLUMN event_id TYPE bytea"
                    " USING decode(event_id, 'hex')"
                )
                if advance is not None:
                    advance(total)
    if text_authors:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM stored_events")


def hash_id_index(engine: Engine, progress: Progress | None = None) -> bool:
    """On PostgreSQL, replace ``log_entries``' unique B-tree of event ids (stores made
    before storage cut 3, issue 13) with the hash index :data:`schema.ID_INDEX`, in one
    transaction (building it reads the table once; ``progress`` shows it). Returns
    whether there was anything to do.
    """
    if engine.dialect.name != "postgresql":
        return False
    with engine.begin() as conn:
        unique = [
            name
            for (name,) in conn.exec_driver_sql(
                "SELECT conname FROM pg_constraint"
                " WHERE conrelid = 'log_entries'::regclass AND contype = 'u'"
            )
        ]
        has_index = conn.exec_driver_sql(
            "SELECT 1 FROM pg_indexes WHERE tablename = 'log_entries' AND indexname = %s",
            (schema.ID_INDEX,),
        ).first()
        if not unique and has_index:
            return False
        total = int(conn.exec_driver_sql("SELECT count(*) FROM log_entries").scalar() or 0)
        with progress("log id index", total) if progress else nullcontext(None) as advance:
            for name in unique:
                conn.exec_driver_sql(f'ALTER TABLE log_entries DROP CONSTRAINT "{name}"')
            conn.exec_driver_sql(
                f"CREATE INDEX IF NOT EXISTS {schema.ID_INDEX} ON log_entries USING hash (event_id)"
            )
            if advance is not None:
                advance(total)
    return True


WIRE_META = "stored-events"
"""``node_meta`` key: ``cut-5`` once a PostgreSQL store's ``stored_events`` has no
``notification_id`` and every wire is packed (``wire_packing``); absent in stores made
before (storage cut 5, issue 13)."""
CUT_5 = "cut-5"
PACK_ROWS = 500
"""Stored events packed per statement when a PostgreSQL store is rewritten."""


def compact_stored_events(engine: Engine, progress: Progress | None = None) -> bool:
    """On PostgreSQL, bring ``stored_events`` of a store made before storage cut 5 (issue
    13) to its layout: drop the application recorder's ``notification_id`` (and with it
    its sequence and unique index) and pack the wire of every stored event still held
    verbatim; then note it in ``node_meta``, so later opens skip it with one point read.
    Returns whether anything was rewritten.

    One transaction under the recorder's table lock (a crash leaves the table as it was;
    readers take either form of a wire), keyset pages of the library's primary key,
    ``progress`` per page; then ``VACUUM FULL``, since the old rows would stay as dead
    space of the table's full size that only new events fill. A new store has neither
    and only gets the note.
    """
    if engine.dialect.name != "postgresql":
        return False
    noted = "SELECT value FROM node_meta WHERE key = %s"
    with engine.connect() as conn:
        if conn.exec_driver_sql(noted, (WIRE_META,)).scalar() == CUT_5:
            return False
    done = 0
    with engine.begin() as conn:
        conn.exec_driver_sql("LOCK TABLE stored_events IN EXCLUSIVE MODE")
        if conn.exec_driver_sql(noted, (WIRE_META,)).scalar() == CUT_5:
            return False  # another process did it while this one waited
        dropped = conn.exec_driver_sql(
            "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema()"
            " AND table_name = 'stored_events' AND column_name = 'notification_id'"
        ).first()
        if dropped:
            conn.exec_driver_sql("ALTER TABLE stored_events DROP COLUMN notification_id")
        total = int(conn.exec_driver_sql("SELECT count(*) FROM stored_events").scalar() or 0)
        with (
            progress("stored wires", total) if progress and total else nullcontext(None)
        ) as advance:
            key: tuple[str, int] = ("", -1)
            while True:
                rows = conn.exec_driver_sql(
                    "SELECT originator_id, originator_version, state FROM stored_events"
                    " WHERE (originator_id, originator_version) > (%s, %s)"
                    " ORDER BY originator_id, originator_version LIMIT %s",
                    (*key, PACK_ROWS),
                ).all()
                if not rows:
                    break
                key = (rows[-1][0], int(rows[-1][1]))
                raw = [(o, int(v), pack(bytes(w))) for o, v, w in rows if bytes(w[:1]) == b"{"]
                if raw:
                    conn.exec_driver_sql(
                        "UPDATE stored_events s SET state = v.state FROM (VALUES "
                        + ", ".join(["(%s, %s::bigint, %s::bytea)"] * len(raw))
                        + ") AS v(id, version, state)"
                        " WHERE s.originator_id = v.id AND s.originator_version = v.version",
                        tuple(x for row in raw for x in row),
                    )
                    done += len(raw)
                if advance is not None:
                    advance(len(rows))
        conn.exec_driver_sql(
            "INSERT INTO node_meta (key, value) VALUES (%s, %s)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (WIRE_META, CUT_5),
        )
    if done or dropped:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM FULL stored_events")
    return bool(done or dropped)


def _add_missing_columns(engine: Engine) -> None:
    """Give a store made by an earlier release the columns added since (nullable, so
    its rows stay as they were) and the indexes."""
    from sqlalchemy import inspect as inspect_db
    from sqlalchemy import text

    with engine.begin() as conn:
        tables = inspect_db(conn)
        for table, columns in schema.ADDED_COLUMNS.items():
            have = {c["name"] for c in tables.get_columns(table)}
            for name, sql_type in columns:
                if name not in have:
                    conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {name} {sql_type}"))
        for index in schema.ADDED_INDEXES:
            index.create(conn, checkfirst=True)


class _NoAutocheckpointPool(SQLiteConnectionPool):
    """eventsourcing's SQLite pool whose connections leave WAL checkpoints to the node's
    :class:`~icn.infrastructure.store.wal.WalCheckpointer`."""

    def _create_connection(self) -> SQLiteConnection:
        connection = super()._create_connection()
        with connection.cursor() as cursor:
            cursor.execute(AUTOCHECKPOINT_OFF)
        return connection


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
            if not database.autocheckpoint:
                self._datastore.pool = _NoAutocheckpointPool(
                    db_name=database.sqlite_path, lock_timeout=SQLITE_LOCK_TIMEOUT_S
                )
            self._recorder: Any = IcnSQLiteRecorder(self._datastore)
            self._ph = "?"
        else:
            from eventsourcing.postgres import PostgresDatastore

            from icn.infrastructure.store.recorders_postgres import IcnPostgresRecorder

            p = database.postgres_params()
            self._datastore = PostgresDatastore(
                dbname=p["dbname"],
                host=p["host"],
                port=p["port"],
                user=p["user"],
                password=p["password"],
                originator_id_type="text",
                pool_size=4,
                max_overflow=4,
                lock_timeout=30,
            )
            self._recorder = IcnPostgresRecorder(self._datastore)
            self._ph = "%s"
        self.engine: Engine = database.read_engine()

    # -- lifecycle -----------------------------------------------------------

    def create_tables(self, progress: Progress | None = None) -> list[str]:
        """Create eventsourcing's table and ours if missing (idempotent).

        Read-model tables made by a release with another layout are dropped and made
        anew (:func:`~icn.infrastructure.store.read_schema.upgrade_layouts`); returns
        the projections whose read models the next catch-up rebuilds from the log. A
        log with hex-text event ids is rewritten first (:func:`migrate_log`, shown
        by ``progress``), and a store made before the history of standings gets the rows of
        the epochs it published (:func:`~icn.infrastructure.store.standing_history.backfill`).
        """
        self._recorder.create_table()
        if self.database.is_sqlite:
            # The read engine is query-only; create with a plain writer engine.
            from sqlalchemy import create_engine

            writer = create_engine(f"sqlite+pysqlite:///{self.database.sqlite_path}")
            try:
                rebuild = _create(writer, progress)
                standing_history.backfill(self, writer, progress)
                return rebuild
            finally:
                writer.dispose()
        rebuild = _create(self.engine, progress)
        standing_history.backfill(self, self.engine, progress)
        return rebuild

    def close(self) -> None:
        """Release connections."""
        self.engine.dispose()
        self._datastore.close()

    # -- write path ----------------------------------------------------------

    def append_decided(self, chains: Iterable[tuple[str, str]], decide: Decide) -> list[int]:
        """Decide and store in one transaction (see the port's docstring)."""
        unit = LogUnit(chains, decide)
        try:
            with self.database.write_turn():
                self._recorder.append_unit(unit)
        except (IntegrityError, WriteTurnTimeout) as exc:
            raise ConcurrentAppend(str(exc)) from None
        except OperationalError as exc:
            if "locked" in str(exc) or "lock timeout" in str(exc):
                raise ConcurrentAppend(str(exc)) from None
            raise StoreError(str(exc)) from exc
        return unit.positions

    def append(
        self, accepted: Sequence[Accepted], forks: Sequence[ForkEvidence], received_ms: int
    ) -> list[int]:
        """Store a decision made elsewhere; uniqueness rules still refuse a second seq."""
        if not accepted and not forks:
            return []
        decision = Decision(accepted, forks, received_ms)
        chains = {(a.event.coop, a.event.author) for a in accepted}
        return self.append_decided(chains, lambda _view: decision)

    # -- chain reads -----------------------------------------------------------

    def head(self, coop: str, author: str) -> ChainHead | None:
        """The author's last accepted event in ``coop``: the originator's highest version."""
        s = stored_events
        with self.engine.connect() as conn:
            row = conn.execute(
                select(s.c.originator_version, s.c.state)
                .where(s.c.originator_id == _originator(coop, author))
                .order_by(s.c.originator_version.desc())
                .limit(1)
            ).first()
        if row is None:
            return None
        fields = head_of(bytes(row.state))
        return ChainHead(row.originator_version, fields.id, fields.ts)

    def id_at(self, coop: str, author: str, seq: int) -> str | None:
        """The id accepted at ``seq`` of a chain."""
        s = stored_events
        with self.engine.connect() as conn:
            state = conn.execute(
                select(s.c.state).where(
                    s.c.originator_id == _originator(coop, author), s.c.originator_version == seq
                )
            ).scalar()
        return id_of(bytes(state)) if state is not None else None

    # -- log reads (SQLAlchemy) ------------------------------------------------

    def tree_size(self, coop: str) -> int:
        """Number of events in the coop's log."""
        with self.engine.connect() as conn:
            size = conn.execute(
                select(schema.log_trees.c.size).where(schema.log_trees.c.coop == coop)
            ).scalar()
        return int(size or 0)

    def _with_nodes(self, conn: Any, coop: str, compute: Callable[[merkle.NodeGetter], T]) -> T:
        """``compute(get)`` with every node it asks for read in one statement.

        Which nodes a root or proof needs depends on the sizes and indexes only, never on
        the hashes, so a first run with placeholder hashes names them; the O(log n) rows
        are then read at once (PostgreSQL: one round trip instead of one per node).
        """
        t, u, upper = schema.log_entries, schema.log_upper_nodes, schema.UPPER_LEVEL
        lower: set[int] = set()
        higher: set[int] = set()

        def record(level: int, idx: int) -> bytes:
            leaf = ((idx + 1) << level) - 1  # the leaf that completed this subtree
            (higher if level >= upper else lower).add(leaf)
            return bytes(32)

        compute(record)

        # Upper hashes from their small table (level `upper` first), lower ones from the
        # log's rows (level 0 first), in one statement; an upper row the table lacks (it
        # cannot, since rows are written with their leaf) is read from the log's row.
        def rows_of(table: Any, is_upper: bool, leaves: set[int]) -> Any:
            return select(literal(is_upper), table.c.leaf_index, table.c.nodes).where(
                table.c.coop == coop, table.c.leaf_index.in_(sorted(leaves))
            )

        parts = [rows_of(u, True, higher)] if higher else []
        parts += [rows_of(t, False, lower)] if lower else []
        found: dict[tuple[bool, int], bytes] = {}
        statement = parts[0] if len(parts) == 1 else union_all(*parts)
        for is_upper, leaf, nodes in conn.execute(statement) if parts else ():
            found[(bool(is_upper), leaf)] = bytes(nodes)
        lacking = {leaf for leaf in higher if (True, leaf) not in found}
        if lacking:
            for _, leaf, nodes in conn.execute(rows_of(t, False, lacking)):
                found[(False, leaf)] = bytes(nodes)

        def get(level: int, idx: int) -> bytes:
            last_leaf = ((idx + 1) << level) - 1
            at = level - upper
            nodes = found.get((True, last_leaf)) if at >= 0 else None
            if nodes is None:
                at, nodes = level, found.get((False, last_leaf))
            if nodes is None:
                raise StoreError(f"log entry {last_leaf} of {coop} is missing")
            if len(nodes) < 32 * (at + 1):
                raise StoreError(f"merkle node ({level}, {idx}) of {coop} is missing")
            return nodes[32 * at : 32 * (at + 1)]

        return compute(get)

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
            return self._with_nodes(conn, coop, lambda get: merkle.root(get, size))

    def inclusion_proof(self, coop: str, index: int, size: int) -> list[bytes]:
        """Inclusion proof, O(log n) node reads."""
        with self.engine.connect() as conn:
            self._check_size(conn, coop, size)
            return self._with_nodes(
                conn, coop, lambda get: merkle.inclusion_proof(get, index, size)
            )

    def consistency_proof(self, coop: str, size1: int, size2: int) -> list[bytes]:
        """Consistency proof, O(log n) node reads."""
        with self.engine.connect() as conn:
            self._check_size(conn, coop, size2)
            return self._with_nodes(
                conn, coop, lambda get: merkle.consistency_proof(get, size1, size2)
            )

    def _entry_query(self) -> Any:
        return _entry_query()

    def find(self, event_id: str) -> LogEntry | None:
        """An event by id."""
        with self.engine.connect() as conn:
            row = conn.execute(
                self._entry_query().where(schema.log_entries.c.event_id == event_id)
            ).first()
        return _entry(row) if row else None

    def _paged(self, query: Any, coop: str, start: int, stop: int | None) -> Iterator[Any]:
        """Rows of ``query`` for leaves ``start`` to ``stop`` of ``coop``, in leaf order, read
        :data:`PAGE` at a time by keyset (leaf index), each page on its own connection.

        A log only grows: one result set for all of it would hold the whole log in
        memory (SQLAlchemy buffers a result) and keep one read snapshot open for as
        long as the reader takes; a page is bounded, and no page re-scans the leaves
        before it (the ``(coop, leaf_index)`` key).
        """
        e = schema.log_entries
        while True:
            where = and_(e.c.coop == coop, e.c.leaf_index >= start)
            if stop is not None:
                where = and_(where, e.c.leaf_index < stop)
            with self.engine.connect() as conn:
                rows = conn.execute(query.where(where).order_by(e.c.leaf_index).limit(PAGE)).all()
            yield from rows
            if len(rows) < PAGE:
                return
            start = rows[-1].leaf_index + 1

    def entries(self, coop: str, start: int = 0, stop: int | None = None) -> Iterator[LogEntry]:
        """The coop's log in order, streamed in pages so memory stays flat."""
        for row in self._paged(self._entry_query(), coop, start, stop):
            yield _entry(row)

    def page(
        self,
        coop: str,
        *,
        after: int = -1,
        limit: int = 100,
        type_prefix: str | None = None,
        author: str | None = None,
    ) -> list[LogEntry]:
        """Up to ``limit`` entries after leaf ``after``, filtered by type prefix and author.

        Each filter is answered from its index (``log_entries_by_author``,
        ``log_entries_by_type``), never by walking the coop's entries: a type
        prefix becomes one index range per type in the coop that it matches
        (see :meth:`_types`), each cut at ``limit``, merged by leaf.
        """
        if self.database.is_sqlite and not (type_prefix or author):
            return _page_in_one_row(self.engine, coop, (PAGE_SQL, (coop, after, limit)))
        e = schema.log_entries
        base = self._entry_query().where(e.c.coop == coop, e.c.leaf_index > after)
        if type_prefix and not author:
            types = [t for t in self._types(coop) if t.startswith(type_prefix)]
            if not types:
                return []
            arms = [
                select(base.where(e.c.type == t).order_by(e.c.leaf_index).limit(limit).subquery())
                for t in types
            ]
            merged = (union_all(*arms) if len(arms) > 1 else arms[0]).subquery()
            query = select(merged).order_by(merged.c.leaf_index).limit(limit)
        else:
            if author:
                base = base.where(e.c.author == _author_number(coop, author))
            if type_prefix:
                base = base.where(e.c.type.startswith(type_prefix, autoescape=True))
            query = base.order_by(e.c.leaf_index).limit(limit)
        if self.database.is_sqlite:
            return _page_in_one_row(self.engine, coop, query)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [_entry(r) for r in rows]

    def _types(self, coop: str) -> list[str]:
        """The distinct event types in the coop's log, by a loose scan of the type index:
        one index descent per type (there are a few dozen), not a read of every entry."""
        with self.engine.connect() as conn:
            return [
                t
                for (t,) in conn.exec_driver_sql(TYPES_SQL.replace("?", self._ph), (coop, coop))
                if t is not None
            ]

    def coops(self) -> list[str]:
        """Coops with at least one event."""
        with self.engine.connect() as conn:
            return list(
                conn.execute(select(schema.log_trees.c.coop).order_by(schema.log_trees.c.coop))
                .scalars()
                .all()
            )

    def checkpoints(
        self, coop: str, author: str | None = None, *, from_leaf: int = 0
    ) -> list[StoredCheckpoint]:
        """Checkpoint events of a coop in log order, from leaf ``from_leaf``."""
        t = schema.checkpoints
        query = select(t).where(t.c.coop == coop, t.c.leaf_index >= from_leaf)
        if author is not None:
            query = query.where(t.c.author == author)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(t.c.leaf_index)).all()
        return [_checkpoint(r) for r in rows]

    def latest_checkpoint(self, coop: str, author: str) -> StoredCheckpoint | None:
        """The author's last checkpoint: the end of ``checkpoints_by_author`` (an author's
        checkpoints only grow in size), not a read of every one (one per 1,000 events)."""
        t = schema.checkpoints
        with self.engine.connect() as conn:
            row = conn.execute(
                select(t)
                .where(t.c.coop == coop, t.c.author == author)
                .order_by(t.c.size.desc(), t.c.leaf_index.desc())
                .limit(1)
            ).first()
        return _checkpoint(row) if row is not None else None

    def quarantined(self, coop: str) -> list[ForkEvidence]:
        """Fork evidence held for a coop."""
        t = schema.quarantine
        with self.engine.connect() as conn:
            rows = conn.execute(select(t).where(t.c.coop == coop).order_by(t.c.id)).all()
        return [
            ForkEvidence(decode_stored(bytes(r.wire)), bytes(r.wire), r.conflicts_with)
            for r in rows
        ]

    def stored_nodes(self, coop: str) -> dict[tuple[int, int], bytes]:
        """Every persisted complete-subtree hash of a coop, keyed (level, idx)."""
        t = schema.log_entries
        out: dict[tuple[int, int], bytes] = {}
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.c.leaf_index, t.c.nodes).where(t.c.coop == coop))
            for leaf, blob in rows:
                nodes = bytes(blob)
                for level in range(len(nodes) // 32):
                    out[(level, leaf >> level)] = nodes[32 * level : 32 * (level + 1)]
        return out

    def log_ranges(self) -> LogRanges:
        """A reader of this log by leaf range for another process (an audit's workers)."""
        return LogRanges(self.database, self.engine)

    def stored_node_rows(
        self, coop: str, start: int = 0, stop: int | None = None
    ) -> Iterator[tuple[int, bytes]]:
        """Each leaf's persisted subtree hashes, in leaf order, read in pages."""
        for row in self._paged(_node_rows_query(), coop, start, stop):
            yield _served(row)

    def state_get(self, coop: str, kind: str, key: str) -> bytes | None:
        """One committed record of the coop rules' state."""
        t = schema.coop_state
        with self.engine.connect() as conn:
            value = conn.execute(
                select(t.c.value).where(t.c.coop == coop, t.c.kind == kind, t.c.key == key)
            ).scalar()
        return bytes(value) if value is not None else None

    def state_records(self, coop: str, kind: str) -> list[tuple[str, bytes]]:
        """Every committed record of one kind in ``coop``, by key."""
        t = schema.coop_state
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t.c.key, t.c.value)
                .where(t.c.coop == coop, t.c.kind == kind)
                .order_by(t.c.key)
            ).all()
        return [(r.key, bytes(r.value)) for r in rows]

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
