"""Read-side rules shared by every interface (CLI and HTTP ask the same questions)."""

from __future__ import annotations

from icn.application.coop_view import decode_record
from icn.application.errors import NotFound
from icn.application.ports import EventStore, LogEntry
from icn.domain.coop.records import CoopRecord, MemberRecord


def entry_in(store: EventStore, coop: str, event_id: str) -> LogEntry:
    """The event ``event_id`` of ``coop``'s log; an event of another coop is not found here."""
    entry = store.find(event_id)
    if entry is None or entry.coop != coop:
        raise NotFound(f"no event {event_id} in the log of {coop}")
    return entry


def coop_of(store: EventStore, coop: str) -> CoopRecord | None:
    """The founded coop as its last committed write left it."""
    raw = store.state_get(coop, CoopRecord.kind, "")
    record = decode_record(CoopRecord.kind, raw) if raw is not None else None
    return record if isinstance(record, CoopRecord) else None


def member_of(store: EventStore, coop: str, did: str) -> MemberRecord | None:
    """One DID's membership of ``coop``, or ``None``."""
    raw = store.state_get(coop, MemberRecord.kind, did)
    record = decode_record(MemberRecord.kind, raw) if raw is not None else None
    return record if isinstance(record, MemberRecord) else None
