"""A receiving node without processes: a SQLite store, its write path and its intake."""

from __future__ import annotations

import itertools
from pathlib import Path

from icn.application.append import AppendEvents
from icn.application.intake import Intake
from icn.application.sequencing import Sequencer
from icn.infrastructure.store.database import parse_database_url
from icn.infrastructure.store.event_store import SqlEventStore
from icn.infrastructure.store.parked import SqlReplicationState


class StoreNode:
    """A store (a file in ``directory``), its replication state, write path and intake.

    The clock ticks by one millisecond per reading, from a fixed start, so
    runs are repeatable.
    """

    def __init__(
        self,
        directory: Path,
        coop: str,
        max_parked: int = 10_000,
        sequencer: Sequencer | None = None,
    ) -> None:
        directory.mkdir(exist_ok=True)
        self.coop = coop
        self.store = SqlEventStore(parse_database_url(None, directory))
        self.store.create_tables()
        ticks = itertools.count(1_800_000_000_000)
        clock = lambda: next(ticks)  # noqa: E731
        self.state = SqlReplicationState(self.store)
        self.append = AppendEvents(self.store, clock, sequencer=sequencer)
        self.intake = Intake(self.append, self.state, clock, max_parked=max_parked)

    def ids(self) -> list[str]:
        """The coop's event ids in log order."""
        return [e.event_id for e in self.store.entries(self.coop)]

    def close(self) -> None:
        self.state.close()
        self.store.close()
