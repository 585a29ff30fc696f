"""Chain state held in memory, for verifying a log file without any store."""

from __future__ import annotations

from collections.abc import Callable

from icn.domain.events.bodies import COOP_FOUNDED
from icn.domain.events.chain import ChainHead
from icn.domain.events.envelope import Event

IdSource = Callable[[str, str, int], str | None]
"""Where the id at (coop, author, seq) of an accepted event can be read back."""


class MemoryChains:
    """A :class:`~icn.domain.events.chain.ChainView` that grows as ``ok`` events are accepted.

    With ``ids`` (a store audit: the store holds one event per author and seq, the
    very one accepted there), only the heads are kept, one per author, and the ids
    behind a head are read back from ``ids``: memory then follows the authors, not
    the log.
    """

    def __init__(self, ids: IdSource | None = None) -> None:
        self._ids = ids
        self._chains: dict[tuple[str, str], list[str]] = {}
        self._heads: dict[tuple[str, str], ChainHead] = {}
        self._coop_dids: dict[str, str] = {}

    def head(self, coop: str, author: str) -> ChainHead | None:
        """The author's last accepted event in ``coop``."""
        return self._heads.get((coop, author))

    def id_at(self, coop: str, author: str, seq: int) -> str | None:
        """The id accepted at ``seq``."""
        if self._ids is not None:
            head = self._heads.get((coop, author))
            return self._ids(coop, author, seq) if head and 0 < seq <= head.seq else None
        chain = self._chains.get((coop, author))
        return chain[seq - 1] if chain and 0 < seq <= len(chain) else None

    def coop_did(self, coop: str) -> str | None:
        """The coop's DID, once founded."""
        return self._coop_dids.get(coop)

    def accept(self, event: Event) -> None:
        """Record an event judged ``ok``."""
        key = (event.coop, event.author)
        if self._ids is None:
            self._chains.setdefault(key, []).append(event.id)
        self._heads[key] = ChainHead(event.seq, event.id, event.ts)
        if event.type == COOP_FOUNDED:
            self.founded(event.coop, event.author)

    def accept_run(self, coop: str, author: str, ids: list[str], head: ChainHead) -> None:
        """Record a run of an author's events judged ``ok`` together, ``head`` the last."""
        if self._ids is None:
            self._chains.setdefault((coop, author), []).extend(ids)
        self._heads[(coop, author)] = head

    def founded(self, coop: str, author: str) -> None:
        """Record an ``ok`` ``coop.Founded`` by ``author``: the first one names the coop's DID."""
        self._coop_dids.setdefault(coop, author)
