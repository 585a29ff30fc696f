"""Two nodes keeping the coop's key run the same duties: the same bytes, or nothing at all.

Each node is a real store with the coop's log, judged at the same trusted times (as the
stream gives every replica). Its duty round (dispute settlement, demurrage, the standing
epoch) runs at its own clock: the events must not depend on that clock, so either node's
events are duplicates at the other. A node whose round was planned before the other's
events reached it finds each duty done when it gets to it, and signs nothing more: no
second epoch, no refusal reported.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import msgspec
import pytest
from support.coops import DEFAULT_POLICY, STORY_NOW, CoopScript

from icn.application.append import AppendEvents
from icn.application.authoring import EventAuthor
from icn.application.coop_duties import CoopDuties
from icn.application.trust_epochs import TrustEpochs
from icn.domain.coop.records import DAY_MS, DemurragePolicy, TrustPolicy
from icn.domain.events.envelope import Event, inspect
from icn.domain.ledger import bodies as lb
from icn.infrastructure.store.database import parse_database_url
from icn.infrastructure.store.event_store import SqlEventStore

POLICY = msgspec.structs.replace(
    DEFAULT_POLICY,
    demurrage={"hours": DemurragePolicy(rate_ppm=10_000, period_days=1)},
    trust=TrustPolicy(epoch_every_attestations=1),
)
"""1 % a day above zero; an epoch after every attestation."""
DUTIES = {lb.DISPUTE_SETTLED, lb.DEMURRAGE_CHARGED, "trust.StandingPublished"}


class KeyHolder:
    """One node keeping the coop's key: ``trusted`` is the time what it stores is judged at
    (the stream's stamp, the same on every replica), ``clock`` its own clock (not)."""

    def __init__(self, store: SqlEventStore, script: CoopScript) -> None:
        self.store, self.s = store, script
        self.trusted = self.clock = STORY_NOW
        self.append = AppendEvents(store, lambda: self.trusted)
        self.epochs = TrustEpochs(store, self.append, lambda: self.clock)
        author = EventAuthor(store, self.append, lambda: self.clock)
        self.duties = CoopDuties(store, author, self._key, self.epochs)

    def _key(self, coop: str) -> Any:
        return self.s.coop_key if coop == self.s.coop else None

    def write(self, *events: Event) -> list[str]:
        outcomes = self.append.append_inspected([inspect(e.wire_bytes()) for e in events])
        return [o.code or o.verdict for o in outcomes]


@pytest.fixture
def two(store: SqlEventStore, tmp_path: Path) -> Iterator[tuple[KeyHolder, KeyHolder]]:
    """Nodes A and B holding the same story: a founding, payments, a dispute resolved (a
    reversal to settle), an attestation (an epoch due); a demurrage period is due too."""
    (tmp_path / "b").mkdir()
    other = SqlEventStore(parse_database_url(None, tmp_path / "b"))
    other.create_tables()
    s = CoopScript("demo")
    story = [s.found({"alice": ["admin"], "bob": [], "carol": ["admin"]}, policy=POLICY)]
    paid = s.pay("alice", "bob", 3_000)
    story += [paid, s.pay("carol", "bob", 2_000)]
    filed = s.event("alice", lb.DISPUTE_FILED, {"entry": paid.id, "reason": "never came"})
    story += [filed, s.event("carol", lb.DISPUTE_RESOLVED, {"dispute": filed.id,
                                                           "outcome": "reversed"})]  # fmt: skip
    vouch = {"subject": s.did("bob"), "context": "general", "score_ppm": 900_000}
    story.append(s.event("alice", "trust.AttestationRecorded", vouch))
    nodes = (KeyHolder(store, s), KeyHolder(other, s))
    for node in nodes:
        for i, event in enumerate(story):  # one event per minute, as the stream stamped them
            node.trusted = node.clock = STORY_NOW + i * 60_000
            assert node.write(event) == ["ok"], event.type
    try:
        yield nodes
    finally:
        other.close()


def test_two_key_holders_sign_the_same_duties_whatever_their_clocks(
    two: tuple[KeyHolder, KeyHolder],
) -> None:
    a, b = two
    signed = []
    for node, clock in ((a, STORY_NOW + DAY_MS + 10_000), (b, STORY_NOW + DAY_MS + 95_000)):
        node.trusted, node.clock = STORY_NOW + DAY_MS + 100_000, clock  # the clocks disagree
        signed.append(node.duties.run(clock))
        assert node.duties.failures == []
    kinds = [e.type for e in signed[0]]
    assert {lb.DISPUTE_SETTLED, lb.DEMURRAGE_CHARGED, "trust.StandingPublished"} <= set(kinds)
    assert [e.id for e in signed[0]] == [e.id for e in signed[1]]  # same bytes on both
    settled = next(e for e in signed[0] if e.type == lb.DISPUTE_SETTLED)
    charged = next(e for e in signed[0] if e.type == lb.DEMURRAGE_CHARGED)
    assert charged.ts >= charged.body["period_end"] and settled.ts < STORY_NOW + DAY_MS
    # B's events reach A (and A's reach B): every one is a duplicate, nothing forks.
    assert a.write(*signed[1]) == ["duplicate"] * len(signed[1])
    assert b.write(*signed[0]) == ["duplicate"] * len(signed[0])
    for node in (a, b):
        assert node.duties.run(STORY_NOW + DAY_MS + 120_000) == []
        assert node.duties.failures == []


def test_a_round_planned_before_the_other_nodes_duties_arrived_signs_nothing(
    two: tuple[KeyHolder, KeyHolder],
) -> None:
    """B lists its duties, then A's events arrive (its consumer applies them) before B gets
    to each: B finds every duty done, publishes no second epoch and reports no refusal."""
    a, b = two
    now = STORY_NOW + DAY_MS + 10_000
    for node in two:
        node.trusted = node.clock = now
    done_by_a = a.duties.run(now)
    assert {e.type for e in done_by_a} >= DUTIES

    planned: list[tuple[str, Callable[[], list[Event]]]] = []
    coop = b.s.coop
    key = b.s.coop_key
    planned += [
        (f"settle {d.id}", partial(b.duties.settle, coop, d, key)) for d in b.duties.unsettled(coop)
    ]
    planned.append(("demurrage", partial(b.duties.charge_demurrage, coop, key, now)))
    planned += b.epochs.duties(coop, key)
    assert len(planned) == 3

    assert b.write(*done_by_a) == ["ok"] * len(done_by_a)  # A's duties reach B
    for what, duty in planned:
        assert duty() == [], what  # done by A: nothing signed, nothing refused
    size = b.store.tree_size(coop)
    assert b.duties.run(now) == [] and b.duties.failures == []
    assert b.store.tree_size(coop) == size
