"""A coop's log judged again, in order, in memory, by the rules the write path used.

What every auditor's check is built on (``icn trust verify``, ``icn governance
recount``): the verdicts come from the log alone, never from the records the
store kept, so they are the ones any node or auditor holding the log reaches.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from icn.application.coop_view import NoRecords, StateLayer
from icn.application.ports import EventStore, LogEntry
from icn.domain.coop.evolve import evolve
from icn.domain.coop.state import Effects
from icn.domain.events.envelope import Event, decode_stored
from icn.domain.refusals import Refusal

KEEP_EVENTS = 10_000
"""Events kept in memory for the rules to look up; older ones are read back from the store."""


class StoredEvents(NoRecords):
    """Only events, read back from the store (every record is in the layer above)."""

    def __init__(self, store: EventStore) -> None:
        self._store = store

    def event(self, coop: str, event_id: str) -> Event | None:
        found = self._store.find(event_id)
        return decode_stored(found.wire) if found is not None and found.coop == coop else None


@dataclass(frozen=True)
class Judged:
    """One event of the log and what the rules say of it now."""

    entry: LogEntry
    event: Event
    result: Refusal | Effects


def rejudge(store: EventStore, coop: str, layer: StateLayer) -> Iterator[Judged]:
    """Each event of ``coop``'s log, judged at its trusted time on ``layer``, which holds the
    state of everything before it; accepted effects are written once the caller moves on."""
    for entry in store.entries(coop):
        event = decode_stored(entry.wire)
        trusted = entry.trusted_ms if entry.trusted_ms is not None else event.ts
        result = evolve(event, layer, trusted)
        yield Judged(entry, event, result)
        if not isinstance(result, Refusal):
            layer.write(event, result)
        if len(layer.events) > KEEP_EVENTS:
            layer.events.clear()


def fresh_layer(store: EventStore) -> StateLayer:
    """An empty state to judge a log from its start, events read back from ``store``."""
    return StateLayer(StoredEvents(store))
