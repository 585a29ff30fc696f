"""Writes judged in stream order: two nodes that decide the same thing cannot both keep it.

Each node here is a real SQLite store with its write path and intake; the
stream they share is :class:`Stream`, an in-memory implementation of the
:class:`~icn.application.sequencing.Sequencer` port with JetStream's
compare-and-set rule (publish after position ``P`` only if the stream ends at
``P``). The JetStream implementation has integration tests of its own.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from support.coops import CoopScript
from support.stores import StoreNode

from icn.application import append as append_module
from icn.application.errors import BatchRefused
from icn.application.ports import Accepted
from icn.application.sequencing import StreamMoved, StreamPositions, StreamUnavailable
from icn.domain.events.envelope import Event, inspect

COOP = "sequenced-coop"


class Stream:
    """One coop's stream: messages in order, appended only right after the expected last."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.lock = threading.Lock()

    def last(self) -> int:
        with self.lock:
            return len(self.messages)


class StreamSequencer:
    """A node's sequencer on the shared :class:`Stream`."""

    def __init__(self, stream: Stream) -> None:
        self.stream = stream
        self.positions = StreamPositions()
        self.refused = threading.Event()
        self.unavailable = False
        self.calls = 0
        self.cut_after: int | None = None
        """Once: store only this many events of a non-atomic write, as if another node's
        event had landed right behind them."""

    def prepare(self, coops: Sequence[str]) -> None:
        if self.unavailable:
            raise StreamUnavailable("NATS is away")

    def sequence(
        self, coop: str, after: int, events: Sequence[Accepted], *, atomic: bool = True
    ) -> int:
        self.calls += 1
        with self.stream.lock:
            if len(self.stream.messages) != after:
                self.refused.set()
                raise StreamMoved(coop, len(self.stream.messages))
            if self.cut_after is not None and not atomic:
                got_in, self.cut_after = events[: self.cut_after], None
                self.stream.messages += [a.wire for a in got_in]
                self.refused.set()
                raise StreamMoved(coop, len(self.stream.messages), [a.event.id for a in got_in])
            self.stream.messages += [a.wire for a in events]
            return len(self.stream.messages)


class Node(StoreNode):
    def __init__(self, directory: Path, stream: Stream) -> None:
        self.sequencer = StreamSequencer(stream)
        super().__init__(directory, COOP, sequencer=self.sequencer)

    def consume(self) -> None:
        """What the node's consumer does: take the stream past its position, in order."""
        at = self.sequencer.positions.at(COOP)
        with self.sequencer.stream.lock:
            batch = self.sequencer.stream.messages[at:]
        if batch:
            self.intake.receive(COOP, batch)
            self.sequencer.positions.advance(COOP, at + len(batch))

    def post(self, *events: Event) -> list[str]:
        """One all-or-nothing request, as HTTP sends it: the ids, or the refusal's code."""
        [answer] = self.append.append_requests([[inspect(e.wire_bytes()) for e in events]])
        if isinstance(answer, BatchRefused):
            return [answer.code]
        return [o.id or "" for o in answer]


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[tuple[Node, Node]]:
    stream = Stream()
    x, y = Node(tmp_path / "x", stream), Node(tmp_path / "y", stream)
    yield x, y
    x.close()
    y.close()


def test_a_write_is_in_the_stream_before_its_answer(nodes: tuple[Node, Node]) -> None:
    x, y = nodes
    s = CoopScript(COOP)
    f = s.found({"alice": ["admin"], "bob": []})
    assert x.post(f) == [f.id]
    assert x.sequencer.stream.messages == [f.wire_bytes()]
    assert x.sequencer.positions.at(COOP) == 1  # x judges its next write after it
    y.consume()
    assert y.ids() == x.ids() == [f.id]


def test_two_admissions_of_one_person_on_two_nodes_converge(
    nodes: tuple[Node, Node],
) -> None:
    """The second node's admission reaches the stream second: it is judged again after the
    first and refused, and both nodes end with the same log."""
    x, y = nodes
    s = CoopScript(COOP)
    f = s.found({"alice": ["admin"], "bob": ["admin"], "carol": []})
    x.post(f)
    y.consume()
    by_alice, by_bob = s.admit("alice", "dave"), s.admit("bob", "dave")
    assert x.post(by_alice) == [by_alice.id]  # x gets there first
    with ThreadPoolExecutor(1) as pool:
        answer = pool.submit(y.post, by_bob)
        assert y.sequencer.refused.wait(5), "y's write was not refused by the stream"
        assert set(y.ids()) == {f.id}, "nothing of the refused attempt is stored"
        y.consume()  # y's consumer applies by_alice; the waiting write is judged again
        assert answer.result(5) == ["already-member"]
    x.consume()
    assert set(x.ids()) == set(y.ids()) == {f.id, by_alice.id}


def test_events_from_the_stream_are_not_put_in_it_again(nodes: tuple[Node, Node]) -> None:
    x, y = nodes
    s = CoopScript(COOP)
    x.post(f := s.found({"alice": ["admin"], "bob": []}))
    x.post(pay := s.pay("alice", "bob", 5))
    y.consume()
    assert y.sequencer.calls == 0
    assert y.ids() == [f.id, pay.id]
    assert len(x.sequencer.stream.messages) == 2


def test_a_write_is_refused_with_nothing_stored_when_the_stream_is_away(
    nodes: tuple[Node, Node],
) -> None:
    x, _ = nodes
    s = CoopScript(COOP)
    x.sequencer.unavailable = True
    with pytest.raises(StreamUnavailable) as refused:
        x.post(s.found({"alice": ["admin"]}))
    assert refused.value.code == "stream-unavailable"
    assert x.ids() == [] and x.sequencer.stream.messages == []


def test_a_node_that_does_not_catch_up_answers_try_again(
    nodes: tuple[Node, Node], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its consumer is stuck: the write waits a bounded time, then says so (503)."""
    monkeypatch.setattr(append_module, "STREAM_WAIT_S", 0.3)
    x, y = nodes
    s = CoopScript(COOP)
    x.post(f := s.found({"alice": ["admin"], "bob": []}))
    y.consume()
    x.post(s.pay("alice", "bob", 5))  # y's consumer never applies this one
    with pytest.raises(StreamUnavailable, match="still applying"):
        y.post(s.pay("bob", "alice", 2))
    assert set(y.ids()) == {f.id} and len(y.sequencer.stream.messages) == 2


def test_a_write_cut_short_in_the_stream_answers_every_request_right(
    nodes: tuple[Node, Node],
) -> None:
    """Requests of one event each go in as a chain; if it is cut after the first, that one
    is in the stream (and comes back through the consumer) and the rest is judged again."""
    x, _ = nodes
    s = CoopScript(COOP)
    x.post(f := s.found({"alice": ["admin"], "bob": [], "carol": []}))
    one, two = s.pay("alice", "bob", 5), s.pay("carol", "bob", 3)
    x.sequencer.cut_after = 1
    with ThreadPoolExecutor(1) as pool:
        answer = pool.submit(
            x.append.append_requests, [[inspect(one.wire_bytes())], [inspect(two.wire_bytes())]]
        )
        assert x.sequencer.refused.wait(5)
        x.consume()  # brings `one` in from the stream; the write goes on with `two`
        first, second = answer.result(5)
    assert isinstance(first, list) and [o.verdict for o in first] == ["ok"], first
    assert isinstance(second, list) and [o.verdict for o in second] == ["ok"], second
    assert first[0].position == 1 and second[0].position == 2
    assert x.ids() == [f.id, one.id, two.id]
    assert x.sequencer.stream.messages == [e.wire_bytes() for e in (f, one, two)]
