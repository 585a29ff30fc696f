"""The write path's decisions, against an in-memory store at the port boundary."""

from __future__ import annotations

import threading

import msgspec
import pytest
from support.coops import CoopScript, entry_body, resign, story_clock
from support.memory_store import MemoryStore

from icn.application import group_commit
from icn.application.append import AppendEvents
from icn.application.errors import BatchRefused, StoreBusy
from icn.application.group_commit import GroupCommit
from icn.domain.coop.records import AccountRecord
from icn.domain.events.envelope import Event, inspect

MEMBERS = {"alice": ["admin"], "bob": [], "carol": []} | {f"m{i}": [] for i in range(8)}


def founded(store: MemoryStore | None = None, races: int = 0) -> tuple[MemoryStore, CoopScript]:
    """A store holding one founded coop (``c``: alice admin, bob, carol, m0..m7), and its script.

    Races (if any) start after the founding.
    """
    store = store or MemoryStore()
    script = CoopScript("c")
    [ok] = AppendEvents(store, story_clock).append([script.found(MEMBERS).wire_bytes()])
    assert (ok.verdict, ok.position) == ("ok", 0)
    store.races = races
    return store, script


def _chain(s: CoopScript, n: int, amount: int = 1, payer: str = "alice") -> list[Event]:
    return [s.pay(payer, "bob", amount) for _ in range(n)]


def _wires(events: list[Event]) -> list[bytes]:
    return [e.wire_bytes() for e in events]


def balance(store: MemoryStore, s: CoopScript, who: str) -> int:
    raw = store.state_get("c", "account", f"{s.did(who)}/hours")
    return msgspec.json.decode(raw, type=AccountRecord).balance if raw else 0


def test_events_of_one_chain_in_one_batch_link_to_each_other() -> None:
    store, s = founded()
    outcomes = AppendEvents(store, story_clock).append(_wires(_chain(s, 3)))
    assert [(o.verdict, o.position) for o in outcomes] == [("ok", 1), ("ok", 2), ("ok", 3)]
    assert (balance(store, s, "alice"), balance(store, s, "bob")) == (-3, 3)


def test_a_replayed_event_is_a_duplicate_and_is_not_stored_twice() -> None:
    store, s = founded()
    app = AppendEvents(store, story_clock)
    lines = _wires(_chain(s, 2))
    app.append(lines)
    state = dict(store.state)
    assert [o.verdict for o in app.append(lines)] == ["duplicate", "duplicate"]
    assert len(store.log) == 3
    assert store.state == state  # nothing paid twice


def test_a_fork_is_quarantined_and_its_author_refused_afterwards() -> None:
    store, s = founded()
    app = AppendEvents(store, story_clock)
    original = _chain(s, 2)
    app.append(_wires(original))
    other = resign(s.key("alice"), original[1], body=entry_body(s.did("alice"), s.did("bob"), 5))
    [fork] = app.append([other.wire_bytes()])
    assert fork.verdict == "fork"
    assert store.forks[0].conflicts_with == original[1].id
    nxt = s.pay("alice", "bob", 1)
    assert nxt.seq == 3 and nxt.prev == original[1].id
    [refused] = app.append([nxt.wire_bytes()])
    assert (refused.verdict, refused.code) == ("refused", "author-flagged")
    assert balance(store, s, "alice") == -2


def test_an_atomic_batch_with_one_bad_line_stores_nothing() -> None:
    store, s = founded()
    state = dict(store.state)
    lines = _wires(_chain(s, 3))
    lines[1] = lines[1].replace(b'"amount":1', b'"amount":2')
    with pytest.raises(BatchRefused) as refused:
        AppendEvents(store, story_clock).append(lines, atomic=True)
    assert refused.value.line == 2 and refused.value.verdict == "bad-id"
    assert len(store.log) == 1  # the founding only
    assert store.state == state


def test_an_atomic_batch_with_a_line_a_coop_rule_refuses_stores_nothing() -> None:
    store, s = founded()
    state = dict(store.state)
    # The default policy lets alice go 10_000 below zero: the second payment passes it.
    lines = _wires([s.pay("alice", "bob", 6_000), s.pay("alice", "carol", 6_000)])
    with pytest.raises(BatchRefused) as refused:
        AppendEvents(store, story_clock).append(lines, atomic=True)
    assert (refused.value.line, refused.value.verdict, refused.value.code) == (
        2,
        "refused",
        "credit-limit-exceeded",
    )
    assert len(store.log) == 1 and store.state == state


def test_each_event_of_a_batch_is_judged_on_the_state_the_ones_before_it_left() -> None:
    store, s = founded()
    first = s.pay("alice", "bob", 6_000)
    second = s.pay("alice", "carol", 6_000, advance=False)  # refused: alice's chain stays
    ts = s.ts + 100
    stranger_pays = s.pay("newcomer", "bob", 1, advance=False, ts=ts)
    admitted = s.admit("alice", "newcomer")
    newcomer_pays = s.pay("newcomer", "bob", 1, ts=ts)
    assert stranger_pays.id == newcomer_pays.id  # the same event, before and after admission

    outcomes = AppendEvents(store, story_clock).append(
        _wires([first, second, stranger_pays, admitted, newcomer_pays])
    )

    assert [(o.verdict, o.code) for o in outcomes] == [
        ("ok", ""),
        ("refused", "credit-limit-exceeded"),  # 12_000 below zero in all
        ("refused", "not-a-member"),  # not yet
        ("ok", ""),
        ("ok", ""),  # its seq 1 was not used up by the refusal
    ]
    assert [o.position for o in outcomes] == [1, None, None, 2, 3]
    assert (balance(store, s, "alice"), balance(store, s, "bob")) == (-6_000, 6_001)
    assert balance(store, s, "carol") == 0


def test_an_event_of_a_coop_never_founded_is_refused() -> None:
    store, _ = founded()
    elsewhere = CoopScript("elsewhere")
    [outcome] = AppendEvents(store, story_clock).append(
        [elsewhere.pay("alice", "bob", 1).wire_bytes()]
    )
    assert (outcome.verdict, outcome.code) == ("refused", "unknown-coop")
    assert len(store.log) == 1


def test_a_lost_race_is_judged_again_from_fresh_state() -> None:
    store, s = founded(races=2)
    outcomes = AppendEvents(store, story_clock).append(_wires(_chain(s, 2)))
    assert [o.verdict for o in outcomes] == ["ok", "ok"]
    assert balance(store, s, "alice") == -2  # records applied once, by the winning attempt


def test_a_store_that_always_loses_the_race_is_reported_busy() -> None:
    store, s = founded(races=100)
    with pytest.raises(StoreBusy):
        AppendEvents(store, story_clock).append(_wires(_chain(s, 1)))
    assert len(store.log) == 1 and balance(store, s, "alice") == 0


class CountingStore(MemoryStore):
    """Counts transactions, to show a group shares one."""

    def __init__(self) -> None:
        super().__init__()
        self.transactions = 0

    def append_decided(self, chains, decide):  # type: ignore[no-untyped-def]
        self.transactions += 1
        return super().append_decided(chains, decide)


def _chain_of(s: CoopScript, who: str, n: int) -> list[bytes]:
    return _wires([s.pay(who, "bob", 1) for _ in range(n)])


def test_requests_of_one_group_share_a_transaction_and_stay_all_or_nothing() -> None:
    store, s = founded(store=CountingStore())
    assert isinstance(store, CountingStore)
    store.transactions = 0
    app = AppendEvents(store, story_clock)
    a, c = _chain_of(s, "alice", 2), _chain_of(s, "carol", 2)
    bad = c[1].replace(b'"amount":1', b'"amount":2')  # breaks carol's second event's id
    requests = [[inspect(a[0])], [inspect(c[0]), inspect(bad)], [inspect(a[1])]]
    answers = app.append_requests(requests)
    assert store.transactions == 1
    assert [o.verdict for o in answers[0]] == ["ok"]  # type: ignore[union-attr]
    assert isinstance(answers[1], BatchRefused) and answers[1].line == 2
    assert [o.verdict for o in answers[2]] == ["ok"]  # type: ignore[union-attr]
    assert [x.event.author for x in store.log[1:]] == [s.did("alice")] * 2
    # The refused request left nothing behind: carol's chain still starts at seq 1 …
    assert AppendEvents(store, story_clock).append([c[0]])[0].verdict == "ok"
    # … and her first payment was not counted by the refused request.
    assert (balance(store, s, "carol"), balance(store, s, "bob")) == (-1, 3)


def test_a_request_a_coop_rule_refuses_leaves_no_records_for_the_next_request() -> None:
    store, s = founded()
    big = s.pay("alice", "bob", 9_000)
    over = s.pay("alice", "carol", 2_000)  # 11_000 below zero: refused, so big is not kept
    after = s.pay("carol", "bob", 10)
    answers = AppendEvents(store, story_clock).append_requests(
        [[inspect(big.wire_bytes()), inspect(over.wire_bytes())], [inspect(after.wire_bytes())]]
    )
    assert isinstance(answers[0], BatchRefused)
    assert (answers[0].line, answers[0].code) == (2, "credit-limit-exceeded")
    assert [o.position for o in answers[1]] == [1]  # type: ignore[union-attr]
    assert balance(store, s, "alice") == 0 and balance(store, s, "bob") == 10


def test_a_later_request_of_a_group_builds_on_an_earlier_one() -> None:
    store, s = founded()
    first, second = _chain_of(s, "alice", 2)
    answers = AppendEvents(store, story_clock).append_requests(
        [[inspect(first)], [inspect(second)]]
    )
    assert [[o.position for o in a] for a in answers] == [[1], [2]]  # type: ignore[union-attr]


def test_a_later_request_of_a_group_is_judged_on_the_records_of_an_earlier_one() -> None:
    store, s = founded()
    # Each payment alone fits alice's limit of 10_000, both together do not.
    first, second = s.pay("alice", "bob", 6_000), s.pay("alice", "bob", 6_000)
    third = s.pay("bob", "carol", 1)
    answers = AppendEvents(store, story_clock).append_requests(
        [
            [inspect(first.wire_bytes())],
            [inspect(second.wire_bytes())],
            [inspect(third.wire_bytes())],
        ]
    )
    assert [o.position for o in answers[0]] == [1]  # type: ignore[union-attr]
    assert isinstance(answers[1], BatchRefused) and answers[1].code == "credit-limit-exceeded"
    assert [o.position for o in answers[2]] == [2]  # type: ignore[union-attr]


def test_the_group_writer_answers_every_thread_and_commits_fewer_times() -> None:
    store, s = founded(store=CountingStore())
    assert isinstance(store, CountingStore)
    store.transactions = 0
    writer = GroupCommit(AppendEvents(store, story_clock))
    writer.start()
    names = [f"m{i}" for i in range(8)]
    chains = {i: _chain_of(s, names[i], 5) for i in range(8)}
    results: dict[int, list[str]] = {}

    def post(i: int) -> None:
        out: list[str] = []
        for wire in chains[i]:
            out += [o.verdict for o in writer.submit([inspect(wire)])]
        results[i] = out

    threads = [threading.Thread(target=post, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    writer.stop()
    assert results == {i: ["ok"] * 5 for i in range(8)}
    assert len(store.log) == 41
    assert writer.requests == 40 and store.transactions == writer.groups <= 40
    assert balance(store, s, "bob") == 40


def test_a_refusal_reaches_only_its_own_caller() -> None:
    store, s = founded()
    writer = GroupCommit(AppendEvents(store, story_clock))
    writer.start()
    wire = _chain_of(s, "carol", 1)[0]
    with pytest.raises(BatchRefused):
        writer.submit([inspect(wire.replace(b'"amount":1', b'"amount":3'))])
    assert [o.verdict for o in writer.submit([inspect(wire)])] == ["ok"]
    writer.stop()


def test_a_request_whose_caller_stopped_waiting_is_still_committed_and_others_answered() -> None:
    """An HTTP client that hangs up cancels its wait; the group it was queued in goes on."""
    store, s = founded()
    writer = GroupCommit(AppendEvents(store, story_clock))
    first, second = _chain_of(s, "m0", 2)
    gone = writer.enqueue([inspect(first)])
    gone.cancel()  # queued, not started: cancelling succeeds, as asyncio's wrap_future would
    waiting = writer.enqueue([inspect(second)])
    writer.start()  # both are taken in one group
    assert [o.verdict for o in waiting.result(timeout=10)] == ["ok"]
    writer.stop()
    assert len(store.log) == 3  # founding, then both: the cancelled one is committed too


def test_a_group_stops_at_a_thousand_events_and_the_next_starts_with_what_did_not_fit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A replicating node sends a group to the stream as one atomic batch (at most 1,000)."""
    monkeypatch.setattr(group_commit, "MAX_GROUP_EVENTS", 10)
    store, s = founded(store=CountingStore())
    assert isinstance(store, CountingStore)
    store.transactions = 0
    writer = GroupCommit(AppendEvents(store, story_clock))
    wires = _chain_of(s, "m0", 12)
    requests = [[inspect(w) for w in wires[i : i + 4]] for i in (0, 4, 8)]
    futures = [writer.enqueue(r) for r in requests]  # queued before the writer starts
    writer.start()
    assert [len(f.result(timeout=10)) for f in futures] == [4, 4, 4]
    writer.stop()
    # 4 + 4 fit in a group of 10; the third request starts the next group
    assert writer.groups == store.transactions == 2 and len(store.log) == 13
