"""The write path's decisions, against an in-memory store at the port boundary."""

from __future__ import annotations

import threading
from collections.abc import Iterable

import pytest
from nacl.signing import SigningKey

from icn.application.append import AppendEvents
from icn.application.errors import BatchRefused, StoreBusy
from icn.application.group_commit import GroupCommit
from icn.application.memory_view import MemoryChains
from icn.application.ports import Accepted, ConcurrentAppend, Decide, ForkEvidence
from icn.domain.events.envelope import Event, inspect, sign_event
from icn.domain.identity.did import did_from_public_key

ALICE = SigningKey(b"\x01" * 32)
BOB = did_from_public_key(bytes(SigningKey(b"\x02" * 32).verify_key))


class FakeStore:
    """Just enough of the EventStore port: chains in memory, optional injected races."""

    def __init__(self, races: int = 0) -> None:
        self.chains = MemoryChains()
        self.log: list[Accepted] = []
        self.forks: list[ForkEvidence] = []
        self.flagged: set[tuple[str, str]] = set()
        self.races = races

    def is_flagged(self, coop: str, author: str) -> bool:
        return (coop, author) in self.flagged

    def append_decided(self, chains: Iterable[tuple[str, str]], decide: Decide) -> list[int]:
        decision = decide(self)  # the fake is its own view: one writer, no lock needed
        if self.races:
            self.races -= 1
            raise ConcurrentAppend("someone else won")
        start = len(self.log)
        for a in decision.accepted:
            self.chains.accept(a.event)
            self.log.append(a)
        self.forks += decision.forks
        self.flagged |= {(f.event.coop, f.event.author) for f in decision.forks}
        return list(range(start, start + len(decision.accepted)))

    # The ChainView part of StoreView, straight from the in-memory chains.
    def head(self, coop: str, author: str):
        return self.chains.head(coop, author)

    def id_at(self, coop: str, author: str, seq: int):
        return self.chains.id_at(coop, author, seq)

    def coop_did(self, coop: str):
        return self.chains.coop_did(coop)


def _chain(n: int, amount: int = 1) -> list[Event]:
    events: list[Event] = []
    for seq in range(1, n + 1):
        prev = events[-1].id if events else None
        tx = {
            "from": did_from_public_key(bytes(ALICE.verify_key)),
            "to": BOB,
            "amount": amount,
            "currency": "hours",
            "memo": None,
        }
        events.append(
            sign_event(
                ALICE,
                coop="c",
                seq=seq,
                prev=prev,
                ts=seq,
                type="ledger.EntryRecorded",
                body={"transactions": [tx]},
            )
        )
    return events


def _wires(events: list[Event]) -> list[bytes]:
    return [e.wire_bytes() for e in events]


def test_events_of_one_chain_in_one_batch_link_to_each_other() -> None:
    store = FakeStore()
    outcomes = AppendEvents(store, lambda: 0).append(_wires(_chain(3)))
    assert [(o.verdict, o.position) for o in outcomes] == [("ok", 0), ("ok", 1), ("ok", 2)]


def test_a_replayed_event_is_a_duplicate_and_is_not_stored_twice() -> None:
    store = FakeStore()
    app = AppendEvents(store, lambda: 0)
    lines = _wires(_chain(2))
    app.append(lines)
    assert [o.verdict for o in app.append(lines)] == ["duplicate", "duplicate"]
    assert len(store.log) == 2


def test_a_fork_is_quarantined_and_its_author_refused_afterwards() -> None:
    store = FakeStore()
    app = AppendEvents(store, lambda: 0)
    original = _chain(2)
    app.append(_wires(original))
    other = _chain(2, amount=5)[1]  # same seq 2, different content
    [fork] = app.append([other.wire_bytes()])
    assert fork.verdict == "fork"
    assert store.forks[0].conflicts_with == original[1].id
    nxt = sign_event(
        ALICE,
        coop="c",
        seq=3,
        prev=original[1].id,
        ts=9,
        type="ledger.EntryRecorded",
        body=original[1].body,
    )
    [refused] = app.append([nxt.wire_bytes()])
    assert (refused.verdict, refused.code) == ("refused", "author-flagged")


def test_an_atomic_batch_with_one_bad_line_stores_nothing() -> None:
    store = FakeStore()
    lines = _wires(_chain(3))
    lines[1] = lines[1].replace(b'"amount":1', b'"amount":2')
    with pytest.raises(BatchRefused) as refused:
        AppendEvents(store, lambda: 0).append(lines, atomic=True)
    assert refused.value.line == 2 and refused.value.verdict == "bad-id"
    assert store.log == []


def test_a_lost_race_is_judged_again_from_fresh_state() -> None:
    store = FakeStore(races=2)
    outcomes = AppendEvents(store, lambda: 0).append(_wires(_chain(2)))
    assert [o.verdict for o in outcomes] == ["ok", "ok"]


def test_a_store_that_always_loses_the_race_is_reported_busy() -> None:
    with pytest.raises(StoreBusy):
        AppendEvents(FakeStore(races=100), lambda: 0).append(_wires(_chain(1)))


class CountingStore(FakeStore):
    """Counts transactions, to show a group shares one."""

    def __init__(self) -> None:
        super().__init__()
        self.transactions = 0

    def append_decided(self, chains, decide):  # type: ignore[no-untyped-def]
        self.transactions += 1
        return super().append_decided(chains, decide)


def _chain_of(key: SigningKey, n: int) -> list[bytes]:
    did = did_from_public_key(bytes(key.verify_key))
    events: list[Event] = []
    for seq in range(1, n + 1):
        tx = {"from": did, "to": BOB, "amount": 1, "currency": "hours", "memo": None}
        events.append(
            sign_event(
                key,
                coop="c",
                seq=seq,
                prev=events[-1].id if events else None,
                ts=seq,
                type="ledger.EntryRecorded",
                body={"transactions": [tx]},
            )
        )
    return [e.wire_bytes() for e in events]


def test_requests_of_one_group_share_a_transaction_and_stay_all_or_nothing() -> None:
    store = CountingStore()
    app = AppendEvents(store, lambda: 0)
    alice, carol = SigningKey(b"\x11" * 32), SigningKey(b"\x12" * 32)
    a, c = _chain_of(alice, 2), _chain_of(carol, 2)
    bad = c[1].replace(b'"amount":1', b'"amount":2')  # breaks carol's second event's id
    requests = [[inspect(a[0])], [inspect(c[0]), inspect(bad)], [inspect(a[1])]]
    answers = app.append_requests(requests)
    assert store.transactions == 1
    assert [o.verdict for o in answers[0]] == ["ok"]  # type: ignore[union-attr]
    assert isinstance(answers[1], BatchRefused) and answers[1].line == 2
    assert [o.verdict for o in answers[2]] == ["ok"]  # type: ignore[union-attr]
    assert [x.event.author for x in store.log] == [did_from_public_key(bytes(alice.verify_key))] * 2
    # The refused request left nothing behind: carol's chain still starts at seq 1.
    assert AppendEvents(store, lambda: 0).append([c[0]])[0].verdict == "ok"


def test_a_later_request_of_a_group_builds_on_an_earlier_one() -> None:
    store = FakeStore()
    alice = SigningKey(b"\x13" * 32)
    first, second = _chain_of(alice, 2)
    answers = AppendEvents(store, lambda: 0).append_requests([[inspect(first)], [inspect(second)]])
    assert [[o.position for o in a] for a in answers] == [[0], [1]]  # type: ignore[union-attr]


def test_the_group_writer_answers_every_thread_and_commits_fewer_times() -> None:
    store = CountingStore()
    writer = GroupCommit(AppendEvents(store, lambda: 0))
    writer.start()
    keys = [SigningKey(bytes([40 + i]) * 32) for i in range(8)]
    results: dict[int, list[str]] = {}

    def post(i: int) -> None:
        out: list[str] = []
        for wire in _chain_of(keys[i], 5):
            out += [o.verdict for o in writer.submit([inspect(wire)])]
        results[i] = out

    threads = [threading.Thread(target=post, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    writer.stop()
    assert results == {i: ["ok"] * 5 for i in range(8)}
    assert len(store.log) == 40
    assert writer.requests == 40 and store.transactions == writer.groups <= 40


def test_a_refusal_reaches_only_its_own_caller() -> None:
    writer = GroupCommit(AppendEvents(FakeStore(), lambda: 0))
    writer.start()
    wire = _chain_of(SigningKey(b"\x21" * 32), 1)[0]
    with pytest.raises(BatchRefused):
        writer.submit([inspect(wire.replace(b'"amount":1', b'"amount":3'))])
    assert [o.verdict for o in writer.submit([inspect(wire)])] == ["ok"]
    writer.stop()
