"""The compute rule tests' coop: founded, with executors registered and a module stored."""

from __future__ import annotations

import pytest
from support.compute_story import compute_coop
from support.rule_coop import Coop


@pytest.fixture
def coop() -> Coop:
    """A fresh compute coop for each test (see :func:`support.compute_story.compute_coop`)."""
    return compute_coop()
