"""A bounded, thread-safe memory of event ids per coop, each answered for once.

Replication keeps two such memories: the ids the intake received from the
stream (the relay need not publish them back) and the ids the relay
published (the node's consumer need not check them when they come back).
Both are shortcuts: forgetting an id only costs the work it would have saved.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable


class RememberedIds:
    """Ids per coop, oldest forgotten first beyond ``bound``; :meth:`take` answers once."""

    def __init__(self, bound: int) -> None:
        self.bound = bound
        self._ids: dict[str, dict[str, None]] = {}
        self._lock = threading.Lock()

    def add(self, coop: str, event_ids: Iterable[str]) -> None:
        """Remember ``event_ids`` of ``coop`` (insertion order is the forgetting order)."""
        with self._lock:
            ids = self._ids.setdefault(coop, {})
            ids.update(dict.fromkeys(event_ids))
            while len(ids) > self.bound:
                del ids[next(iter(ids))]

    def take(self, coop: str, event_id: str) -> bool:
        """True if ``event_id`` was remembered for ``coop``, which it then no longer is."""
        with self._lock:
            ids = self._ids.get(coop)
            if not ids or event_id not in ids:
                return False
            del ids[event_id]
            return True
