"""The serving interpreter's settings: start-up heap frozen, larger young generation,
shorter GIL switch interval (restored afterwards, so the rest of the suite is unchanged)."""

from __future__ import annotations

import gc
import sys

from icn.interfaces.http.interpreter import SWITCH_INTERVAL_S, YOUNG_THRESHOLD, settle_for_serving


def test_settling_freezes_the_heap_and_shortens_the_gil_slices() -> None:
    thresholds, interval = gc.get_threshold(), sys.getswitchinterval()
    try:
        settle_for_serving()
        assert gc.get_freeze_count() > 10_000  # at least the modules, classes and functions
        assert gc.get_threshold()[0] == YOUNG_THRESHOLD
        assert gc.get_threshold()[1:] == thresholds[1:]
        assert sys.getswitchinterval() == SWITCH_INTERVAL_S
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
        sys.setswitchinterval(interval)
