"""Chain state held in memory, for verifying a log file without any store."""

from __future__ import annotations

from icn.domain.events.bodies import COOP_FOUNDED
from icn.domain.events.chain import ChainHead
from icn.domain.events.envelope import Event


class MemoryChains:
    """A :class:`~icn.domain.events.chain.ChainView` that grows as ``ok`` events are accepted."""

    def __init__(self) -> None:
        self._chains: dict[tuple[str, str], list[str]] = {}
        self._heads: dict[tuple[str, str], ChainHead] = {}
        self._coop_dids: dict[str, str] = {}

    def head(self, coop: str, author: str) -> ChainHead | None:
        """The author's last accepted event in ``coop``."""
        return self._heads.get((coop, author))

    def id_at(self, coop: str, author: str, seq: int) -> str | None:
        """The id accepted at ``seq``."""
        chain = self._chains.get((coop, author))
        return chain[seq - 1] if chain and 0 < seq <= len(chain) else None

    def coop_did(self, coop: str) -> str | None:
        """The coop's DID, once founded."""
        return self._coop_dids.get(coop)

    def accept(self, event: Event) -> None:
        """Record an event judged ``ok``."""
        key = (event.coop, event.author)
        self._chains.setdefault(key, []).append(event.id)
        self._heads[key] = ChainHead(event.seq, event.id, event.ts)
        if event.type == COOP_FOUNDED:
            self._coop_dids.setdefault(event.coop, event.author)
