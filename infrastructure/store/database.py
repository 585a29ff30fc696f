"""Where the store lives: one SQLite file by default, PostgreSQL by URL.

``ICN_DATABASE_URL`` is an SQLAlchemy URL (``sqlite:///path`` or
``postgresql+psycopg://user:pass@host:port/db``); from it we build both the
eventsourcing datastore that writes events and the SQLAlchemy engine that
serves reads, so the two can never point at different databases.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url

# Writers wait this long for SQLite's write lock before giving up: long
# enough to ride out a checkpoint or a large import in another process.
SQLITE_LOCK_TIMEOUT_S = 30


_WRITE_TURNS: dict[str, threading.RLock] = {}
_WRITE_TURNS_LOCK = threading.Lock()


class WriteTurnTimeout(RuntimeError):
    """Another thread of this process kept the SQLite file's write turn for as long as a
    writer waits for SQLite's own lock (:data:`SQLITE_LOCK_TIMEOUT_S`)."""


@contextmanager
def _turn(lock: threading.RLock) -> Iterator[None]:
    if not lock.acquire(timeout=SQLITE_LOCK_TIMEOUT_S):
        raise WriteTurnTimeout(
            f"database is locked: no write turn in {SQLITE_LOCK_TIMEOUT_S} s in this process"
        )
    try:
        yield
    finally:
        lock.release()


class DatabaseUrlError(ValueError):
    """A database URL the node cannot use; the message says what to write instead."""


@dataclass(frozen=True)
class Database:
    """A parsed database location."""

    url: URL
    autocheckpoint: bool = True
    """SQLite: whether a commit that fills the WAL checkpoints it. False for a running
    node, whose :class:`~icn.infrastructure.store.wal.WalCheckpointer` does it instead."""

    @property
    def is_sqlite(self) -> bool:
        """True for the embedded default."""
        return self.url.get_backend_name() == "sqlite"

    @property
    def sqlite_path(self) -> str:
        """The SQLite file path."""
        if not self.url.database or self.url.database == ":memory:":
            raise DatabaseUrlError("the store needs an SQLite *file*, not an in-memory database")
        return self.url.database

    def write_turn(self) -> AbstractContextManager[None]:
        """This process's turn to write the SQLite file: one writing transaction at a time
        per process, handed over at once.

        eventsourcing's pool already takes turns among the event store's own writers; the
        read models write through another connection. Two threads that write both (a
        node's group commit and replication's intake, each projecting its commits) would
        otherwise meet at SQLite's write lock, whose busy handler polls with sleeps
        growing to 100 ms: the waiter learns the lock is free only at its next poll.
        Measured (bench/write_turns.py: two threads, each appending a payment and
        projecting it, 400 each; medians of 5 alternating runs): 2.07 s with turns
        against 2.80 s without, p50 5.1 ms against 7.2, p99 8.9 against 11.1. A
        thread that kept the turn as long as SQLite's lock timeout gets
        :class:`WriteTurnTimeout`. Other processes (a command beside the node) still meet
        at SQLite's lock. Nothing on PostgreSQL, whose writers wait on row locks and are
        woken when they go.
        """
        if not self.is_sqlite:
            return nullcontext()
        path = self.sqlite_path
        with _WRITE_TURNS_LOCK:
            lock = _WRITE_TURNS.setdefault(path, threading.RLock())
        return _turn(lock)

    def redacted(self) -> str:
        """The URL with its password hidden, safe for logs and status output."""
        return self.url.render_as_string(hide_password=True)

    def read_engine(self) -> Engine:
        """SQLAlchemy engine for the read side."""
        if self.is_sqlite:
            engine = create_engine(
                URL.create("sqlite+pysqlite", database=self.sqlite_path),
                connect_args={"timeout": SQLITE_LOCK_TIMEOUT_S, "check_same_thread": False},
            )

            @event.listens_for(engine, "connect")
            def _pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
                dbapi_conn.execute("PRAGMA query_only = ON")

            return engine
        return create_engine(self.url.set(drivername="postgresql+psycopg"), pool_pre_ping=True)

    def postgres_params(self) -> dict[str, str]:
        """Connection parameters for eventsourcing's PostgresDatastore."""
        u = self.url
        host = u.host or u.query.get("host") or "127.0.0.1"
        if isinstance(host, tuple):
            host = host[0]
        return {
            "dbname": u.database or "postgres",
            "host": str(host),
            "port": str(u.port or 5432),
            "user": u.username or "postgres",
            "password": u.password or "",
        }


def parse_database_url(url: str | None, data_dir: Path) -> Database:
    """The configured database, or the default SQLite file in ``data_dir``."""
    if not url:
        return Database(URL.create("sqlite", database=str(data_dir / "icn.sqlite3")))
    try:
        parsed = make_url(url)
    except Exception:
        raise DatabaseUrlError(f"not a database URL: {url!r}") from None
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise DatabaseUrlError(
            f"unsupported database {backend!r}: use sqlite:///PATH or postgresql+psycopg://…"
        )
    return Database(parsed)
