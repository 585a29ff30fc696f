"""Real databases for the store's contract tests: SQLite files and a throwaway PostgreSQL.

PostgreSQL comes from the ``pgserver`` wheel (a real server binary, listening
only on a Unix socket in a temporary folder). It starts once per session, and
only when a PostgreSQL test runs; every test gets a database of its own, so
tests never see each other's events.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support.coops import STORY_NOW

from icn.infrastructure.store.database import Database, parse_database_url
from icn.infrastructure.store.event_store import SqlEventStore


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
    cluster = request.getfixturevalue("pg_cluster")
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
    """A node clock in milliseconds that moves forward by one on every reading, from a day
    after the scripts' T0 (so what they date lies in the node's past)."""
    ticks = itertools.count(STORY_NOW)
    return lambda: next(ticks)
