"""Real databases for the store's contract tests: SQLite files and a throwaway PostgreSQL.

PostgreSQL comes from the ``pgserver`` wheel (a real server binary, listening
only on a Unix socket in a temporary folder). It starts once per session, and
only when a PostgreSQL test runs; every test gets a database of its own, so
tests never see each other's events.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy.engine import make_url

from icn.infrastructure.store.database import Database, parse_database_url
from icn.infrastructure.store.event_store import SqlEventStore


class PgCluster:
    """A running PostgreSQL server and the socket folder it listens on."""

    def __init__(self, server: Any) -> None:
        self.server = server
        host = make_url(server.get_uri()).query.get("host")
        if isinstance(host, tuple):
            host = host[0]
        if not host:
            raise RuntimeError(f"pgserver gave no socket folder: {server.get_uri()}")
        self.socket_dir = str(host)

    def psql(self, sql: str) -> str:
        """Run SQL as the superuser on the maintenance database."""
        return str(self.server.psql(sql))

    def create_database(self) -> str:
        """A fresh, empty database; returns its name."""
        name = f"t_{uuid.uuid4().hex}"
        self.psql(f"CREATE DATABASE {name};")
        return name

    def drop_database(self, name: str) -> None:
        """Drop a database even if a pool still holds connections to it."""
        self.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE);")

    def url(self, name: str) -> str:
        """The URL a node would be configured with: host is the socket folder, no password."""
        return f"postgresql+psycopg://postgres:@/{name}?host={quote(self.socket_dir, safe='/')}"


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """One PostgreSQL server for the whole session (started on first use).

    Its data lives in a folder of its own, not under pytest's ``tmp_path``:
    when run as root, pgserver runs the server as a separate user, and any
    other pytest session resets ``/tmp/pytest-of-<user>`` to mode 0700, which
    would pull the data folder from under the running server.
    """
    pgserver = pytest.importorskip("pgserver")
    parent = Path(tempfile.mkdtemp(prefix="icn-test-pg-"))
    server = pgserver.get_server(parent / "data", cleanup_mode="stop")
    try:
        yield PgCluster(server)
    finally:
        server.cleanup()
        shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """The node's data directory (where the default SQLite file lives)."""
    d = tmp_path / "data"
    d.mkdir()
    return d


@pytest.fixture(
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def store_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """The configured database URL: none (the default SQLite file) or a fresh PostgreSQL DB."""
    if request.param == "sqlite":
        yield None
        return
    cluster: PgCluster = request.getfixturevalue("pg_cluster")
    name = cluster.create_database()
    yield cluster.url(name)
    # Stores are closed by then (fixture teardown runs in reverse order).
    cluster.drop_database(name)


@pytest.fixture
def database(store_url: str | None, data_dir: Path) -> Database:
    """The parsed database location, as the node would parse it."""
    return parse_database_url(store_url, data_dir)


@pytest.fixture
def open_store(database: Database) -> Iterator[Callable[[], SqlEventStore]]:
    """Open another :class:`SqlEventStore` on the test's database (closed after the test).

    Two stores on one database behave like two node processes sharing it.
    """
    opened: list[SqlEventStore] = []

    def _open() -> SqlEventStore:
        store = SqlEventStore(database)
        opened.append(store)
        store.create_tables()
        return store

    yield _open
    for store in reversed(opened):
        store.close()


@pytest.fixture
def store(open_store: Callable[[], SqlEventStore]) -> SqlEventStore:
    """An opened store with its tables created."""
    return open_store()


@pytest.fixture
def clock() -> Callable[[], int]:
    """A node clock in milliseconds that moves forward by one on every reading."""
    ticks = itertools.count(1_763_800_000_000)
    return lambda: next(ticks)
