"""Read-side rules shared by every interface (CLI and HTTP ask the same questions)."""

from __future__ import annotations

from icn.application.errors import NotFound
from icn.application.ports import EventStore, LogEntry


def entry_in(store: EventStore, coop: str, event_id: str) -> LogEntry:
    """The event ``event_id`` of ``coop``'s log; an event of another coop is not found here."""
    entry = store.find(event_id)
    if entry is None or entry.coop != coop:
        raise NotFound(f"no event {event_id} in the log of {coop}")
    return entry
