"""Where the store lives: one SQLite file by default, PostgreSQL by URL.

``ICN_DATABASE_URL`` is an SQLAlchemy URL (``sqlite:///path`` or
``postgresql+psycopg://user:pass@host:port/db``); from it we build both the
eventsourcing datastore that writes events and the SQLAlchemy engine that
serves reads, so the two can never point at different databases.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url

# Writers wait this long for SQLite's write lock before giving up: long
# enough to ride out a checkpoint or a large import in another process.
SQLITE_LOCK_TIMEOUT_S = 30


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
