"""The history of standings: the rules' per-epoch standing records, kept apart from their state.

A standing epoch makes one ``StandingAtEpochRecord`` per member. The rules never
read them back, and unlike their state records (one per key, overwritten) these
only ever grow, so the write path puts them in ``trust_standing_history`` instead
of ``coop_state``, in the same transaction; a member's standings over epochs are
then one key range of that table, paged by epoch.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import msgspec
from sqlalchemy import Connection, Engine, select

from icn.application.ports import StateRow
from icn.domain.trust.records import StandingAtEpochRecord
from icn.infrastructure.store import schema

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
