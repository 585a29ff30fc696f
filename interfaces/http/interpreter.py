"""How the serving process's garbage collector is set, so reads do not wait on it.

The node serves reads while it writes, in one process: every request handler,
the group-commit writer and the verifier threads take turns on one GIL, and
while the collector runs none of them does.

A full collection holds the GIL for as long as it walks every tracked object, and
most of them are the ~130,000 built at start (modules, classes, functions, the app).
Under batch posts full collections came every few seconds (events queued for the
writer outlive two younger collections and are promoted), each 90-200 ms of wall
time on a loaded 2-core machine, and every request in flight waited that long.
Freezing the start-up heap moves it out of the collector's sight (it lives as long
as the process anyway), so a full collection walks only what was made since, ~20,000
objects. A larger young generation lets a batch's objects die before they are ever
promoted.

The GIL's switch interval stays at its default: at 1 ms instead of 5, reads
behind batch posts were no faster in the same runs (p99 206 against 199 ms
with the heap frozen, medians of 4 runs switching setting every 2 s), and
slower where other processes kept the cores busy.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 5_000
"""Allocations between young collections (CPython's default is 700): one batch of
100 events makes a few thousand objects, most gone once it is answered."""


def settle_for_serving() -> None:
    """Freeze what start-up built, then serve with a larger young generation. Call once,
    after the app is built, before serving; the process then serves until it exits
    (frozen objects are never collected)."""
    gc.collect()  # what start-up left as garbage is freed, not frozen
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, older, oldest)
