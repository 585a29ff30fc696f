"""A bounded, thread-safe memory of event ids per coop, each answered for once.

Replication keeps two such memories: the ids the intake received from the
stream (the relay need not publish them back) and the ids the relay
published (the node's consumer need not check them when they come back).
Both are shortcuts: forgetting an id only costs the work it would have saved
(a publish that JetStream's duplicate window drops, or that a receiver's
known-id check makes a no-op).

Each id is kept as its 32 bytes, not its 64 hex characters: 200,000 ids (the
intake's bound) took 28.9 MiB as text and 22.4 MiB as bytes (tracemalloc, the
dict included).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable

_HEX_ID = re.compile(r"[0-9a-f]{64}")


def _key(event_id: str) -> bytes:
    """An event id's 32 bytes; anything else (stand-in names in tests: a log's ids are
    always 64 hex characters) as its UTF-8."""
    return bytes.fromhex(event_id) if _HEX_ID.fullmatch(event_id) else event_id.encode()


class RememberedIds:
    """Ids per coop, oldest forgotten first beyond ``bound``; :meth:`take` answers once.

    ``bound`` 0 remembers nothing: for a process in which nobody asks (``icn node sync``
    consumes with no relay running beside it).
    """

    def __init__(self, bound: int) -> None:
        self.bound = bound
        self._ids: dict[str, dict[bytes, None]] = {}
        self._lock = threading.Lock()

    def add(self, coop: str, event_ids: Iterable[str]) -> None:
        """Remember ``event_ids`` of ``coop`` (insertion order is the forgetting order)."""
        if self.bound <= 0:
            return
        keys = [_key(i) for i in event_ids]
        with self._lock:
            ids = self._ids.setdefault(coop, {})
            ids.update(dict.fromkeys(keys))
            while len(ids) > self.bound:
                del ids[next(iter(ids))]

    def take(self, coop: str, event_id: str) -> bool:
        """True if ``event_id`` was remembered for ``coop``, which it then no longer is."""
        key = _key(event_id)
        with self._lock:
            ids = self._ids.get(coop)
            if not ids or key not in ids:
                return False
            del ids[key]
            return True

    def __len__(self) -> int:
        """How many ids are remembered, over every coop."""
        with self._lock:
            return sum(len(ids) for ids in self._ids.values())
