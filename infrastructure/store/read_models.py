"""The read models on SQL: projection rows, tracking positions, queries, and replay's snapshot.

Writes go through a connection of their own (on SQLite one that opens with
``BEGIN IMMEDIATE``, so the write lock is held from the first statement and
a runner never fails to upgrade a read lock). A batch is one transaction:
every projection's position moves first, each by ``UPDATE … WHERE position
= <old>``; if any of them does not match, another runner got there first and
the whole transaction is rolled back. Then the summed counters are added
(``INSERT … ON CONFLICT … DO UPDATE SET v = v + excluded.v``) and the new
rows inserted, as multi-row statements of a few hundred rows each: psycopg's
``executemany`` runs in pipeline mode, which hangs on large batches (see
docs/storage.md), and one statement per few hundred rows is fast on both.

Member DIDs are stored as account numbers (``read_accounts``, see
:mod:`~icn.infrastructure.store.read_schema`): a batch's new (coop, DID) pairs get
theirs in the same transaction, and every row is written and read back in the
projections' shapes, DIDs and all.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, String, Text, and_, create_engine, event, func, select
from sqlalchemy.engine import URL, Connection
from sqlalchemy.sql.elements import ColumnElement

from icn.application.ports import LogEntry
from icn.infrastructure.store import ledger_holds_schema as hs
from icn.infrastructure.store import read_schema as rs
from icn.infrastructure.store import schema, standing_history
from icn.infrastructure.store.database import SQLITE_LOCK_TIMEOUT_S, Database
from icn.infrastructure.store.event_store import SqlEventStore
from icn.infrastructure.store.member_names import current_names
from icn.infrastructure.store.wal import AUTOCHECKPOINT_OFF
from icn.infrastructure.store.wire_packing import unpack
from icn.projections.catalogue import PROJECTIONS
from icn.projections.ledger import MAX_TRANSACTIONS
from icn.projections.ledger_views import (
    BalanceRow,
    HistoryQuery,
    HistoryRow,
    HoldRow,
    TotalsRow,
)
from icn.projections.ports import AppendTable, Changes, Key, Move, Row, SumTable, Table
from icn.projections.replay import ReplayReport, replay
from icn.projections.runner import CatchUp, Runner

ROWS_PER_STATEMENT = 400
"""Rows per multi-row INSERT: 400 × 9 columns stays far below both databases' bind limits."""

WRITER_PRAGMAS = ("PRAGMA cache_size = -65536", "PRAGMA synchronous = NORMAL")
"""64 MiB of page cache for the runner's connection: a batch dirties pages all over the
member-clustered history (a few per transaction of a busy coop); with SQLite's 2 MiB
default they spill to the WAL before the commit, and catch-up runs at half the speed.

No sync of the WAL at a read-model commit (a node projects every commit of the log
before answering it): the log's own commits sync the WAL, and with it every frame
written before. A power cut can only take the read-model commits after the log's last
one, positions and rows together; the catch-up at the next start applies them again."""

SCRATCH_PRAGMAS = ("PRAGMA synchronous = OFF", "PRAGMA journal_mode = MEMORY")

PAGE = 2000
"""Log entries read per query."""

TABLES = {t.name: t for t in rs.READ_MODEL_TABLES}

if TYPE_CHECKING:
    from icn.application.append import CommittedEvent

log = logging.getLogger(__name__)

Account = tuple[str, str]
"""(coop, member DID): what an account number stands for."""


def _sqlite_engine(path: str, begin: str, pragmas: Sequence[str] = ()) -> Engine:
    """An SQLite engine whose transactions start with ``begin`` (SQLAlchemy's pysqlite recipe).

    The stdlib driver would otherwise run reads outside any transaction and
    open one only at the first write.
    """
    engine = create_engine(
        URL.create("sqlite+pysqlite", database=path),
        connect_args={"timeout": SQLITE_LOCK_TIMEOUT_S, "check_same_thread": False},
    )

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        dbapi_conn.isolation_level = None
        for pragma in pragmas:
            dbapi_conn.execute(pragma)

    @event.listens_for(engine, "begin")
    def _begin(conn):  # type: ignore[no-untyped-def]
        conn.exec_driver_sql(begin)

    return engine


def _folded(shape: Table) -> bool:
    """The SQL table keeps account numbers, the coop folded in: no ``coop`` column."""
    return bool(rs.accounts(TABLES[shape.name]))


def _sql_columns(shape: Table) -> tuple[str, ...]:
    columns = shape.key + shape.values
    return columns[1:] if _folded(shape) else columns


def _sql_key(shape: Table) -> tuple[str, ...]:
    return shape.key[1:] if _folded(shape) else shape.key


def check_shapes(tables: Sequence[Table]) -> None:
    """Each projection's table shape names exactly the columns of its SQL table (but the
    coop, in a table of account numbers: ``(coop, did, …)`` in the shape, ``(did, …)``
    in SQL)."""
    for shape in tables:
        sql = TABLES.get(shape.name)
        if sql is None:
            raise RuntimeError(f"no read-model table {shape.name}")
        if _folded(shape) and shape.key[:1] != ("coop",):
            raise RuntimeError(f"{shape.name}: a table of accounts needs the coop first")
        columns = _sql_columns(shape)
        if tuple(c.name for c in sql.columns) != columns:
            raise RuntimeError(f"{shape.name}: columns {columns} != {[c.name for c in sql.c]}")
        if tuple(c.name for c in sql.primary_key.columns) != _sql_key(shape):
            raise RuntimeError(f"{shape.name}: key {shape.key} is not the primary key")


check_shapes([t for p in PROJECTIONS for t in p.tables])


class SqlReadModels:
    """Read models on the node's database (or on a scratch SQLite file, for replay).

    Implements the projections' :class:`~icn.projections.ports.ReadModelStore`
    and :class:`~icn.projections.ports.ReadModelDump` and the views'
    :class:`~icn.projections.ledger_views.LedgerReads`.
    """

    def __init__(
        self, database: Database, *, reader: Engine | None = None, scratch: bool = False
    ) -> None:
        self.database = database
        self._owned: list[Engine] = []
        if database.is_sqlite:
            # A scratch copy is thrown away after use: no need to survive a power cut.
            pragmas = WRITER_PRAGMAS + (SCRATCH_PRAGMAS if scratch else ())
            if not database.autocheckpoint:
                pragmas += (AUTOCHECKPOINT_OFF,)
            self._writer = self._own(
                _sqlite_engine(database.sqlite_path, "BEGIN IMMEDIATE", pragmas)
            )
            self._reader = reader or self._own(database.read_engine())
        else:
            self._reader = reader or self._own(database.read_engine())
            self._writer = self._reader
        self._ph = "?" if database.is_sqlite else "%s"
        self._sql: dict[tuple[str, int], str] = {}
        self._accounts: dict[Account, int] = {}
        """Account numbers already committed (a number never changes once given)."""

    def _own(self, engine: Engine) -> Engine:
        self._owned.append(engine)
        return engine

    def create_tables(self) -> None:
        """The read-model tables alone (a scratch database for replay needs nothing else)."""
        schema.metadata.create_all(
            self._writer, tables=[rs.projection_positions, *rs.READ_MODEL_TABLES]
        )

    def close(self) -> None:
        """Release the connections this object opened."""
        for engine in self._owned:
            engine.dispose()

    # -- ReadModelStore ------------------------------------------------------------------

    def positions(self, coop: str) -> dict[str, int]:
        rows = self._point_read(
            "SELECT projection, position FROM projection_positions WHERE coop = ?", (coop,)
        )
        return {name: int(pos) for name, pos in rows}

    def _point_read(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        """A small read on a raw driver connection: the nothing-new path of ``catch_up``
        runs before every read request, and SQLAlchemy's statement layer would triple it."""
        conn = self._reader.raw_connection()
        try:
            cursor = conn.cursor()
            cursor.execute(sql.replace("?", self._ph), params)
            return list(cursor.fetchall())
        finally:
            conn.close()

    def log_size(self, coop: str) -> int:
        """The coop's log size (``log_trees``), by the same cheap point read."""
        rows = self._point_read("SELECT size FROM log_trees WHERE coop = ?", (coop,))
        return int(rows[0][0]) if rows else 0

    def commit(self, moves: Sequence[Move], changes: Changes) -> bool:
        given: dict[Account, int] = {}
        try:
            with self.database.write_turn(), self._writer.begin() as conn:
                for m in sorted(moves, key=lambda m: (m.coop, m.projection)):
                    if not self._move(conn, m):
                        raise _Lost
                for name, sums in changes.sums.items():
                    shape = _shape(name)
                    assert isinstance(shape, SumTable)
                    rows = [k + tuple(v) for k, v in sums.items()]
                    self._write(conn, shape, self._numbered(conn, shape, rows, given))
                for name, rows in changes.rows.items():
                    shape = _shape(name)
                    assert isinstance(shape, AppendTable)
                    self._write(conn, shape, self._numbered(conn, shape, rows, given))
        except _Lost:
            return False
        self._accounts.update(given)  # only numbers that committed
        return True

    def _numbered(
        self, conn: Connection, shape: Table, rows: Sequence[Row], given: dict[Account, int]
    ) -> Sequence[Row]:
        """Rows in the SQL table's layout: the coop dropped, member DIDs as account numbers."""
        sql = TABLES[shape.name]
        names = rs.accounts(sql)
        if not names:
            return rows
        columns = shape.key + shape.values
        at = [columns.index(n) for n in names]
        wanted = {(r[0], r[i]) for r in rows for i in at}
        missing = [a for a in wanted if a not in self._accounts and a not in given]
        if missing:
            given.update(self._number(conn, sorted(missing)))
        ids = {**self._accounts, **given}
        flags = [i in at for i in range(len(columns))]
        return [
            tuple(ids[(r[0], v)] if f else v for v, f in zip(r, flags, strict=True))[1:]
            for r in rows
        ]

    def _number(self, conn: Connection, accounts: Sequence[Account]) -> dict[Account, int]:
        """The account numbers of ``accounts``, giving each new one its own (in this
        transaction: a rolled-back batch gives none)."""
        p = self._ph
        out: dict[Account, int] = {}
        for i in range(0, len(accounts), ROWS_PER_STATEMENT):
            chunk = accounts[i : i + ROWS_PER_STATEMENT]
            conn.exec_driver_sql(
                "INSERT INTO read_accounts (coop, did) VALUES "
                + ", ".join([f"({p}, {p})"] * len(chunk))
                + " ON CONFLICT (coop, did) DO NOTHING",
                tuple(v for a in chunk for v in a),
            )
            by_coop: dict[str, list[str]] = {}
            for coop, did in chunk:
                by_coop.setdefault(coop, []).append(did)
            for coop, dids in by_coop.items():
                found = conn.exec_driver_sql(
                    f"SELECT did, id FROM read_accounts WHERE coop = {p}"
                    f" AND did IN ({', '.join([p] * len(dids))})",
                    (coop, *dids),
                )
                out.update({(coop, did): int(n) for did, n in found})
        if len(out) != len(accounts):
            raise RuntimeError("an account number was not given")
        return out

    def _move(self, conn: Connection, m: Move) -> bool:
        p = self._ph
        if m.before == -1:
            conn.exec_driver_sql(
                "INSERT INTO projection_positions (projection, coop, position)"
                f" VALUES ({p}, {p}, -1) ON CONFLICT (projection, coop) DO NOTHING",
                (m.projection, m.coop),
            )
        done = conn.exec_driver_sql(
            f"UPDATE projection_positions SET position = {p}"
            f" WHERE projection = {p} AND coop = {p} AND position = {p}",
            (m.after, m.projection, m.coop, m.before),
        )
        return bool(done.rowcount == 1)

    def _statement(self, shape: Table, n: int) -> str:
        """INSERT of ``n`` rows; for a sum table, one that adds to an existing row."""
        cached = self._sql.get((shape.name, n))
        if cached is not None:
            return cached
        columns = _sql_columns(shape)
        q = self._reader.dialect.identifier_preparer.quote
        group = "(" + ", ".join([self._ph] * len(columns)) + ")"
        sql = (
            f"INSERT INTO {shape.name} ({', '.join(q(c) for c in columns)})"
            f" VALUES {', '.join([group] * n)}"
        )
        if isinstance(shape, SumTable):
            adds = ", ".join(
                f"{q(v)} = {shape.name}.{q(v)} + excluded.{q(v)}" for v in shape.values
            )
            key = ", ".join(q(k) for k in _sql_key(shape))
            sql += f" ON CONFLICT ({key}) DO UPDATE SET {adds}"
        self._sql[(shape.name, n)] = sql
        return sql

    def _write(self, conn: Connection, shape: Table, rows: Sequence[Row]) -> None:
        for i in range(0, len(rows), ROWS_PER_STATEMENT):
            chunk = rows[i : i + ROWS_PER_STATEMENT]
            params = tuple(v for row in chunk for v in row)
            conn.exec_driver_sql(self._statement(shape, len(chunk)), params)

    # -- ReadModelDump ---------------------------------------------------------------------

    def rows(self, table: Table) -> Iterator[tuple[Key, Row]]:
        with self._reader.connect() as conn:
            yield from dump(conn, table)

    # -- LedgerReads -------------------------------------------------------------------------

    def balances(self, coop: str, did: str) -> list[BalanceRow]:
        t = rs.ledger_balances
        query = select(
            t.c.currency, t.c.balance, t.c.cleared_volume, t.c.debited_volume, t.c.entries
        ).where(t.c.did == _account(coop, did))
        with self._reader.connect() as conn:
            return [BalanceRow(*r) for r in conn.execute(query.order_by(t.c.currency))]

    def history(self, coop: str, did: str, query: HistoryQuery) -> list[HistoryRow]:
        t, other, log = rs.ledger_history, rs.read_accounts.alias("other"), schema.log_entries
        q = (
            select(
                t.c.cursor, log.c.event_id, other.c.did, t.c.amount, t.c.currency, t.c.memo,
                t.c.ts,
            )
            .select_from(
                t.join(other, other.c.id == t.c.counterparty).join(
                    log,
                    and_(
                        log.c.coop == coop,
                        log.c.leaf_index == t.c.cursor // MAX_TRANSACTIONS,
                    ),
                )
            )
            .where(t.c.did == _account(coop, did))
        )  # fmt: skip
        if query.currency is not None:
            q = q.where(t.c.currency == query.currency)
        if query.counterparty is not None:
            q = q.where(t.c.counterparty == _account(coop, query.counterparty))
        if query.since is not None:
            q = q.where(t.c.ts >= query.since)
        if query.until is not None:
            q = q.where(t.c.ts < query.until)
        if query.after is not None:
            q = q.where(t.c.cursor < query.after if query.descending else t.c.cursor > query.after)
        order = t.c.cursor.desc() if query.descending else t.c.cursor
        with self._reader.connect() as conn:
            return [HistoryRow(*r) for r in conn.execute(q.order_by(order).limit(query.limit))]

    def totals(self, coop: str) -> list[TotalsRow]:
        t, b, a = rs.ledger_totals, rs.ledger_balances, rs.read_accounts
        sums = (
            select(
                b.c.currency,
                func.sum(b.c.balance).label("balance_sum"),
                func.count().label("accounts"),
            )
            .select_from(a.join(b, b.c.did == a.c.id))
            .where(a.c.coop == coop)
            .group_by(b.c.currency)
            .subquery()
        )
        query = (
            select(
                t.c.currency,
                t.c.volume,
                t.c.transactions,
                t.c.entries,
                func.coalesce(sums.c.balance_sum, 0),
                func.coalesce(sums.c.accounts, 0),
            )
            .select_from(t.outerjoin(sums, sums.c.currency == t.c.currency))
            .where(t.c.coop == coop)
            .order_by(t.c.currency)
        )
        with self._reader.connect() as conn:
            return [
                TotalsRow(r[0], r[1], r[2], r[3], int(r[4]), int(r[5])) for r in conn.execute(query)
            ]

    def holds(self, coop: str, did: str) -> list[HoldRow]:
        h, r = hs.ledger_holds, hs.ledger_releases
        query = (
            select(h.c.task, h.c.currency, h.c.amount, h.c.ts)
            .select_from(h.outerjoin(r, and_(r.c.coop == h.c.coop, r.c.task == h.c.task)))
            .where(h.c.coop == coop, h.c.did == did, r.c.task.is_(None))
            .order_by(h.c.leaf)
        )
        with self._reader.connect() as conn:
            return [HoldRow(*row) for row in conn.execute(query)]

    def names(self, coop: str, dids: list[str]) -> dict[str, str]:
        """Members' current display names (:mod:`icn.projections.member_names`)."""
        with self._reader.connect() as conn:
            return current_names(conn, coop, dids)

    def record(self, coop: str, kind: str, key: str) -> bytes | None:
        t = schema.coop_state
        with self._reader.connect() as conn:
            value = conn.execute(
                select(t.c.value).where(t.c.coop == coop, t.c.kind == kind, t.c.key == key)
            ).scalar()
        return bytes(value) if value is not None else None

    def records(self, coop: str, kind: str, after: str | None, limit: int) -> list[bytes]:
        t = schema.coop_state
        q = select(t.c.value).where(t.c.coop == coop, t.c.kind == kind)
        if after is not None:
            q = q.where(t.c.key > after)
        with self._reader.connect() as conn:
            return [bytes(v) for v in conn.execute(q.order_by(t.c.key).limit(limit)).scalars()]

    # -- replay ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[Snapshot]:
        """One consistent view of the live tables, held while replay compares.

        SQLite: a deferred transaction on a WAL database keeps the state of its
        first read; PostgreSQL: REPEATABLE READ. Writers are not blocked.
        """
        if self.database.is_sqlite:
            engine = _sqlite_engine(self.database.sqlite_path, "BEGIN")
            try:
                with engine.begin() as conn:
                    yield Snapshot(conn)
            finally:
                engine.dispose()
        else:
            with (
                self._reader.connect() as conn,
                conn.execution_options(isolation_level="REPEATABLE READ").begin(),
            ):
                yield Snapshot(conn)


class SqlLog:
    """The node's log as the projections read it (:class:`~icn.projections.ports.LogSource`):
    entries in pages from the event store, the size by a cheap point read."""

    def __init__(self, store: SqlEventStore, models: SqlReadModels) -> None:
        self._store = store
        self._models = models

    def coops(self) -> list[str]:
        return self._store.coops()

    def tree_size(self, coop: str) -> int:
        return self._models.log_size(coop)

    def entries(self, coop: str, start: int = 0, stop: int | None = None) -> Iterator[LogEntry]:
        # The store's own ``entries`` builds each row through SQLAlchemy's result
        # layer; a runner reads the whole log, so it reads the driver's rows.
        end = self.tree_size(coop) if stop is None else stop
        while start < end:
            rows = self._models._point_read(
                "SELECT e.leaf_index, e.event_id, s.state, e.trusted_ms FROM log_entries e"
                " JOIN stored_events s ON s.originator_id = e.coop || '/' || e.author"
                " AND s.originator_version = e.seq"
                " WHERE e.coop = ? AND e.leaf_index >= ? AND e.leaf_index < ?"
                " ORDER BY e.leaf_index",
                (coop, start, min(end, start + PAGE)),
            )
            for leaf, event_id, state, trusted_ms in rows:
                yield LogEntry(coop, leaf, bytes(event_id).hex(), unpack(bytes(state)), trusted_ms)
            if not rows:
                return
            start = rows[-1][0] + 1


class _Lost(Exception):
    """A position moved under this batch: roll it back."""


def _shape(name: str) -> Table:
    for p in PROJECTIONS:
        for t in p.tables:
            if t.name == name:
                return t
    raise KeyError(name)


def _bytewise(conn: Connection, column: Any) -> Any:
    """Order text by code point, as Python compares strings: SQLite's default; PostgreSQL's
    ``C`` collation (its default follows the locale)."""
    if conn.dialect.name == "postgresql" and isinstance(column.type, String | Text):
        return column.collate("C")
    return column


def _account(coop: str, did: str) -> Any:
    """The account number of ``did`` in ``coop``, as a scalar subquery (NULL when it has
    none: no row matches)."""
    a = rs.read_accounts
    return select(a.c.id).where(a.c.coop == coop, a.c.did == did).scalar_subquery()


def dump(conn: Connection, shape: Table) -> Iterator[tuple[Key, Row]]:
    """Every row of a read-model table, in key order, as (key, values): in the shape's
    layout, account numbers read back as the coop and DIDs they stand for."""
    t = TABLES[shape.name]
    nkey = len(shape.key)
    exprs: dict[str, ColumnElement[Any]] = {c.name: c for c in t.columns}
    source: Any = t
    names = rs.accounts(t)
    for name in names:
        a = rs.read_accounts.alias(f"a_{name}")
        source = source.join(a, a.c.id == t.c[name])
        exprs[name] = a.c.did
        exprs.setdefault("coop", a.c.coop)  # the first one's coop: the row's
    columns = [exprs[c] for c in shape.key + shape.values]
    keys = [exprs[c] for c in shape.key]
    rows = conn.execution_options(yield_per=2000).execute(
        select(*columns).select_from(source).order_by(*[_bytewise(conn, c) for c in keys])
    )
    for r in rows:
        yield tuple(r[:nkey]), tuple(r[nkey:])


class Snapshot:
    """Live tables as of one moment: log sizes, positions, coop state, read models."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def sizes(self) -> dict[str, int]:
        """Every coop's log size."""
        t = schema.log_trees
        return {c: int(s) for c, s in self._conn.execute(select(t.c.coop, t.c.size))}

    def positions(self) -> dict[str, dict[str, int]]:
        """coop -> projection -> last leaf applied."""
        t = rs.projection_positions
        out: dict[str, dict[str, int]] = {}
        for name, coop, pos in self._conn.execute(select(t.c.projection, t.c.coop, t.c.position)):
            out.setdefault(coop, {})[name] = int(pos)
        return out

    def state_rows(self) -> Iterator[tuple[Key, bytes]]:
        """Every record of the coop rules' state, keyed (coop, kind, key), in key order."""
        t = schema.coop_state
        rows = self._conn.execution_options(yield_per=2000).execute(
            select(t.c.coop, t.c.kind, t.c.key, t.c.value).order_by(
                *[_bytewise(self._conn, c) for c in (t.c.coop, t.c.kind, t.c.key)]
            )
        )
        for coop, kind, key, value in rows:
            yield (coop, kind, key), bytes(value)

    def rows(self, table: Table) -> Iterator[tuple[Key, Row]]:
        """A read-model table in key order."""
        return dump(self._conn, table)

    def standing_history_rows(self) -> Iterator[tuple[Key, Row]]:
        """Every member's standing at every epoch, keyed (coop, context, did, epoch)."""
        return standing_history.dump(self._conn)


class ReadSide:
    """A node's read side: the read models on its database and the runner that fills them.

    One per process (the runner's lock then keeps concurrent readers from
    racing each other to apply the same entries).

    ``kept_current``: a running node's writer projects each commit before it acknowledges
    the writes in it (:meth:`project_committed`, a commit listener), so every write a
    client was answered for is in the read models already and :meth:`fresh` has nothing
    to do: a read never writes, never waits for SQLite's write lock. Without it (commands,
    apps built around a bare store) :meth:`fresh` catches up first, as it always did.
    """

    def __init__(self, store: SqlEventStore, *, kept_current: bool = False) -> None:
        self._store = store
        self.kept_current = kept_current
        self.models = SqlReadModels(store.database, reader=store.engine)
        self.runner = Runner(SqlLog(store, self.models), self.models, PROJECTIONS)

    def catch_up(self, coop: str | None = None) -> CatchUp:
        """Apply whatever the log holds that the read models do not, yet."""
        return self.runner.catch_up(coop)

    def fresh(self, coop: str) -> ReadSide:
        """This read side, current with every acknowledged write of ``coop`` (see the class)."""
        if not self.kept_current:
            self.runner.catch_up(coop)
        return self

    def project_committed(self, events: Sequence[CommittedEvent]) -> None:
        """A commit listener: bring the committed coops' read models up to the log before
        the writes are answered. A failure is logged, and the next commit tries again
        from the positions (listeners must not fail the write, which is stored)."""
        for coop in sorted({e.coop for e in events}):
            try:
                self.runner.catch_up(coop)
            except Exception:
                log.exception("projecting %s failed; the next commit tries again", coop)

    def replay(
        self,
        *,
        on_start: Callable[[int], None] | None = None,
        on_progress: Callable[[int], None] | None = None,
    ) -> ReplayReport:
        """Rebuild everything from the log in a scratch SQLite file and compare (``icn replay``).

        The live read models are caught up first, so the comparison covers the
        whole log; ``on_start`` learns how many events will be read.
        """
        self.catch_up()
        with tempfile.TemporaryDirectory(prefix="icn-replay-") as tmp:
            path = Path(tmp) / "replay.sqlite3"
            scratch = SqlReadModels(
                Database(URL.create("sqlite", database=str(path))), scratch=True
            )
            try:
                scratch.create_tables()
                with self.models.snapshot() as snap:
                    if on_start is not None:
                        on_start(sum(snap.sizes().values()))
                    return replay(
                        self.runner.log, self._store, snap, scratch, on_progress=on_progress
                    )
            finally:
                scratch.close()

    def close(self) -> None:
        """Release the connections the read side opened (not the store's)."""
        self.models.close()
