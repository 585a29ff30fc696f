"""eventsourcing's PostgreSQL recorder, extended to decide and write in one transaction
(as :mod:`icn.infrastructure.store.recorders` does for SQLite, whose docstring says how).

A module of its own so that a node or command on SQLite never imports psycopg.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresAggregateRecorder
from psycopg.sql import SQL, Identifier

from icn.infrastructure.store.log_rows import LogRowWriter, LogUnit
from icn.infrastructure.store.wire_packing import pack


class IcnPostgresRecorder(PostgresAggregateRecorder):
    """PostgreSQL: one plain transaction: table lock, decision, log rows, stored events.

    The library's *aggregate* recorder: its table has the chain key, topic and state,
    and not the application recorder's ``notification_id`` (a ``bigserial`` and a
    unique index, 31 bytes per event) that nothing here reads: the log order is
    ``log_entries``. Each stored event's state is its wire packed (``wire_packing``):
    a row here costs more than the bytes it holds, and the packed wire is half of them.
    Stores made before either get both at open (``event_store.compact_stored_events``).

    The library's ``insert_events`` runs in psycopg pipeline mode, which hangs
    forever here (psycopg 3.3, libpq 18) once a batch's parameters pass about
    0.5-1 MB: client and server each wait for the other. Imports send batches
    of that size, so the same statements run here without a pipeline, under
    the application recorder's ``LOCK TABLE … IN EXCLUSIVE MODE`` (which serialises
    writers: two cannot both append leaf *n*).
    """

    _writer = LogRowWriter("%s")

    def _lock_table(self, curs: Any) -> None:
        curs.execute(
            SQL("SET LOCAL lock_timeout = '{0}s'").format(self.datastore.lock_timeout),
            prepare=True,
        )
        curs.execute(
            SQL("LOCK TABLE {0}.{1} IN EXCLUSIVE MODE").format(
                Identifier(self.datastore.schema), Identifier(self.events_table_name)
            ),
            prepare=True,
        )

    def append_unit(self, unit: LogUnit) -> None:
        """Decide and write ``unit`` atomically."""
        curs: Any
        with self.datastore.transaction(commit=True) as curs:
            self._lock_table(curs)
            stored = [
                StoredEvent(s.originator_id, s.originator_version, s.topic, pack(s.state))
                for s in unit.run_decision(curs, "%s")
            ]
            self._writer.write(curs, unit)
            if stored:
                self._insert_stored_events(curs, stored)
