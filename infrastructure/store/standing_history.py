"""The history of standings: the rules' per-epoch standing records, kept apart from their state.

A standing epoch makes one ``StandingAtEpochRecord`` per member. The rules never
read them back, and unlike their state records (one per key, overwritten) these
only ever grow, so the write path puts them in ``trust_standing_history`` instead
of ``coop_state``, in the same transaction; a member's standings over epochs are
then one key range of that table, paged by epoch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Protocol

import msgspec
from sqlalchemy import Connection, Engine, select

from icn.application.coop_view import StateLayer
from icn.application.ports import LogEntry, StateRow
from icn.domain.coop.evolve import evolve
from icn.domain.coop.records import Record
from icn.domain.events.envelope import Event, decode_stored
from icn.domain.refusals import Refusal
from icn.domain.trust.bodies import STANDING_PUBLISHED
from icn.domain.trust.records import StandingAtEpochRecord
from icn.infrastructure.store import schema

Progress = Callable[[str, int], AbstractContextManager[Callable[[int], None]]]
"""A progress display: ``progress(label, total)`` gives ``advance(n)`` while it is open."""

HISTORY_KIND = StandingAtEpochRecord.kind
COLUMNS = ("coop", "did", "context", "epoch", "standing_ppm", "normalised_ppm", "trust_class")
INSERT = f"INSERT INTO trust_standing_history ({', '.join(COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?, ?)"
"""Plain insert: an epoch is accepted once, so a second row for one key is a bug to surface."""

_decoder = msgspec.json.Decoder(StandingAtEpochRecord)
HistoryRow = tuple[str, str, str, int, int, int, str]


def split(records: Sequence[StateRow]) -> tuple[list[StateRow], list[HistoryRow]]:
    """The rules' state records, and the history rows among ``records``."""
    state: list[StateRow] = []
    history: list[HistoryRow] = []
    for r in records:
        if r.kind == HISTORY_KIND:
            history.append(history_row(r.coop, _decoder.decode(r.value)))
        else:
            state.append(r)
    return state, history


def history_row(coop: str, r: StandingAtEpochRecord) -> HistoryRow:
    """A record as its table row (columns in :data:`COLUMNS` order)."""
    return (coop, r.did, r.context, r.epoch, r.standing_ppm, r.normalised_ppm, r.trust_class)


class StandingHistoryReads:
    """A member's standings over epochs, paged by epoch; and every row, for replay."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def page(
        self, coop: str, did: str, context: str, *, after: int, limit: int
    ) -> list[tuple[int, int, int, str]]:
        """(epoch, standing_ppm, normalised_ppm, class) of epochs past ``after``, oldest first."""
        t = schema.trust_standing_history
        query = (
            select(t.c.epoch, t.c.standing_ppm, t.c.normalised_ppm, t.c.trust_class)
            .where(t.c.coop == coop, t.c.did == did, t.c.context == context, t.c.epoch > after)
            .order_by(t.c.epoch)
            .limit(limit)
        )
        with self._engine.connect() as conn:
            return [(int(e), int(s), int(n), str(c)) for e, s, n, c in conn.execute(query)]


def dump(conn: Connection) -> Iterator[tuple[tuple[Any, ...], tuple[Any, ...]]]:
    """Every row as ((coop, context, did, epoch), (standing_ppm, normalised_ppm, class)), in
    key order (sorted here, by code point, as replay sorts what it rebuilt)."""
    t = schema.trust_standing_history
    rows = [tuple(r) for r in conn.execute(select(*(t.c[c] for c in COLUMNS)))]
    for coop, did, context, epoch, s, n, c in sorted(
        rows, key=lambda r: (r[0], r[2], r[1], int(r[3]))
    ):
        yield (coop, context, did, int(epoch)), (int(s), int(n), str(c))


HISTORY_META = "standing-history"
"""``node_meta`` key: :data:`BACKFILLED` once every epoch a store published before the
history existed has its rows; absent in stores made before (issue 17)."""
BACKFILLED = "v1"
INSERT_ROWS = 500
"""History rows per insert statement of a backfill."""


class BackfillLog(Protocol):
    """What a backfill reads: the store's log, in order, and its events by id."""

    def tree_size(self, coop: str) -> int: ...

    def entries(self, coop: str, start: int = 0, stop: int | None = None) -> Iterator[LogEntry]: ...

    def find(self, event_id: str) -> LogEntry | None: ...


class _Earlier:
    """The events the rules look up by id while a coop's log is judged again, read back from
    the log, but only those before the event being judged."""

    def __init__(self, log: BackfillLog, coop: str) -> None:
        self._log = log
        self._coop = coop
        self.leaf = -1

    def record(self, coop: str, kind: str, key: str) -> Record | None:
        return None  # every record is in the layer above: the coop is judged from leaf 0

    def scan(self, coop: str, kind: str, prefix: str) -> list[Record]:
        return []

    def log_size(self, coop: str) -> int:
        return 0

    def event(self, coop: str, event_id: str) -> Event | None:
        found = self._log.find(event_id)
        if (
            found is None
            or found.coop != coop
            or coop != self._coop
            or found.leaf_index >= self.leaf
        ):
            return None
        return decode_stored(found.wire)


def recompute(
    log: BackfillLog, coop: str, size: int, advance: Callable[[int], None] | None = None
) -> list[HistoryRow]:
    """Every history row of ``coop``'s first ``size`` events: the log judged again from leaf 0
    by :func:`~icn.domain.coop.evolve.evolve`, as the write path and ``icn replay`` judge it,
    keeping the standing records each accepted epoch made (an event refused now is left out,
    as the write path would have; ``icn replay`` names it)."""
    source = _Earlier(log, coop)
    layer = StateLayer(source)
    rows: list[HistoryRow] = []
    for n, entry in enumerate(log.entries(coop, 0, size), start=1):
        event = decode_stored(entry.wire)
        source.leaf = entry.leaf_index
        trusted = event.ts if entry.trusted_ms is None else entry.trusted_ms
        result = evolve(event, layer, trusted)
        if isinstance(result, Refusal):
            continue
        layer.write(event, result)
        rows += [history_row(coop, r) for r in result if isinstance(r, StandingAtEpochRecord)]
        if len(layer.events) > KEEP_EVENTS:
            layer.events.clear()
        if advance is not None and n % PROGRESS_EVERY == 0:
            advance(PROGRESS_EVERY)
    if advance is not None and size % PROGRESS_EVERY:
        advance(size % PROGRESS_EVERY)
    return rows


KEEP_EVENTS = 10_000
"""Events kept in memory for the rules to look up while a log is judged; older ones are read
back."""
PROGRESS_EVERY = 1000


def backfill(log: BackfillLog, engine: Engine, progress: Progress | None = None) -> int:
    """Give a store made before the history existed the rows of the epochs it already
    published, once; returns how many rows were written.

    Without them ``icn replay`` names every earlier epoch as missing and a member's line on the
    Trust page starts at the upgrade. The rows are what the rules made then, recomputed by
    judging each coop's log again (only coops whose log has a ``trust.StandingPublished``),
    ``progress`` per event. Inserted with "on conflict do nothing": an epoch a node accepted
    since the upgrade already has its rows, which are the same, and two processes opening one
    store at once write the same rows. Then noted in ``node_meta``, so later opens skip it
    with one point read. A new store has no epoch and only gets the note.
    """
    meta = schema.node_meta
    with engine.connect() as conn:
        if conn.execute(select(meta.c.value).where(meta.c.key == HISTORY_META)).scalar() == (
            BACKFILLED
        ):
            return 0
        e = schema.log_entries
        coops = sorted(
            str(c)
            for c in conn.execute(
                select(e.c.coop).where(e.c.type == STANDING_PUBLISHED).distinct()
            ).scalars()
        )
    insert = _insert_for(engine)
    written = 0
    for coop in coops:
        size = log.tree_size(coop)
        with (
            progress(f"standing history of {coop}", size)
            if progress
            else nullcontext(None) as advance
        ):
            rows = recompute(log, coop, size, advance)
        with engine.begin() as conn:
            for i in range(0, len(rows), INSERT_ROWS):
                chunk = [dict(zip(COLUMNS, r, strict=True)) for r in rows[i : i + INSERT_ROWS]]
                written += conn.execute(insert.values(chunk).on_conflict_do_nothing()).rowcount
    with engine.begin() as conn:
        conn.execute(
            _insert_for(engine, meta)
            .values(key=HISTORY_META, value=BACKFILLED)
            .on_conflict_do_update(index_elements=["key"], set_={"value": BACKFILLED})
        )
    return written


def _insert_for(engine: Engine, table: Any = None) -> Any:
    """The dialect's insert (both have "on conflict")."""
    from sqlalchemy.dialects import postgresql, sqlite

    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    return dialect.insert(schema.trust_standing_history if table is None else table)
