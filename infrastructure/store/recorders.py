"""eventsourcing's application recorders, extended to decide and write in one transaction.

Each write is a :class:`LogUnit`: inside the transaction, with the write lock
held, the unit's decision is made against the current state, then the
library inserts the stored events and we write the log rows beside them (the
Merkle tree, chain heads, coop DID, checkpoints, fork evidence). The
uniqueness of (originator_id, originator_version) = (coop/author, seq) is
the library's primary key, so a second event at one seq can never be stored.

PostgreSQL's recorder is in :mod:`icn.infrastructure.store.recorders_postgres`, imported
only by a store on PostgreSQL: psycopg and the library's PostgreSQL module cost every
command on the SQLite default ~150 ms of start-up.
"""

from __future__ import annotations

import sqlite3

from eventsourcing.persistence import IntegrityError, OperationalError
from eventsourcing.sqlite import SQLiteApplicationRecorder

from icn.infrastructure.store.log_rows import LogRowWriter, LogUnit


class IcnSQLiteRecorder(SQLiteApplicationRecorder):
    """SQLite: ``BEGIN IMMEDIATE`` takes the write lock before anything is read.

    (The library's own transactions use a deferred ``BEGIN``; reading first
    and writing later would let another process commit in between.)
    """

    _writer = LogRowWriter("?")

    def append_unit(self, unit: LogUnit) -> None:
        """Decide and write ``unit`` atomically."""
        with self.datastore.get_connection(commit=True) as conn:
            cursor = conn.cursor()
            try:
                cursor.execute("BEGIN IMMEDIATE")
                stored = unit.run_decision(cursor, "?")
                self._insert_events(cursor, stored)
                self._writer.write(cursor, unit)
                conn.commit()
            except sqlite3.IntegrityError as exc:
                conn.rollback()
                raise IntegrityError(exc) from exc
            except sqlite3.OperationalError as exc:
                conn.rollback()
                raise OperationalError(exc) from exc
            except BaseException:
                conn.rollback()
                raise
