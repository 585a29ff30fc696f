"""SQLite's WAL checkpoints in a thread of their own, off the write path.

By default SQLite checkpoints inside a commit: the commit that takes the WAL past 1,000
pages copies every page the WAL holds back into the database file before it returns: a
write of a few pages waits for a copy of a thousand it did not write (a batch of 100
payments writes 600-1,200 pages, appended and projected, bench/catchup_pages.py: one
batch in one or two). A running node turns the automatic checkpoint off on its writing
connections (:data:`AUTOCHECKPOINT_OFF`) and runs :class:`WalCheckpointer` instead: a
PASSIVE checkpoint every ``every_s`` seconds from its own connection. PASSIVE never
waits for a lock, so writers and readers go on meanwhile, and SQLite releases the GIL
while it copies. Measured (bench/catchup.py, quiet machine, one run): at 100k events
SQLite's commit took 21% of projection catch-up against 27% with checkpoints in the
commits, and the catch-up's growth from 10k to 100k was 1.63 against 1.67: the growth
itself is the pages each commit writes (bench/catchup_pages.py), not the checkpoints.

Short-lived commands keep SQLite's default: they write a few events and exit, and
the node, or SQLite's own checkpoint at the last connection's close, does the rest.
"""

from __future__ import annotations

import logging
import sqlite3
import threading

from icn.infrastructure.store.database import SQLITE_LOCK_TIMEOUT_S

AUTOCHECKPOINT_OFF = "PRAGMA wal_autocheckpoint = 0"
"""A writing connection of a node with a :class:`WalCheckpointer`: no checkpoint in commit."""

CHECKPOINT_EVERY_S = 1.0
"""Seconds between checkpoints: at a few thousand events a second the WAL then holds a
second of writes (tens of MB at most), and a page written many times in that second is
copied back once."""

log = logging.getLogger(__name__)


class WalCheckpointer:
    """Checkpoints one SQLite database's WAL every ``every_s`` seconds until stopped."""

    def __init__(self, sqlite_path: str, *, every_s: float = CHECKPOINT_EVERY_S) -> None:
        self._path = sqlite_path
        self._every_s = every_s
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread (once)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="icn-wal-checkpoints", daemon=True
            )
            self._thread.start()

    @property
    def alive(self) -> bool:
        """The thread runs (started and not stopped)."""
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        """Stop the thread after one last checkpoint, so the WAL a node leaves is short."""
        if self._thread is None:
            return
        self._stopping.set()
        self._thread.join()
        self._thread = None

    def _run(self) -> None:
        conn = sqlite3.connect(self._path, timeout=SQLITE_LOCK_TIMEOUT_S, isolation_level=None)
        try:
            while not self._stopping.wait(self._every_s):
                self._checkpoint(conn)
            self._checkpoint(conn)
        finally:
            conn.close()

    def _checkpoint(self, conn: sqlite3.Connection) -> None:
        try:
            busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error as exc:  # a checkpoint missed is made up by the next one
            log.warning("WAL checkpoint failed: %s", exc)
            return
        log.debug("WAL checkpoint: %s of %s frames copied (busy=%s)", copied, frames, busy)
