"""Wake-ups for live streams: a version counter per coop, bumped when its log grows.

Streams hold no events between reads: the store is the buffer, so a stream
only needs to know *when* to read again. Appends through this node's API bump
the coop's version at once (``notify``, called by the POST handler after
commit); appends by other processes (the CLI importing into the same store,
later replication) are found by polling tree sizes every ``POLL_S``, but only
for coops somebody is watching.

Server shutdown must end open streams: uvicorn waits for open responses to
finish before it runs the app's lifespan shutdown, so a lifespan hook would
come too late. The feed therefore chains itself in front of the server's
SIGTERM/SIGINT handlers (once, when the first stream opens) and closes, which
ends every stream within one wake-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections import Counter
from collections.abc import AsyncIterator, Callable
from types import FrameType
from typing import Any, Protocol

import anyio

log = logging.getLogger("icn.http.streams")
POLL_S = 0.25
_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class SizedLog(Protocol):
    """What the feed needs of the store."""

    def tree_size(self, coop: str) -> int: ...


class LogFeed:
    """Per-coop version counters and the waiters on them; lives in the app state.

    Not thread-safe: ``notify`` and the waits run on the server's event loop.
    """

    def __init__(self, store: SizedLog, poll_s: float = POLL_S) -> None:
        self._store = store
        self._poll_s = poll_s
        self._versions: dict[str, int] = {}
        self._wakers: dict[str, asyncio.Event] = {}
        self._watchers: Counter[str] = Counter()
        self._sizes: dict[str, int] = {}
        self._poller: asyncio.Task[None] | None = None
        self._hooked = False
        self.closed = False

    def version(self, coop: str) -> int:
        """The coop's current version: capture it *before* reading the store."""
        return self._versions.get(coop, 0)

    def notify(self, coop: str) -> None:
        """The coop's log grew (or may have): wake everyone waiting on it."""
        self._versions[coop] = self._versions.get(coop, 0) + 1
        waker = self._wakers.pop(coop, None)
        if waker is not None:
            waker.set()

    async def wait(self, coop: str, seen: int, timeout: float) -> bool:
        """True once the version moves past ``seen`` or the feed closes; False at ``timeout``."""
        if self.closed or self.version(coop) != seen:
            return True
        waker = self._wakers.setdefault(coop, asyncio.Event())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(waker.wait(), max(timeout, 0.0))
        return self.closed or self.version(coop) != seen

    @contextlib.asynccontextmanager
    async def watch(self, coop: str) -> AsyncIterator[None]:
        """Mark ``coop`` as watched for as long as a stream is open, so that it is polled."""
        self._hook_signals()
        self._watchers[coop] += 1
        if self._poller is None or self._poller.done():
            self._poller = asyncio.create_task(self._poll(), name="icn-log-feed-poll")
        try:
            yield
        finally:
            self._watchers[coop] -= 1
            if self._watchers[coop] <= 0:
                del self._watchers[coop]
                self._sizes.pop(coop, None)

    def close(self) -> None:
        """End every stream (server shutdown); later streams end at once too."""
        if self.closed:
            return
        self.closed = True
        for coop in list(self._wakers):
            self.notify(coop)
        if self._poller is not None:
            self._poller.cancel()

    async def _poll(self) -> None:
        """Notify watched coops whose size changed since the last look (first look included)."""
        while self._watchers and not self.closed:
            coops = list(self._watchers)
            try:
                sizes = await anyio.to_thread.run_sync(self._sizes_of, coops)
            except Exception:  # the next tick retries; a stream must not die of a busy store
                log.exception("polling log sizes failed")
                sizes = {}
            for coop, size in sizes.items():
                if coop in self._watchers and self._sizes.get(coop) != size:
                    self._sizes[coop] = size
                    self.notify(coop)
            await asyncio.sleep(self._poll_s)

    def _sizes_of(self, coops: list[str]) -> dict[str, int]:
        return {coop: self._store.tree_size(coop) for coop in coops}

    def _hook_signals(self) -> None:
        """On SIGTERM/SIGINT close the feed first, then run the server's own handler."""
        if self._hooked or threading.current_thread() is not threading.main_thread():
            return
        self._hooked = True
        loop = asyncio.get_running_loop()
        for sig in _SIGNALS:
            previous = signal.getsignal(sig)
            if callable(previous):
                signal.signal(sig, _chained(loop, self.close, previous))


def _chained(
    loop: asyncio.AbstractEventLoop, close: Callable[[], None], previous: Callable[..., Any]
) -> Callable[[int, FrameType | None], None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        with contextlib.suppress(RuntimeError):  # the loop may already be closed
            loop.call_soon_threadsafe(close)
        previous(signum, frame)

    return handler
