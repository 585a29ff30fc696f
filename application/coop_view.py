"""The coop rules' view of state, read from the store and layered per batch.

The store keeps each record as JSON bytes under (coop, kind, key); this
module decodes them into the domain's records and answers the questions of
:class:`~icn.domain.coop.state.CoopView`. Layers on top (one per batch, one
per request in a group commit) hold what earlier events of the same write
changed, so each event is judged on the state its predecessors left.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import msgspec

from icn.application.ports import StateRow, StoreView
from icn.domain.coop.records import AccountRecord, CoopRecord, DisputeRecord, MemberRecord, Record
from icn.domain.coop.state import DisputeClaim
from icn.domain.events.envelope import Event, decode_stored
from icn.domain.registry import RECORD_TYPES
from icn.domain.trust.records import StandingRecord

_encoder = msgspec.json.Encoder()
_decoders = {kind: msgspec.json.Decoder(t) for kind, t in RECORD_TYPES.items()}

RecordKey = tuple[str, str, str]
"""(coop, kind, key)"""


def encode_record(coop: str, record: Record) -> StateRow:
    """A record as the store keeps it."""
    return StateRow(coop, record.kind, record.key(), _encoder.encode(record))


def decode_record(kind: str, value: bytes) -> Record:
    """A stored record back as the domain's type."""
    record: Record = _decoders[kind].decode(value)
    return record


class RecordSource(Protocol):
    """Where a layer finds what it does not hold itself."""

    def record(self, coop: str, kind: str, key: str) -> Record | None: ...

    def event(self, coop: str, event_id: str) -> Event | None: ...

    def scan(self, coop: str, kind: str, prefix: str) -> list[Record]: ...

    def log_size(self, coop: str) -> int: ...


class NoRecords:
    """A source that holds nothing: the base of a layer that starts from an empty log
    (rule tests, property tests)."""

    def record(self, coop: str, kind: str, key: str) -> Record | None:
        return None

    def event(self, coop: str, event_id: str) -> Event | None:
        return None

    def scan(self, coop: str, kind: str, prefix: str) -> list[Record]:
        return []

    def log_size(self, coop: str) -> int:
        return 0


class CoopQueries:
    """The :class:`CoopView` questions, answered from ``record`` and ``event``."""

    def record(self, coop: str, kind: str, key: str) -> Record | None:
        raise NotImplementedError

    def event(self, coop: str, event_id: str) -> Event | None:
        raise NotImplementedError

    def scan(self, coop: str, kind: str, prefix: str) -> list[Record]:
        raise NotImplementedError

    def log_size(self, coop: str) -> int:
        raise NotImplementedError

    def coop(self, coop: str) -> CoopRecord | None:
        r = self.record(coop, CoopRecord.kind, "")
        return r if isinstance(r, CoopRecord) else None

    def member(self, coop: str, did: str) -> MemberRecord | None:
        r = self.record(coop, MemberRecord.kind, did)
        return r if isinstance(r, MemberRecord) else None

    def account(self, coop: str, did: str, currency: str) -> AccountRecord | None:
        r = self.record(coop, AccountRecord.kind, f"{did}/{currency}")
        return r if isinstance(r, AccountRecord) else None

    def dispute(self, coop: str, dispute_id: str) -> DisputeRecord | None:
        r = self.record(coop, DisputeRecord.kind, dispute_id)
        return r if isinstance(r, DisputeRecord) else None

    def claim(self, coop: str, entry: str, transaction: int) -> str | None:
        r = self.record(coop, DisputeClaim.kind, f"{entry}/{transaction}")
        return r.dispute if isinstance(r, DisputeClaim) else None

    def trust_ppm(self, coop: str, did: str) -> int:
        """The member's normalised standing in the ``ledger`` context at its last epoch, or
        in ``general`` when the member has none there; 0 before any epoch."""
        for context in ("ledger", "general"):
            r = self.record(coop, StandingRecord.kind, f"{context}/{did}")
            if isinstance(r, StandingRecord):
                return r.normalised_ppm
        return 0


class StoredState(CoopQueries):
    """Records and events as the store has them, decoded once per write."""

    def __init__(self, view: StoreView) -> None:
        self._view = view
        self._cache: dict[RecordKey, Record | None] = {}

    def record(self, coop: str, kind: str, key: str) -> Record | None:
        k = (coop, kind, key)
        if k not in self._cache:
            raw = self._view.state_get(coop, kind, key)
            self._cache[k] = decode_record(kind, raw) if raw is not None else None
        return self._cache[k]

    def prefetch(self, keys: Sequence[RecordKey]) -> None:
        """Read every record in ``keys`` not yet known, in one round trip, decoding each
        once: a batch's hints name the same few records again and again (five keys an
        entry, ~60 distinct in a batch of 100), and each duplicate was decoded again."""
        missing = [k for k in dict.fromkeys(keys) if k not in self._cache]
        if not missing:
            return
        found = self._view.state_get_many(missing)
        for k in missing:
            raw = found.get(k)
            self._cache[k] = decode_record(k[1], raw) if raw is not None else None

    def event(self, coop: str, event_id: str) -> Event | None:
        wire = self._view.event_wire(coop, event_id)
        return decode_stored(wire) if wire is not None else None

    def scan(self, coop: str, kind: str, prefix: str) -> list[Record]:
        return [
            decode_record(kind, value) for _, value in self._view.state_scan(coop, kind, prefix)
        ]

    def log_size(self, coop: str) -> int:
        return self._view.log_size(coop)


class StateLayer(CoopQueries):
    """What one batch (or one request of a group) changed, over its source."""

    def __init__(self, source: RecordSource) -> None:
        self._source = source
        self.records: dict[RecordKey, Record] = {}
        self.events: dict[str, Event] = {}
        self.appended: dict[str, int] = {}
        """Events accepted into this layer per coop (kept when ``events`` is trimmed)."""
        self.reads: set[tuple[str, ...]] | None = None
        """While set, every read of this layer adds its key here (see ``ReadKey`` in
        :mod:`icn.application.append`: what a waiting line's judging read)."""
        self.wrote: Callable[[tuple[str, ...]], None] | None = None
        """While set, told every key a :meth:`write` changes."""

    def prefetch(self, keys: Sequence[RecordKey]) -> None:
        """Pass a read-ahead hint down to the stored state."""
        prefetch = getattr(self._source, "prefetch", None)
        if prefetch is not None:
            prefetch([k for k in keys if k not in self.records])

    def record(self, coop: str, kind: str, key: str) -> Record | None:
        if self.reads is not None:
            self.reads.add(("record", coop, kind, key))
        found = self.records.get((coop, kind, key))
        return found if found is not None else self._source.record(coop, kind, key)

    def event(self, coop: str, event_id: str) -> Event | None:
        if self.reads is not None:
            self.reads.add(("event", event_id))
        return self.events.get(event_id) or self._source.event(coop, event_id)

    def scan(self, coop: str, kind: str, prefix: str) -> list[Record]:
        if self.reads is not None:
            self.reads.add(("scan", coop, kind, prefix))
        found = {r.key(): r for r in self._source.scan(coop, kind, prefix)}
        for (c, k, key), r in self.records.items():
            if c == coop and k == kind and key.startswith(prefix):
                found[key] = r
        return [found[key] for key in sorted(found)]

    def log_size(self, coop: str) -> int:
        if self.reads is not None:
            self.reads.add(("size", coop))
        return self._source.log_size(coop) + self.appended.get(coop, 0)

    def write(self, event: Event, effects: list[Record]) -> None:
        """Take an accepted event and the records it wrote."""
        self.events[event.id] = event
        self.appended[event.coop] = self.appended.get(event.coop, 0) + 1
        for r in effects:
            self.records[(event.coop, r.kind, r.key())] = r
        if self.wrote is not None:
            self.wrote(("event", event.id))
            self.wrote(("size", event.coop))
            for r in effects:
                self.wrote(("record", event.coop, r.kind, r.key()))

    def absorb(self, child: StateLayer) -> None:
        """Keep what a child layer (an accepted request) wrote."""
        self.records.update(child.records)
        self.events.update(child.events)
        for coop, n in child.appended.items():
            self.appended[coop] = self.appended.get(coop, 0) + n

    def rows(self) -> list[StateRow]:
        """Every record written, as the store keeps them."""
        return [encode_record(coop, r) for (coop, _, _), r in self.records.items()]
