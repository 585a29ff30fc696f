"""Give freed heap memory back to the system after a burst of closed streams.

Measured: 300 idle SSE streams, once closed, left every Python object freed
and yet the process ~15-20 MB larger. The C allocator (glibc) keeps freed
memory in its heap for reuse, and returns it only from the heap's top; small
long-lived objects allocated during the burst pin the pages below. Nothing is
leaked (a second burst reuses the same memory), but a node that served a
burst once would look that much bigger for good. ``malloc_trim(0)`` releases
every free page of the heap, wherever it lies; it is asked for shortly after
streams close (once per :data:`DELAY_S`, in a worker thread), where glibc
has it. Elsewhere this does nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
from collections.abc import Callable

log = logging.getLogger("icn.http.streams")
DELAY_S = 1.0


def _malloc_trim() -> Callable[[], object] | None:
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return lambda: trim(0)


class HeapTrim:
    """Debounced ``malloc_trim``: many closes in a second cost one trim."""

    def __init__(self, delay_s: float = DELAY_S) -> None:
        self._trim = _malloc_trim()
        self._delay_s = delay_s
        self._pending: asyncio.TimerHandle | None = None

    def soon(self) -> None:
        """Trim once, a moment from now (call on the event loop)."""
        if self._trim is None or self._pending is not None:
            return
        with contextlib.suppress(RuntimeError):  # no running loop: nothing to schedule on
            loop = asyncio.get_running_loop()
            self._pending = loop.call_later(self._delay_s, self._run, loop)

    def _run(self, loop: asyncio.AbstractEventLoop) -> None:
        self._pending = None
        if self._trim is not None:
            future = loop.run_in_executor(None, self._trim)
            future.add_done_callback(_report)


def _report(future: asyncio.Future[object]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.warning("malloc_trim failed: %s", future.exception())
