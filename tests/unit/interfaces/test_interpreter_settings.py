"""The serving interpreter's collector: start-up heap frozen, a larger young generation
(restored afterwards, so the rest of the suite is unchanged)."""

from __future__ import annotations

import gc

from icn.interfaces.http.interpreter import YOUNG_THRESHOLD, settle_for_serving


def test_settling_freezes_the_start_up_heap_and_widens_the_young_generation() -> None:
    thresholds = gc.get_threshold()
    try:
        settle_for_serving()
        assert gc.get_freeze_count() > 10_000  # at least the modules, classes and functions
        assert gc.get_threshold() == (YOUNG_THRESHOLD, *thresholds[1:])
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
