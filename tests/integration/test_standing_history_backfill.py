"""A store made before the history of standings gets the rows of the epochs it published,
once, at open (SQLite and PostgreSQL), and ``icn replay`` then finds it identical."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import msgspec
from sqlalchemy import delete, func, select
from support.coops import DEFAULT_POLICY, CoopScript, story_clock

from icn.application.append import AppendEvents
from icn.application.trust_epochs import TrustEpochs
from icn.domain.coop.records import TrustPolicy
from icn.domain.events.envelope import inspect
from icn.infrastructure.store import schema
from icn.infrastructure.store.event_store import SqlEventStore
from icn.infrastructure.store.read_models import ReadSide
from icn.infrastructure.store.standing_history import BACKFILLED, HISTORY_META, dump

POLICY = msgspec.structs.replace(DEFAULT_POLICY, trust=TrustPolicy(epoch_every_attestations=3))


class Trusty:
    """A founded coop of four on a real store, and its trust duty."""

    def __init__(self, store: SqlEventStore) -> None:
        self.store = store
        self.append = AppendEvents(store, story_clock)
        self.s = CoopScript("demo")
        self.epochs = TrustEpochs(store, self.append, story_clock)
        names = ["alice", "bob", "carol", "dan"]
        self.write(
            self.s.found({n: ["admin"] if n == "alice" else [] for n in names}, policy=POLICY)
        )

    def write(self, event: object) -> None:
        outcomes = self.append.append_inspected([inspect(event.wire_bytes())])  # type: ignore[attr-defined]
        assert [o.verdict for o in outcomes] == ["ok"], outcomes

    def vouch(self, who: str, whom: str, score: int) -> None:
        body = {"subject": self.s.did(whom), "context": "general", "score_ppm": score}
        self.write(self.s.event(who, "trust.AttestationRecorded", body))


def history(store: SqlEventStore) -> list[object]:
    with store.engine.connect() as conn:
        return list(dump(conn))


def test_an_older_store_is_backfilled_at_open_and_replays_identical(
    open_store: Callable[[], SqlEventStore],
) -> None:
    coop = Trusty(open_store())
    coop.vouch("alice", "bob", 600_000)
    coop.epochs.publish("demo", "general", coop.s.coop_key)
    coop.vouch("bob", "carol", 800_000)
    coop.vouch("carol", "dan", 700_000)
    coop.epochs.publish("demo", "general", coop.s.coop_key)
    written = history(coop.store)
    assert len(written) == 8  # four members, two epochs
    assert coop.store.get_meta(HISTORY_META) == BACKFILLED  # a new store is only noted

    # The store as the release before the history left it: no rows, no note.
    writer = _writer(coop.store)
    with writer.begin() as conn:
        conn.execute(delete(schema.trust_standing_history))
        conn.execute(delete(schema.node_meta).where(schema.node_meta.c.key == HISTORY_META))
    # One row a node wrote after the upgrade, before this open, stays as it is.
    with writer.begin() as conn:
        key, values = written[-1]
        conn.execute(
            schema.trust_standing_history.insert().values(
                coop=key[0], context=key[1], did=key[2], epoch=key[3],
                standing_ppm=values[0], normalised_ppm=values[1], trust_class=values[2],
            )
        )  # fmt: skip
    writer.dispose()
    side = ReadSide(coop.store)
    try:
        report = side.replay()
        assert not report.identical
        assert {tuple(d.key[3:]) for d in report.differences} == {(1,), (2,)}
    finally:
        side.close()

    shown: list[tuple[str, int, int]] = []
    reopened = SqlEventStore(coop.store.database)
    try:
        reopened.create_tables(_progress(shown))
        assert history(reopened) == written
        assert reopened.get_meta(HISTORY_META) == BACKFILLED
        size = reopened.tree_size("demo")
        assert shown == [("standing history of demo", size, size)]
        side = ReadSide(reopened)
        try:
            report = side.replay()
            assert report.identical, report.differences
        finally:
            side.close()
        # Noted: the next open reads one row and writes nothing.
        shown.clear()
        reopened.create_tables(_progress(shown))
        assert shown == [] and _count(reopened) == 8
    finally:
        reopened.close()


def _writer(store: SqlEventStore):  # type: ignore[no-untyped-def]
    from icn.infrastructure.store.read_models import SqlReadModels

    return SqlReadModels(store.database)._writer


def _count(store: SqlEventStore) -> int:
    with store.engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).select_from(schema.trust_standing_history)
            ).scalar_one()
        )


def _progress(shown: list[tuple[str, int, int]]):  # type: ignore[no-untyped-def]
    @contextmanager
    def progress(label: str, total: int) -> Iterator[Callable[[int], None]]:
        done = [0]
        yield lambda n: done.__setitem__(0, done[0] + n)
        shown.append((label, total, done[0]))

    return progress
