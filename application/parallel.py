"""Spread the order-free checks of many events over worker processes.

Ed25519 verification is most of the cost of accepting an event, and it needs
no state; chain checks do, and must run in order. So workers decode, hash
and verify chunks of lines, and the calling process gets back, in input
order, :class:`Inspection` objects it can judge and append. Workers return
only a verdict, a reason and the canonical bytes; the caller re-decodes
those bytes (a few microseconds) rather than unpickling event objects.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from itertools import islice

import msgspec

from icn.domain.events.envelope import Event, Inspection, inspect
from icn.domain.events.verdicts import Verdict

CHUNK = 1000
_decoder = msgspec.json.Decoder(Event)

Checked = tuple[str | None, str, bytes, str]
"""A worker's answer for one line: stateless verdict (None = passed), reason, bytes, code."""


def _check_chunk(lines: list[bytes]) -> list[Checked]:
    out: list[Checked] = []
    for line in lines:
        ins = inspect(line)
        out.append((ins.verdict.value if ins.verdict else None, ins.reason, ins.wire, ins.code))
    return out


def _rebuild(line: bytes, checked: Checked) -> Inspection:
    verdict, reason, wire, code = checked
    if verdict == Verdict.MALFORMED:
        return Inspection(None, Verdict.MALFORMED, reason, code=code)
    if verdict is None:
        return Inspection(_decoder.decode(wire), None, "", wire)
    return Inspection(_decoder.decode(line), Verdict(verdict), reason)


def _leave_with_parent(parent: int) -> None:
    """Worker start: exit when the parent is gone. A parent killed with SIGKILL never stops
    its pool, and the workers would wait for work for ever (found as orphans after the
    SIGKILL-mid-import test)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, name="icn-orphan-watch", daemon=True).start()


def chunks(lines: Iterable[bytes], size: int) -> Iterator[list[bytes]]:
    """Consecutive lists of at most ``size`` lines."""
    it = iter(lines)
    while chunk := list(islice(it, size)):
        yield chunk


def inspect_chunks(
    lines: Iterable[bytes], workers: int = 1, chunk: int = CHUNK
) -> Iterator[tuple[list[bytes], list[Inspection]]]:
    """Yield (lines, inspections) chunk by chunk, in input order.

    With ``workers`` > 1 up to ``2 × workers`` chunks are in flight, so memory
    stays bounded however long the input is.
    """
    if workers <= 1:
        for part in chunks(lines, chunk):
            yield part, [inspect(line) for line in part]
        return
    with ProcessPoolExecutor(
        max_workers=workers, initializer=_leave_with_parent, initargs=(os.getpid(),)
    ) as pool:
        pending: deque[tuple[list[bytes], Future[list[Checked]]]] = deque()
        for part in chunks(lines, chunk):
            pending.append((part, pool.submit(_check_chunk, part)))
            if len(pending) > 2 * workers:
                done, future = pending.popleft()
                yield done, [_rebuild(ln, c) for ln, c in zip(done, future.result(), strict=True)]
        while pending:
            done, future = pending.popleft()
            yield done, [_rebuild(ln, c) for ln, c in zip(done, future.result(), strict=True)]
