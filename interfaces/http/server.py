"""Serving the app in the foreground with a clean, zero-exit shutdown.

uvicorn re-raises SIGINT/SIGTERM after its graceful shutdown, so the process
would die "by signal" even when everything finished properly. A node that
drained its requests and closed its store has succeeded; it exits 0.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator

import uvicorn

HANDLED = (signal.SIGINT, signal.SIGTERM)


class ForegroundServer(uvicorn.Server):
    """uvicorn's server: first signal drains and stops, a second one forces exit."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in HANDLED}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
