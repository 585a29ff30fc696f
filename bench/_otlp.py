"""An OTLP/HTTP collector on loopback for the benches whose nodes export spans
(``bench/cluster.py`` reads the spans, ``bench/telemetry.py`` only counts the exports).

One server, answering every export with 200 at once, so a node's exporter never waits
on it; what is kept of each export body is the caller's ``keep``.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@contextlib.contextmanager
def collector(keep: Callable[[bytes], None]) -> Iterator[str]:
    """A collector handing each export's body to ``keep`` (one call at a time: the lock is
    the collector's, so ``keep`` needs none); yields its endpoint URL."""
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with lock:
                keep(body)
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
