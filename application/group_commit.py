"""Group commit: one transaction (and one fsync) for all the appends waiting at that moment.

Each committed append pays for a synced write of every page it touched;
with one request per transaction that sync, not the work, caps a busy node.
Requests from many threads queue here; one writer thread takes everything
that is waiting, appends it as one transaction in which every request stays
all-or-nothing on its own, and hands each request its own answer. A lone
request is not delayed: the writer never waits for company.
"""

from __future__ import annotations

import queue
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass

from icn.application.append import AppendEvents, Outcome
from icn.application.errors import BatchRefused
from icn.application.ports import Telemetry
from icn.domain.events.envelope import Inspection

MAX_GROUP = 256
MAX_GROUP_EVENTS = 1000
"""A group stops growing at this many events: a replicating node puts a group's events in
its coop's stream as one atomic batch, and JetStream takes at most 1,000 per batch."""


@dataclass(frozen=True)
class _Request:
    """One all-or-nothing request waiting for the writer, and where its answer goes."""

    inspections: Sequence[Inspection]
    answer: Future[list[Outcome]]
    trace: object = None
    """The trace context of the thread that queued it: the group's spans continue it."""


class Writer(ABC):
    """Where the HTTP API's writes go: a writer thread in this process (:class:`GroupCommit`)
    or a writer process (``icn.interfaces.writer_process``). Each request is all or
    nothing; its future resolves with its outcomes, or raises its refusal."""

    @property
    @abstractmethod
    def telemetry(self) -> Telemetry:
        """The spans and measures of the writes, as the serving process takes them."""

    @abstractmethod
    def start(self) -> None:
        """Start writing (idempotent for a writer already started)."""

    @abstractmethod
    def stop(self) -> None:
        """Finish what is queued, then stop."""

    @abstractmethod
    def enqueue(self, inspections: Sequence[Inspection]) -> Future[list[Outcome]]:
        """Queue one all-or-nothing request; its future resolves when it is committed
        (or refused)."""

    def submit(self, inspections: Sequence[Inspection]) -> list[Outcome]:
        """Append one all-or-nothing request; blocks until it is committed (or refused)."""
        return self.enqueue(inspections).result()


class GroupCommit(Writer):
    """A writer thread in front of :class:`AppendEvents`."""

    def __init__(self, append: AppendEvents, max_group: int = MAX_GROUP) -> None:
        self._append = append
        self._max = max_group
        self._queue: queue.Queue[_Request | None] = queue.Queue()
        """Requests, and ``None`` once :meth:`stop` was called."""
        self._thread = threading.Thread(target=self._run, name="icn-group-commit", daemon=True)
        self.groups = 0
        self.requests = 0

    @property
    def telemetry(self) -> Telemetry:
        """The spans and measures of the writes (the appender's)."""
        return self._append.telemetry

    def start(self) -> None:
        """Start the writer thread."""
        if self._thread.ident is None:
            self._thread.start()

    def stop(self) -> None:
        """Finish what is queued, then stop the writer."""
        self._queue.put(None)
        self._thread.join(timeout=30)

    def enqueue(self, inspections: Sequence[Inspection]) -> Future[list[Outcome]]:
        """Queue one all-or-nothing request; its future resolves when it is committed
        (or refused). An event loop awaits it without parking a thread per request."""
        request = _Request(inspections, Future(), self._append.telemetry.current())
        self._queue.put(request)
        return request.answer

    def _run(self) -> None:
        held: _Request | None = None  # did not fit in the last group: the next one's first
        while True:
            first = held if held is not None else self._queue.get()
            held = None
            if first is None:
                return
            group, stopping = [first], False
            events = len(first.inspections)
            while len(group) < self._max:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                if events + len(item.inspections) > MAX_GROUP_EVENTS:
                    held = item
                    break
                group.append(item)
                events += len(item.inspections)
            self._commit(group)
            if stopping:
                return

    def _commit(self, group: list[_Request]) -> None:
        self.groups += 1
        self.requests += len(group)
        telemetry = self._append.telemetry
        events = sum(len(r.inspections) for r in group)
        telemetry.grouped(events)
        # One trace per write: the group's spans continue its first (traced) request's
        # trace, and link to every other request's (a group holds one request unless
        # writes arrive faster than a commit takes).
        attributes = {"icn.requests": len(group), "icn.events": events}
        others = [r.trace for r in group[1:]]
        try:
            with telemetry.span(
                "icn.group_commit", attributes, parent=group[0].trace, links=others
            ):
                answers = self._append.append_requests([r.inspections for r in group])
        except Exception as exc:  # the store failed: every request of the group learns it
            for r in group:
                _settle(r.answer, exc)
            return
        for r, answer in zip(group, answers, strict=True):
            if isinstance(answer, BatchRefused):
                first = next((i.event for i in r.inspections if i.event is not None), None)
                telemetry.refused(first.coop if first is not None else "", answer.code)
            _settle(r.answer, answer)


def _settle(future: Future[list[Outcome]], answer: list[Outcome] | Exception) -> None:
    """Hand a request its answer, unless its caller cancelled the wait (then nobody listens;
    what was committed stays committed, and a resend is answered ``duplicate``)."""
    if future.cancelled():
        return
    if isinstance(answer, Exception):
        future.set_exception(answer)
    else:
        future.set_result(answer)
