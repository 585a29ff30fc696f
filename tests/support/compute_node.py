"""A node on a real store for the compute integration tests: it keeps the coop's key, its
trusted clock is set by the test, and it has the duck type the compute story steps use."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from icn.application.append import AppendEvents
from icn.application.authoring import EventAuthor
from icn.application.coop_duties import CoopDuties
from icn.application.governance_duties import GovernanceDuties
from icn.application.trust_epochs import CommittedState
from icn.domain.events.envelope import Event, inspect
from icn.infrastructure.store.database import parse_database_url
from icn.infrastructure.store.event_store import SqlEventStore
from support.coops import STORY_NOW, CoopScript


class Node:
    """A node keeping the coop's key, with the duck type the compute story steps use."""

    def __init__(
        self, store: SqlEventStore, script: CoopScript | None = None, *, governed: bool = False
    ) -> None:
        """``governed``: the duty rounds also close due proposals and execute accepted ones."""
        self.store = store
        self.now = STORY_NOW
        self.s = script or CoopScript("demo")
        self.append = AppendEvents(store, lambda: self.now)
        self.author = EventAuthor(store, self.append, lambda: self.now)
        gov = GovernanceDuties(store, self.append, lambda: self.now) if governed else None
        self.duties = CoopDuties(store, self.author, self._key, None, gov)

    def _key(self, coop: str) -> Any:
        return self.s.coop_key if coop == "demo" else None

    @property
    def state(self) -> CommittedState:
        return CommittedState(self.store)

    def ok(self, *events: Event) -> None:
        outcomes = self.append.append_inspected([inspect(e.wire_bytes()) for e in events])
        assert [o.verdict for o in outcomes] == ["ok"] * len(events), outcomes

    def balance(self, who: str) -> int:
        account = self.state.account("demo", self.s.did(who), "hours")
        return account.balance if account is not None else 0

    def run(self) -> list[Event]:
        done = self.duties.run(self.now)
        assert self.duties.failures == []
        return done


@contextmanager
def second_store(tmp_path: Path) -> Iterator[SqlEventStore]:
    """A second node's own SQLite store in ``tmp_path``, closed afterwards."""
    other = SqlEventStore(parse_database_url(None, tmp_path))
    other.create_tables()
    try:
        yield other
    finally:
        other.close()
