"""Intake of delivered batches: append, dedupe, quarantine, park and retry, reject.

Runs on a real SQLite store (a file in ``tmp_path``; milliseconds per test)
so the parked rows and the known-bytes shortcut are the real ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from support.coops import CoopScript, entry_body, resign
from support.stores import StoreNode

from icn.domain.events.envelope import Event

COOP = "intake-coop"


class Node(StoreNode):
    """A store, its replication state and an intake, like one receiving node."""

    def __init__(self, directory: Path, max_parked: int = 10_000) -> None:
        super().__init__(directory, COOP, max_parked)


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    n = Node(tmp_path / "node")
    yield n
    n.close()


def w(*events: Event) -> list[bytes]:
    return [e.wire_bytes() for e in events]


def founded() -> tuple[CoopScript, Event]:
    s = CoopScript(COOP)
    return s, s.found({"alice": ["admin"], "bob": [], "carol": []})


def test_a_batch_is_appended_and_a_redelivery_is_all_duplicates(node: Node) -> None:
    s, f = founded()
    batch = w(f, s.pay("alice", "bob", 5), s.pay("bob", "carol", 3))
    counts = node.intake.receive(COOP, batch)
    assert (counts.received, counts.accepted, counts.duplicates) == (3, 3, 0)
    again = node.intake.receive(COOP, batch)
    assert (again.accepted, again.duplicates, again.rejected) == (0, 3, 0)
    assert len(node.ids()) == 3


def test_a_known_id_is_a_no_op_whatever_the_bytes_under_it(node: Node) -> None:
    """Recognised by id before any check: the same id is the same event, other bytes under
    it would fail the id check; neither can change the log."""
    s, f = founded()
    pay = s.pay("alice", "bob", 5)
    node.intake.receive(COOP, w(f, pay))
    forged = msgspec.structs.replace(pay, sig="00" * 64).wire_bytes()  # same id, bad signature
    other = pay.wire_bytes().replace(b'"amount":5', b'"amount":9')  # same claimed id, other body
    counts = node.intake.receive(COOP, [forged, other])
    assert (counts.duplicates, counts.rejected, counts.accepted) == (2, 0, 0)
    assert node.ids() == [f.id, pay.id]
    fresh = msgspec.structs.replace(s.pay("bob", "alice", 1, advance=False), sig="00" * 64)
    counts = node.intake.receive(COOP, w(fresh))  # an unknown id is checked in full
    assert counts.rejected_codes == {"bad-signature": 1}


def test_a_gap_is_parked_until_its_predecessor_arrives(node: Node) -> None:
    s, f = founded()
    p1, p2, p3 = (s.pay("alice", "bob", n) for n in (1, 2, 3))
    node.intake.receive(COOP, w(f))
    counts = node.intake.receive(COOP, w(p3, p2))
    assert (counts.accepted, counts.parked) == (0, 2)
    assert node.state.parked_count(COOP) == 2
    counts = node.intake.receive(COOP, w(p1))
    assert (counts.accepted, counts.unparked) == (3, 2)
    assert node.ids() == [f.id, p1.id, p2.id, p3.id]
    assert node.state.parked_count(COOP) == 0


def test_an_event_before_the_coop_is_founded_waits_for_the_founding(node: Node) -> None:
    s, f = founded()
    pay = s.pay("alice", "bob", 5)
    counts = node.intake.receive(COOP, w(pay))
    assert counts.parked == 1
    assert [p.code for p in node.state.parked(COOP)] == ["unknown-coop"]
    counts = node.intake.receive(COOP, w(f))
    assert counts.accepted == 2 and counts.unparked == 1


def test_a_payment_by_a_member_not_yet_admitted_here_waits_for_the_admission(node: Node) -> None:
    s, f = founded()
    admit = s.admit("alice", "dave")
    pay = s.pay("dave", "bob", 5)
    node.intake.receive(COOP, w(f))
    assert node.intake.receive(COOP, w(pay)).parked == 1
    assert node.state.parked(COOP)[0].code == "not-a-member"
    counts = node.intake.receive(COOP, w(admit))
    assert counts.accepted == 2 and counts.unparked == 1
    assert node.ids() == [f.id, admit.id, pay.id]


def test_a_payment_over_the_limit_waits_for_the_credit_that_covers_it(node: Node) -> None:
    """Judged on this node's order, a payment can look over the limit until the credit that
    made it valid where it was accepted arrives: parked, then appended."""
    s, f = founded()
    credit = s.pay("carol", "bob", 8_000)
    spend = s.pay("bob", "alice", 15_000)  # -15,000 alone; -7,000 after the credit
    node.intake.receive(COOP, w(f))
    counts = node.intake.receive(COOP, w(spend))
    assert counts.parked == 1 and node.state.parked(COOP)[0].code == "credit-limit-exceeded"
    counts = node.intake.receive(COOP, w(credit))
    assert counts.accepted == 2 and counts.unparked == 1


def test_chains_of_parked_events_drain_over_several_passes(node: Node) -> None:
    """dave's payments wait for his admission, which waits for alice's earlier event."""
    s, f = founded()
    a1 = s.pay("alice", "bob", 1)
    admit = s.admit("alice", "dave")  # alice's seq 2: a gap until a1 arrives
    d1, d2 = s.pay("dave", "bob", 1), s.pay("dave", "bob", 2)
    node.intake.receive(COOP, w(f))
    assert node.intake.receive(COOP, w(d2, d1, admit)).parked == 3
    counts = node.intake.receive(COOP, w(a1))
    assert counts.accepted == 4 and counts.unparked == 3
    assert node.state.parked_count(COOP) == 0


def test_a_fork_goes_to_quarantine_with_its_counterpart(node: Node) -> None:
    s, f = founded()
    pay = s.pay("alice", "bob", 5)
    fork = resign(s.key("alice"), pay, body=entry_body(s.did("alice"), s.did("carol"), 5))
    counts = node.intake.receive(COOP, w(f, pay, fork))
    assert (counts.accepted, counts.forks) == (2, 1)
    (evidence,) = node.store.quarantined(COOP)
    assert evidence.event.id == fork.id and evidence.conflicts_with == pay.id
    assert node.state.quarantined_count(COOP) == 1
    after = s.pay("alice", "bob", 1)  # the author is flagged from now on
    counts = node.intake.receive(COOP, w(after))
    assert counts.rejected_codes == {"author-flagged": 1}


def test_permanent_failures_are_rejected_and_dropped(node: Node) -> None:
    s, f = founded()
    node.intake.receive(COOP, w(f, s.pay("alice", "bob", 1), s.pay("bob", "carol", 1)))
    nxt = s.pay("bob", "carol", 5, advance=False)
    broken = resign(s.key("bob"), nxt, prev="ab" * 32)  # seq follows, prev does not
    bad_id = nxt.wire_bytes().replace(b'"amount":5', b'"amount":6')
    bad_sig = msgspec.structs.replace(nxt, sig="00" * 64)
    other = CoopScript("other-coop").found()
    refounded = s.found()  # the coop's DID, seq 2: a second coop.Founded
    counts = node.intake.receive(
        COOP, [b"{not json", bad_id, *w(bad_sig, broken, other, refounded)]
    )
    assert counts.received == 6 and counts.rejected == 6
    assert counts.rejected_codes == {
        "malformed": 1,
        "bad-id": 1,
        "bad-signature": 1,
        "broken-link": 1,
        "wrong-coop": 1,
        "coop-already-founded": 1,
    }
    assert node.state.parked_count(COOP) == 0
    assert len(node.ids()) == 3


def test_the_bound_drops_the_oldest_parked_events_and_counts_them(tmp_path: Path) -> None:
    node = Node(tmp_path / "small", max_parked=3)
    try:
        s, f = founded()
        node.intake.receive(COOP, w(f))
        pays = [s.pay("alice", "bob", n) for n in range(1, 7)]
        counts = node.intake.receive(COOP, w(*pays[1:]))  # seq 2..6: all gaps
        assert (counts.parked, counts.evicted) == (5, 2)
        assert node.state.parked_count(COOP) == 3 and node.state.parked_dropped(COOP) == 2
        kept = [p.event_id for p in node.state.parked(COOP)]
        assert kept == [p.id for p in pays[3:]]  # the oldest two went
        counts = node.intake.receive(COOP, w(pays[0]))
        assert counts.accepted == 1  # seq 2 and 3 were dropped: 4..6 still wait
        assert node.state.parked_count(COOP) == 3
    finally:
        node.close()


def test_parked_events_survive_a_restart_and_are_retried_by_a_new_intake(tmp_path: Path) -> None:
    s, f = founded()
    p1, p2 = s.pay("alice", "bob", 1), s.pay("alice", "bob", 2)
    first = Node(tmp_path / "n")
    first.intake.receive(COOP, w(f, p2))
    first.close()
    second = Node(tmp_path / "n")
    try:
        counts = second.intake.receive(COOP, w(p1))
        assert counts.accepted == 2 and second.ids() == [f.id, p1.id, p2.id]
    finally:
        second.close()


def test_a_parked_event_redelivered_is_not_parked_twice(node: Node) -> None:
    s, f = founded()
    node.intake.receive(COOP, w(f))
    s.pay("alice", "bob", 1)
    p2 = s.pay("alice", "bob", 2)
    assert node.intake.receive(COOP, w(p2)).parked == 1
    assert node.intake.receive(COOP, w(p2)).parked == 0
    assert node.state.parked_count(COOP) == 1


def test_appended_events_are_known_once_as_already_in_the_stream(node: Node) -> None:
    """The relay asks before publishing: what came from the stream need not go back."""
    s, f = founded()
    p1, p2 = s.pay("alice", "bob", 1), s.pay("alice", "bob", 2)
    node.intake.receive(COOP, w(f, p2))  # p2 parked
    node.intake.receive(COOP, w(p1))  # p1 appended, p2 unparked
    assert all(node.intake.came_from_stream(COOP, e.id) for e in (f, p1, p2))
    assert not node.intake.came_from_stream(COOP, p1.id)  # once
    assert not node.intake.came_from_stream("other-coop", f.id)
    node.intake.receive(COOP, w(f))  # a duplicate is not an append
    assert not node.intake.came_from_stream(COOP, f.id)


def test_commit_listeners_hear_each_commit_with_the_log_positions(node: Node) -> None:
    """What the outbox relay is handed must be exactly what the log holds, in order."""
    heard: list[list[tuple[str, int, str, str, str]]] = []
    node.append.add_commit_listener(
        lambda events: heard.append(
            [(e.coop, e.position, e.event_id, e.event_type, e.author) for e in events]
        )
    )
    s, f = founded()
    p1, p3 = s.pay("alice", "bob", 1), s.pay("bob", "carol", 2)
    node.intake.receive(COOP, w(f, p1))
    node.intake.receive(COOP, w(p1, p3))  # a duplicate, then a new one
    stored = node.store.entries(COOP)
    assert [[(c, pos, i) for c, pos, i, _, _ in commit] for commit in heard] == [
        [(COOP, 0, f.id), (COOP, 1, p1.id)],
        [(COOP, 2, p3.id)],
    ]
    assert [e.leaf_index for e in stored] == [0, 1, 2]
    assert heard[1][0][3:] == ("ledger.EntryRecorded", p3.author)


def test_a_batch_of_our_own_events_is_skipped_only_when_nothing_can_be_parked(
    node: Node,
) -> None:
    s, f = founded()
    p1, p2 = s.pay("alice", "bob", 1), s.pay("alice", "bob", 2)
    ours = {f.id, p1.id}
    assert not node.intake.skip_own(COOP, w(f, p1), ours.__contains__)  # lot never looked at
    node.intake.receive(COOP, w(f, p1))  # finds the lot empty
    assert node.intake.skip_own(COOP, w(f, p1), ours.__contains__)
    assert not node.intake.skip_own(COOP, w(f, p2), ours.__contains__)  # p2 is not ours
    assert not node.intake.skip_own(COOP, [b"not json"], lambda i: True)
    node.intake.receive(COOP, w(s.pay("alice", "bob", 4)))  # a gap: parked
    assert not node.intake.skip_own(COOP, w(f, p1), ours.__contains__)
