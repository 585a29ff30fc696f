"""Where a parked event lands: right behind the first event after which it passes, on every node.

Batch boundaries differ between nodes (fetch sizes, timing, restarts), and an
event that waits may be let through by a write of this very node. Each node
here is a real SQLite store with its write path and intake; the shared stream
is the in-memory compare-and-set sequencer below (JetStream's rule: publish
after position ``P`` only if the stream ends at ``P``).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.coops import STORY_NOW, CoopScript
from support.stores import StoreNode

from icn.application.errors import BatchRefused
from icn.application.ports import Accepted
from icn.application.sequencing import StreamMoved, StreamPositions
from icn.domain.events.envelope import Event, inspect

COOP = "parked-positions"


def story(coop: str = COOP) -> tuple[CoopScript, list[Event]]:
    """A stream in which seven events arrive before what lets them pass.

    Gaps (alice's seq 3 and 4 before her seq 2 and 3), a payer not yet
    admitted (dave, twice), a payment over the limit until credit arrives,
    a chain (erin's admission is itself a gap), interleaved with events that
    pass at once.
    """
    s = CoopScript(coop)
    f = s.found({"alice": ["admin"], "bob": [], "carol": [], "frank": []})
    a1 = s.pay("alice", "bob", 1)
    a2 = s.pay("alice", "bob", 2)
    a3 = s.pay("alice", "carol", 3)
    admit_dave = s.admit("alice", "dave")
    d1, d2 = s.pay("dave", "bob", 4), s.pay("dave", "carol", 5)
    credit = s.pay("carol", "bob", 8_000)
    spend = s.pay("bob", "carol", 15_000)  # -15,000 alone; fits once the credit is in
    b = [s.pay("frank", "carol", n) for n in range(10, 16)]
    admit_erin = s.admit("alice", "erin")  # alice's seq 5
    e1 = s.pay("erin", "bob", 6)
    stream = [
        f, a3, b[0], d1, a2, b[1], e1, spend, a1, b[2], d2, admit_dave, b[3],
        admit_erin, credit, b[4], b[5],
    ]  # fmt: skip
    return s, stream


class Node(StoreNode):
    def __init__(
        self, directory: Path, stream: Stream | None = None, max_parked: int = 10_000
    ) -> None:
        self.sequencer = StreamSequencer(stream) if stream is not None else None
        super().__init__(directory, COOP, max_parked, sequencer=self.sequencer)

    def receive(self, messages: Sequence[bytes], first: int, coop: str = COOP) -> None:
        """One delivered batch; ``first``: the stream index of its first message."""
        times = [STORY_NOW + first + i for i in range(len(messages))]
        self.intake.receive(coop, messages, times)

    def take(self, stream: Sequence[bytes], cuts: Sequence[int], coop: str = COOP) -> None:
        """The whole stream, delivered in batches that end at each of ``cuts``."""
        start = 0
        for end in [*sorted(set(cuts)), len(stream)]:
            if start < end:
                self.receive(stream[start:end], start, coop)
                start = end

    def log(self, coop: str) -> tuple[list[str], bytes]:
        """The coop's ids in log order, and its root."""
        ids = [e.event_id for e in self.store.entries(coop)]
        return ids, self.store.root(coop, len(ids))

    def consume(self, batch: int = 1) -> None:
        """What the node's consumer does: take the stream past its position, in order."""
        assert self.sequencer is not None
        at = self.sequencer.positions.at(COOP)
        with self.sequencer.stream.lock:
            messages = self.sequencer.stream.messages[at:]
        for start in range(0, len(messages), batch):
            chunk = messages[start : start + batch]
            self.receive(chunk, at + start)
            self.sequencer.positions.advance(COOP, at + start + len(chunk))

    def post(self, *requests: Sequence[Event]) -> list[list[str] | str]:
        """All-or-nothing requests in one group commit: each one's ids, or its refusal."""
        answers = self.append.append_requests(
            [[inspect(e.wire_bytes()) for e in r] for r in requests]
        )
        return [a.code if isinstance(a, BatchRefused) else [o.id or "" for o in a] for a in answers]

    def root(self) -> bytes:
        return self.store.root(COOP, self.store.tree_size(COOP))


class Stream:
    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.lock = threading.Lock()


class StreamSequencer:
    """A node's sequencer on the shared :class:`Stream` (compare-and-set on its end)."""

    def __init__(self, stream: Stream) -> None:
        self.stream = stream
        self.positions = StreamPositions()

    def prepare(self, coops: Sequence[str]) -> None:
        pass

    def sequence(
        self, coop: str, after: int, events: Sequence[Accepted], *, atomic: bool = True
    ) -> int:
        with self.stream.lock:
            if len(self.stream.messages) != after:
                raise StreamMoved(coop, len(self.stream.messages))
            self.stream.messages += [a.wire for a in events]
            return len(self.stream.messages)


@pytest.fixture
def wires() -> list[bytes]:
    return [e.wire_bytes() for e in story()[1]]


def test_every_batch_split_appends_the_parked_events_at_the_same_positions(
    tmp_path: Path, wires: list[bytes]
) -> None:
    n = len(wires)
    splits = {
        "one by one": list(range(1, n)),
        "sevens": list(range(7, n, 7)),
        "all at once": [],
        "cut after each release": [2, 9, 12, 15],
    }
    logs: dict[str, tuple[list[str], bytes]] = {}
    for name, cuts in splits.items():
        node = Node(tmp_path / name.replace(" ", "-"))
        try:
            node.take(wires, cuts)
            logs[name] = (node.ids(), node.root())
            assert node.state.parked_count(COOP) == 0, name
        finally:
            node.close()
    reference = logs["all at once"]
    assert len(reference[0]) == n
    for name, log in logs.items():
        assert log == reference, name


def test_a_parked_event_lands_right_behind_the_event_that_lets_it_pass(
    tmp_path: Path, wires: list[bytes]
) -> None:
    """The rule itself, on the all-at-once log: alice's 2 behind her 1, and so on."""
    _, events = story()
    by_id = {e.id: e for e in events}
    node = Node(tmp_path / "n")
    try:
        node.take(wires, [])
        log = [by_id[i] for i in node.ids()]
    finally:
        node.close()
    f, a3, b0, d1, a2, b1, e1, spend, a1, b2, d2, admit_dave, b3, admit_erin, credit, b4, b5 = (
        events
    )
    assert log == [
        f, b0, b1, a1, a2, a3, b2, admit_dave, d1, d2, b3, admit_erin, e1, credit, spend, b4, b5,
    ]  # fmt: skip


def test_the_bound_drops_the_same_waiting_events_whatever_the_batches(tmp_path: Path) -> None:
    """Bound 3: alice's 2..6 arrive before her 1, bob's 2 and 3 before his 1. Applied as
    lines join, in stream order, the bound drops the same events on every node: all at
    once, alice's 4..6 would otherwise have passed behind her 1 where batch by batch they
    were long dropped."""
    s = CoopScript(COOP)
    f = s.found({"alice": ["admin"], "bob": [], "carol": []})
    alice = [s.pay("alice", "bob", n) for n in range(1, 7)]
    bob = [s.pay("bob", "carol", n) for n in range(1, 4)]
    wires = [e.wire_bytes() for e in [f, *alice[1:], bob[1], alice[0], bob[2], bob[0]]]
    seen = []
    for name, cuts in {
        "whole": [],
        "one by one": list(range(1, len(wires))),
        "2s": [2, 4, 6],
    }.items():
        node = Node(tmp_path / name.replace(" ", "-"), max_parked=3)
        try:
            node.take(wires, cuts)
            seen.append(
                (node.log(COOP), node.state.parked_count(COOP), node.state.parked_dropped(COOP))
            )
        finally:
            node.close()
    assert seen[0][0][0] == [f.id, alice[0].id, bob[0].id, bob[1].id, bob[2].id]
    # Dropped as lines joined: alice's 2, 3 (by her 5 and 6), 4 (by bob's 2), 5 (by bob's 3);
    # alice's 6 still waits for them.
    assert seen[0][1:] == (1, 4)
    assert seen[1] == seen[0] and seen[2] == seen[0]


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[Node, Node, CoopScript]]:
    stream = Stream()
    x, y = Node(tmp_path / "x", stream), Node(tmp_path / "y", stream)
    s = CoopScript(COOP)
    assert x.post([s.found({"alice": ["admin"], "bob": [], "carol": []})])
    y.consume()
    yield x, y, s
    x.close()
    y.close()


def test_a_local_write_releases_a_parked_event_where_its_receivers_do(
    pair: tuple[Node, Node, CoopScript],
) -> None:
    """dave's payment reaches the stream before his admission (published straight to it):
    both nodes park it. Node x then writes the admission; in one group with another
    write. x appends dave's payment right behind the admission, before the next write,
    as y does when the admission reaches it."""
    x, y, s = pair
    admit = s.admit("alice", "dave")
    early = s.pay("dave", "bob", 4)
    assert x.sequencer is not None
    with x.sequencer.stream.lock:  # published straight to the stream, out of order
        x.sequencer.stream.messages.append(early.wire_bytes())
    x.consume()
    y.consume()
    assert x.state.parked_count(COOP) == y.state.parked_count(COOP) == 1
    after = s.pay("bob", "carol", 7)
    answers = x.post([admit], [after])
    assert answers == [[admit.id], [after.id]]
    assert x.ids()[-3:] == [admit.id, early.id, after.id]
    assert x.state.parked_count(COOP) == 0
    assert not x.intake.came_from_stream(COOP, admit.id)  # x's own: the relay publishes it
    assert x.intake.came_from_stream(COOP, early.id)  # in the stream already: not published
    y.consume(batch=5)
    x.consume()  # x reads its own writes back: duplicates, which release nothing
    assert y.ids() == x.ids() and y.root() == x.root()
    assert y.state.parked_count(COOP) == 0


def test_a_refused_request_releases_nothing(pair: tuple[Node, Node, CoopScript]) -> None:
    """An all-or-nothing request refused after an event that would release a parked one:
    nothing of it reaches the stream, so nothing may be released here either."""
    x, y, s = pair
    admit = s.admit("alice", "dave")
    early = s.pay("dave", "bob", 4)
    assert x.sequencer is not None
    with x.sequencer.stream.lock:
        x.sequencer.stream.messages.append(early.wire_bytes())
    x.consume()
    overdraft = s.pay("carol", "bob", 99_999, advance=False)  # over carol's limit
    [answer] = x.post([admit, overdraft])
    assert isinstance(answer, str)
    assert early.id not in x.ids() and x.state.parked_count(COOP) == 1
    assert x.post([admit]) == [[admit.id]]
    assert x.ids()[-2:] == [admit.id, early.id]
    y.consume()
    assert y.ids() == x.ids()


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[list[tuple[Node, Node]]]:
    """Two pairs of stores for every example (a coop of its own each time: stores are slow
    to make): one pair with the default bound on parked events, one with a bound of 3."""
    pairs = [
        (
            Node(tmp_path / f"whole{bound}", max_parked=bound),
            Node(tmp_path / f"split{bound}", max_parked=bound),
        )
        for bound in (10_000, 3)
    ]
    yield pairs
    for whole, split in pairs:
        whole.close()
        split.close()


EXAMPLES = itertools.count()
EXAMPLE_RUNS = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
"""Both arrival-order properties: 30 examples, each on the module's stores (slow to make)."""


@EXAMPLE_RUNS
@given(data=st.data())
def test_any_batch_split_of_any_arrival_order_gives_one_log(
    stores: list[tuple[Node, Node]], data: st.DataObject
) -> None:
    coop = f"{COOP}-{next(EXAMPLES)}"
    _, events = story(coop)
    same_log_in_any_order_and_batches(stores, events, coop, data)


def same_log_in_any_order_and_batches(
    pairs: list[tuple[Node, Node]], events: list[Event], coop: str, data: st.DataObject
) -> None:
    """The founding first, the rest in a drawn order: each pair's first node takes it in one
    batch, its second in drawn batches; both end with the same log and the same waiting
    lines (kept and dropped)."""
    order = data.draw(st.permutations(events[1:]), label="arrival order after the founding")
    wires = [e.wire_bytes() for e in [events[0], *order]]
    cuts = data.draw(st.lists(st.integers(1, len(wires) - 1), max_size=8), label="cuts")
    for whole, split in pairs:
        whole.take(wires, [], coop)
        split.take(wires, cuts, coop)
        assert split.log(coop) == whole.log(coop), whole.intake.max_parked
        assert [p.event_id for p in split.state.parked(coop)] == [
            p.event_id for p in whole.state.parked(coop)
        ]
        assert split.state.parked_dropped(coop) == whole.state.parked_dropped(coop)


ACTORS = ("alice", "bob", "carol", "dave", "erin")
"""alice (admin), bob and carol found the coop; dave and erin may be admitted later."""


def random_stream(coop: str, data: st.DataObject) -> list[Event]:
    """A founding, then random payments (some over the limit until credit arrives, some by
    members not yet admitted), admissions, suspensions and reinstatements, freezes and
    unfreezes: events that refuse with every kind of "may clear later" reason."""
    s = CoopScript(coop)
    events = [s.found({"alice": ["admin"], "bob": [], "carol": []}), s.pay("bob", "carol", 3)]
    steps = data.draw(
        st.lists(
            st.tuples(
                st.sampled_from(["pay", "pay", "pay", "admit", "suspend", "reinstate", "freeze"]),
                st.sampled_from(ACTORS),
                st.sampled_from(ACTORS),
                st.sampled_from([1, 7, 600, 4_000, 12_000]),
            ),
            min_size=4,
            max_size=18,
        ),
        label="steps",
    )
    for who in ("dave", "erin"):  # admitted somewhere in the stream, maybe after their payments
        at = data.draw(st.integers(0, len(steps)), label=f"{who}'s admission")
        steps.insert(at, ("admit", who, who, 0))
    for action, who, other, amount in steps:
        if action == "pay" and who != other:
            events.append(s.pay(who, other, amount))
        elif action == "admit" and who in ("dave", "erin"):
            events.append(s.admit("alice", who))
        elif action == "suspend":
            events.append(
                s.event("alice", "coop.MemberSuspended", {"member": s.did(who), "reason": "r"})
            )
        elif action == "reinstate":
            events.append(s.event("alice", "coop.MemberReinstated", {"member": s.did(who)}))
        elif action == "freeze":
            events.append(
                s.event("alice", "ledger.AccountFrozen", {"member": s.did(who), "reason": "r"})
            )
            events.append(s.event("alice", "ledger.AccountUnfrozen", {"member": s.did(who)}))
    return events


@pytest.fixture
def filtered_and_every(tmp_path: Path) -> Iterator[list[tuple[Node, Node]]]:
    """Per bound (the default, and 3): a node that judges every waiting line after every
    event, taking each stream whole, and one that judges only those whose reads an append
    wrote, taking it in random batches."""
    pairs = []
    for bound in (10_000, 3):
        every = Node(tmp_path / f"every{bound}", max_parked=bound)
        every.append.judge_every_waiting_line = True
        pairs.append((every, Node(tmp_path / f"filtered{bound}", max_parked=bound)))
    yield pairs
    for every, filtered in pairs:
        every.close()
        filtered.close()


@EXAMPLE_RUNS
@given(data=st.data())
def test_judging_only_lines_whose_reads_changed_gives_the_log_of_judging_every_line(
    filtered_and_every: list[tuple[Node, Node]], data: st.DataObject
) -> None:
    coop = f"{COOP}-r{next(EXAMPLES)}"
    events = random_stream(coop, data)
    same_log_in_any_order_and_batches(filtered_and_every, events, coop, data)
