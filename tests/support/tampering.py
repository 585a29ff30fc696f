"""Damage a store behind its back, as a disk fault or an intruder would."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import URL, Connection, create_engine

from icn.infrastructure.store.event_store import SqlEventStore


def tamper(store: SqlEventStore, *statements: Any) -> None:
    """Change the store's tables behind its back (its own read engine is query-only)."""
    url = store.database.url
    with writer(
        url if store.database.is_sqlite else url.set(drivername="postgresql+psycopg")
    ) as conn:
        for statement in statements:
            conn.execute(statement)


@contextmanager
def writer(url: URL | str) -> Iterator[Connection]:
    """One transaction on an engine of its own, disposed afterwards (no pool left open)."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            yield conn
    finally:
        engine.dispose()
