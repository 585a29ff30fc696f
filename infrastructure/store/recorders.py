"""eventsourcing's application recorders, extended to write the log rows atomically.

The library's own extension point is ``_insert_events``: its process
recorders use it to write tracking rows in the event transaction, and we use
it the same way (on SQLite) for the Merkle tree, chain heads and fork
evidence. The
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
    """PostgreSQL: one plain transaction: table lock, log rows, stored events.

    The library's ``insert_events`` runs in psycopg pipeline mode, which hangs
    forever here (psycopg 3.3, libpq 18) once a batch's parameters pass about
    0.5-1 MB: client and server each wait for the other. Imports send batches
    of that size, so this recorder runs the same statements, in the same
    order and under the same lock, without a pipeline.
    """

    _writer = LogRowWriter("%s")

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        batch: LogBatch | None = kwargs.get("log_batch")
        with self.datastore.transaction(commit=True) as curs:
            self._lock_table(curs)
            if batch is not None:
                self._writer.write(curs, batch)
            if not stored_events:
                return []
            self._insert_stored_events(curs, stored_events, **kwargs)
            return self._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
