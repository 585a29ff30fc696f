"""Damage a store behind its back, as a disk fault or an intruder would."""

from __future__ import annotations

from typing import Any

from sqlalchemy import create_engine

from icn.infrastructure.store.event_store import SqlEventStore


def tamper(store: SqlEventStore, *statements: Any) -> None:
    """Change the store's tables behind its back (its own read engine is query-only)."""
    url = store.database.url
    engine = create_engine(
        url if store.database.is_sqlite else url.set(drivername="postgresql+psycopg")
    )
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.execute(statement)
    finally:
        engine.dispose()
