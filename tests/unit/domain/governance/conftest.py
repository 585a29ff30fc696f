"""A founded coop for governance rule tests: alice (admin), bob, carol, dan (steward)."""

from __future__ import annotations

import pytest
from support.coops import CoopScript
from support.rule_coop import Coop

from .story import Gov


@pytest.fixture
def gov() -> Gov:
    c = Coop(CoopScript())
    c.ok(c.s.found({"alice": ["admin"], "bob": [], "carol": [], "dan": ["steward"]}))
    return Gov(c)
