"""The unit tests' store: the write side of the EventStore port in memory.

It is held to the same contract as the real store (tests/integration/test_store_contract.py
runs one test class against both), so a unit test that passes on it says something
about the node: a decision applies whole or not at all, positions are leaf indexes
per coop, and a second event at an occupied (coop, author, seq) is refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from icn.application.memory_view import MemoryChains
from icn.application.ports import Accepted, ConcurrentAppend, Decide, ForkEvidence
from icn.domain.events.chain import ChainHead


class MemoryStore:
    """Chains, records and wires in memory; ``races`` makes the next appends lose a race."""

    def __init__(self, races: int = 0) -> None:
        self.chains = MemoryChains()
        self.log: list[Accepted] = []
        self.sizes: dict[str, int] = {}
        self.forks: list[ForkEvidence] = []
        self.flagged: set[tuple[str, str]] = set()
        self.state: dict[tuple[str, str, str], bytes] = {}
        self.wires: dict[tuple[str, str], bytes] = {}
        self.races = races

    def append_decided(self, chains: Iterable[tuple[str, str]], decide: Decide) -> list[int]:
        """Decide on this store's state and apply the decision whole, or raise and apply
        nothing (the fake is its own view: one writer, no lock needed)."""
        decision = decide(self)
        if self.races:
            self.races -= 1
            raise ConcurrentAppend("someone else won")
        taken = {(a.event.coop, a.event.author, a.event.seq) for a in decision.accepted}
        if len(taken) < len(decision.accepted) or any(
            self.chains.id_at(coop, author, seq) is not None for coop, author, seq in taken
        ):
            raise ConcurrentAppend("a second event at an occupied (coop, author, seq)")
        positions = []
        for a in decision.accepted:
            coop = a.event.coop
            positions.append(self.sizes.get(coop, 0))
            self.sizes[coop] = positions[-1] + 1
            self.chains.accept(a.event)
            self.log.append(a)
            self.wires[(coop, a.event.id)] = a.wire
        self.forks += decision.forks
        self.flagged |= {(f.event.coop, f.event.author) for f in decision.forks}
        for row in decision.records:
            self.state[(row.coop, row.kind, row.key)] = row.value
        return positions

    # The ChainView part of StoreView, straight from the in-memory chains.
    def head(self, coop: str, author: str) -> ChainHead | None:
        return self.chains.head(coop, author)

    def id_at(self, coop: str, author: str, seq: int) -> str | None:
        return self.chains.id_at(coop, author, seq)

    def coop_did(self, coop: str) -> str | None:
        return self.chains.coop_did(coop)

    # The rest of StoreView.
    def is_flagged(self, coop: str, author: str) -> bool:
        return (coop, author) in self.flagged

    def state_get(self, coop: str, kind: str, key: str) -> bytes | None:
        return self.state.get((coop, kind, key))

    def event_wire(self, coop: str, event_id: str) -> bytes | None:
        return self.wires.get((coop, event_id))

    def state_get_many(
        self, keys: Sequence[tuple[str, str, str]]
    ) -> dict[tuple[str, str, str], bytes]:
        return {k: self.state[k] for k in keys if k in self.state}

    def state_scan(self, coop: str, kind: str, prefix: str) -> list[tuple[str, bytes]]:
        return sorted(
            (k, v) for (c, t, k), v in self.state.items()
            if c == coop and t == kind and k.startswith(prefix)
        )  # fmt: skip

    def log_size(self, coop: str) -> int:
        return self.sizes.get(coop, 0)
