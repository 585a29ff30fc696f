"""eventsourcing's application recorders, extended to write the log rows atomically.

The library's own extension point is ``_insert_events``: its process
recorders use it to write tracking rows in the event transaction, and we use
it the same way for the Merkle tree, chain heads and fork evidence. The
uniqueness of (originator_id, originator_version) = (coop/author, seq) is
the library's primary key, so a second event at one seq can never be stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor

from icn.infrastructure.store.log_rows import LogBatch, LogRowWriter


class IcnSQLiteRecorder(SQLiteApplicationRecorder):
    """SQLite: the stored-event INSERTs come first and take the write lock."""

    _writer = LogRowWriter("?")

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        ids = super()._insert_events(c, stored_events, **kwargs)
        batch: LogBatch | None = kwargs.get("log_batch")
        if batch is not None:
            self._writer.write(c, batch)
        return ids


class IcnPostgresRecorder(PostgresApplicationRecorder):
    """PostgreSQL: take the library's table lock first, then read the tree edge."""

    _writer = LogRowWriter("%s")

    def _insert_events(
        self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        batch: LogBatch | None = kwargs.get("log_batch")
        if batch is not None:
            self._lock_table(curs)
            self._writer.write(curs, batch)
