"""The EventStore port's write-side contract, run against every implementation.

As eventsourcing runs one abstract recorder test case against every backend, one
class of tests here runs against the in-memory store the unit tests use and against
the real store on SQLite and PostgreSQL: a fake that passed the unit tests but broke
this contract would make those tests say nothing about the node.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from support.coops import CoopScript
from support.memory_store import MemoryStore

from icn.application.ports import (
    Accepted,
    ConcurrentAppend,
    Decision,
    ForkEvidence,
    StateRow,
    StoreView,
)
from icn.domain.events.envelope import Event
from icn.infrastructure.store.event_store import SqlEventStore


def accepted(*events: Event) -> list[Accepted]:
    return [Accepted(e, e.wire_bytes(), e.ts) for e in events]


def in_view(port: Any, read: Callable[[StoreView], Any]) -> Any:
    """What ``read`` finds in the view a decision gets (a write that stores nothing)."""
    seen: list[Any] = []

    def decide(view: StoreView) -> Decision:
        seen.append(read(view))
        return Decision([], [], 0)

    assert port.append_decided([], decide) == []
    return seen[0]


class StoreContract:
    """What every EventStore must do; subclasses say which store ``port`` is."""

    def test_positions_are_leaf_indexes_per_coop_and_chains_follow(self, port: Any) -> None:
        food, bike = CoopScript("food"), CoopScript("bike")
        f1, f2, b1 = food.found({"alice": []}), food.pay("alice", "coop", 1), bike.found()
        assert port.append_decided([], lambda _: Decision(accepted(f1, b1), [], 1)) == [0, 0]
        assert port.append_decided([], lambda _: Decision(accepted(f2), [], 2)) == [1]
        head = port.head("food", f2.author)
        assert (head.seq, head.id, head.ts) == (f2.seq, f2.id, f2.ts)
        assert in_view(port, lambda v: v.id_at("food", f1.author, 1)) == f1.id
        dids = in_view(port, lambda v: (v.coop_did("food"), v.coop_did("bike")))
        assert dids == (f1.author, b1.author)
        assert in_view(port, lambda v: v.event_wire("food", f2.id)) == f2.wire_bytes()

    def test_a_second_event_at_an_occupied_seq_stores_nothing_of_its_decision(
        self, port: Any
    ) -> None:
        s = CoopScript("food")
        founded = s.found({"alice": []})
        port.append_decided([], lambda _: Decision(accepted(founded), [], 1))
        other = CoopScript("food").found({"alice": [], "bob": []})  # seq 1 again, other id
        fresh = CoopScript("food").pay("alice", "bob", 1)
        with pytest.raises(ConcurrentAppend):
            port.append_decided([], lambda _: Decision(accepted(fresh, other), [], 2))
        assert port.head("food", other.author).id == founded.id
        assert port.head("food", fresh.author) is None

    def test_a_decision_that_raises_stores_nothing(self, port: Any) -> None:
        founded = CoopScript("food").found()

        def decide(view: StoreView) -> Decision:
            raise RuntimeError("refused while judging")

        with pytest.raises(RuntimeError):
            port.append_decided([("food", founded.author)], decide)
        assert port.head("food", founded.author) is None

    def test_records_and_fork_evidence_commit_with_the_events(self, port: Any) -> None:
        s = CoopScript("food")
        founded, paid = s.found({"alice": []}), s.pay("alice", "coop", 1)
        rival = CoopScript("food").found({"alice": [], "carol": []})
        rows = [StateRow("food", "member", "a", b"1"), StateRow("food", "account", "b", b"2")]
        fork = ForkEvidence(rival, rival.wire_bytes(), founded.id)
        port.append_decided([], lambda _: Decision(accepted(founded, paid), [fork], 1, rows))
        assert port.state_get("food", "member", "a") == b"1"
        many = in_view(
            port, lambda v: v.state_get_many([("food", "account", "b"), ("food", "x", "")])
        )
        assert many == {("food", "account", "b"): b"2"}
        flags = in_view(port, lambda v: (v.is_flagged("food", rival.author),
                                         v.is_flagged("bike", rival.author)))  # fmt: skip
        assert flags == (True, False)

    def test_the_view_a_decision_gets_reads_what_was_committed(self, port: Any) -> None:
        s = CoopScript("food")
        founded = s.found({"alice": []})
        rows = [StateRow("food", "member", "a", b"1")]
        port.append_decided([], lambda _: Decision(accepted(founded), [], 1, rows))
        seen: list[Any] = []

        def decide(view: StoreView) -> Decision:
            seen.extend([view.head("food", founded.author), view.state_get("food", "member", "a")])
            return Decision([], [], 2)

        assert port.append_decided([("food", founded.author)], decide) == []
        assert seen[0].id == founded.id and seen[1] == b"1"


class TestMemoryStore(StoreContract):
    @pytest.fixture
    def port(self) -> MemoryStore:
        return MemoryStore()


class TestSqlStore(StoreContract):
    @pytest.fixture
    def port(self, store: SqlEventStore) -> SqlEventStore:
        return store
