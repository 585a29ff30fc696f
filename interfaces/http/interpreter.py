"""How the serving process's interpreter is set: its garbage collector and GIL hand-offs.

The node serves reads while it writes, in one process: every request handler,
the group-commit writer and the verifier threads take turns on one GIL. Two
defaults of CPython make a reader wait on the writer far longer than either
one's work:

- A full collection holds the GIL for as long as it walks every tracked object,
  and most of them are the ~130,000 built at start (modules, classes,
  functions, the app). Under batch posts full collections came every few
  seconds (events queued for the writer outlive two younger collections and
  are promoted), each 90-200 ms of wall time on a loaded 2-core machine, and
  every request in flight waited that long. Freezing the start-up heap moves
  it out of the collector's sight (it lives as long as the process anyway), so
  a full collection walks only what was made since, ~20,000 objects. A larger
  young generation lets a batch's objects die before they are ever promoted.
- A thread that wants the GIL waits up to the switch interval (5 ms) before
  the holder is asked to let go; a read takes the GIL back several times
  (worker thread, after the SQLite step, the event loop to answer), and behind
  the Python-bound writer each take-back cost up to one interval.
"""

from __future__ import annotations

import gc
import sys

YOUNG_THRESHOLD = 5_000
"""Allocations between young collections (CPython's default is 700): one batch of
100 events makes a few thousand objects, most gone once it is answered."""

SWITCH_INTERVAL_S = 0.001
"""How long a thread waiting for the GIL lets the holder run on (default 5 ms)."""


def settle_for_serving() -> None:
    """Freeze what start-up built, then serve with a larger young generation and a
    shorter GIL switch interval. Call once, after the app is built, before serving;
    the process then serves until it exits (frozen objects are never collected)."""
    gc.collect()  # what start-up left as garbage is freed, not frozen
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, older, oldest)
    sys.setswitchinterval(SWITCH_INTERVAL_S)
