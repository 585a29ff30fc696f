"""Judging in stream order: why a replicating node puts its writes in the stream first.

Nodes that each judge writes against their own state disagree as soon as two
decisions conflict: two admins admit one person on two nodes, a freeze races
a payment, two payments that each fit a credit limit exceed it together.
Each node keeps its own and refuses the other's, and they never converge.

So a coop's stream is the one order every node judges in. A node judges a
write against its state at stream position ``P`` (everything up to ``P``
applied, nothing later), and publishes the accepted events with
``Nats-Expected-Last-Sequence`` = ``P``, inside the same store transaction
that then writes them. JetStream stores them only if the stream still ends at
``P`` (compare-and-set on the whole stream): then every node, replaying the
stream in order with the same rules, reaches the same verdict, and the write
commits. If the stream moved on (another node's write came first), nothing
is committed; the node waits until its consumer has applied the stream up to
where it now ends, and judges again: the write may now be refused (the
person is a member already, the credit is spent), which is the point.

A crash after JetStream stored the events but before the commit loses
nothing: the node's consumer brings them back from the stream. The position a
node may judge at is what its consumer applied, or what its own sequenced
writes committed, whichever is further (:class:`StreamPositions`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from icn.application.errors import StoreBusy
from icn.application.ports import Accepted
from icn.domain.refusals import Code


class StreamMoved(Exception):
    """The coop's stream holds events past the position a write was judged at.

    ``stored``: ids of the write's own events that did get in first (a write of
    stand-alone events may be cut short); they come back through the consumer.
    """

    def __init__(self, coop: str, last: int, stored: Sequence[str] = ()) -> None:
        super().__init__(f"the stream of {coop} ends at {last}")
        self.coop = coop
        self.last = last
        self.stored = list(stored)


class StreamUnavailable(StoreBusy):
    """The coop's stream cannot take writes now (NATS away, or this node still catching up)."""

    code: str = Code.STREAM_UNAVAILABLE


class Sequencer(Protocol):
    """Puts a write's events in its coop's stream, right after a given position."""

    positions: StreamPositions

    def prepare(self, coops: Iterable[str]) -> None:
        """Before a write's transaction: make sure these coops' streams can take writes
        (start serving a coop this node did not serve yet); raise
        :class:`StreamUnavailable` if that cannot happen soon."""
        ...

    def sequence(
        self, coop: str, after: int, events: Sequence[Accepted], *, atomic: bool = True
    ) -> int:
        """Publish ``events`` so they follow stream position ``after``; return the last one's.

        ``atomic``: all of them or none. Without it each event stands alone and
        a prefix may get in (:attr:`StreamMoved.stored`), which is quicker.

        Raises :class:`StreamMoved` if the stream already holds more than
        ``after``, :class:`StreamUnavailable` if it cannot be reached now. Called
        inside the store's write transaction, in a thread that is not the
        publisher's event loop.
        """
        ...


class StreamPositions:
    """How far each coop's stream is applied to this node's store (thread-safe).

    Advanced by the consumer after it committed a batch and by sequenced
    writes after they committed; never moves back. A write judged at
    :meth:`at` sees everything of the stream up to there.
    """

    def __init__(self) -> None:
        self._at: dict[str, int] = {}
        self._changed = threading.Condition()
        self.listeners: list[Callable[[str, int], None]] = []
        """Told (coop, position) after each advance, in the advancing thread."""

    def at(self, coop: str) -> int:
        """The last stream sequence of ``coop`` this node's store holds (0: none)."""
        with self._changed:
            return self._at.get(coop, 0)

    def advance(self, coop: str, position: int) -> None:
        """Everything of ``coop``'s stream up to ``position`` is committed here."""
        with self._changed:
            if position <= self._at.get(coop, 0):
                return
            self._at[coop] = position
            self._changed.notify_all()
        for listener in self.listeners:
            listener(coop, position)

    def wait_for(self, coop: str, position: int, timeout: float) -> bool:
        """Block until :meth:`at` reaches ``position``; False if ``timeout`` passed first."""
        with self._changed:
            return self._changed.wait_for(lambda: self._at.get(coop, 0) >= position, timeout)
