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
from collections.abc import Sequence
from concurrent.futures import Future

from icn.application.append import AppendEvents, Outcome
from icn.domain.events.envelope import Inspection

MAX_GROUP = 256
_STOP = object()


class GroupCommit:
    """A writer thread in front of :class:`AppendEvents`."""

    def __init__(self, append: AppendEvents, max_group: int = MAX_GROUP) -> None:
        self._append = append
        self._max = max_group
        self._queue: queue.Queue[object] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="icn-group-commit", daemon=True)
        self.groups = 0
        self.requests = 0

    def start(self) -> None:
        """Start the writer thread."""
        self._thread.start()

    def stop(self) -> None:
        """Finish what is queued, then stop the writer."""
        self._queue.put(_STOP)
        self._thread.join(timeout=30)

    def submit(self, inspections: Sequence[Inspection]) -> list[Outcome]:
        """Append one all-or-nothing request; blocks until it is committed (or refused)."""
        return self.enqueue(inspections).result()

    def enqueue(self, inspections: Sequence[Inspection]) -> Future[list[Outcome]]:
        """Queue one all-or-nothing request; its future resolves when it is committed
        (or refused). An event loop awaits it without parking a thread per request."""
        future: Future[list[Outcome]] = Future()
        self._queue.put((inspections, future))
        return future

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is _STOP:
                return
            group = [first]
            while len(group) < self._max:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                group.append(item)
            self._commit(group)  # type: ignore[arg-type]

    def _commit(self, group: list[tuple[Sequence[Inspection], Future[list[Outcome]]]]) -> None:
        self.groups += 1
        self.requests += len(group)
        try:
            answers = self._append.append_requests([inspections for inspections, _ in group])
        except Exception as exc:  # the store failed: every request of the group learns it
            for _, future in group:
                _settle(future, exc)
            return
        for (_, future), answer in zip(group, answers, strict=True):
            _settle(future, answer)


def _settle(future: Future[list[Outcome]], answer: list[Outcome] | Exception) -> None:
    """Hand a request its answer, unless its caller cancelled the wait (then nobody listens;
    what was committed stays committed, and a resend is answered ``duplicate``)."""
    if future.cancelled():
        return
    if isinstance(answer, Exception):
        future.set_exception(answer)
    else:
        future.set_result(answer)
