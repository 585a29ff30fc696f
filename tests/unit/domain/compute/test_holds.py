"""Holds on the ledger: held credit is not spendable, and a hold is released only as placed."""

from __future__ import annotations

import pytest
from support.coops import CoopScript
from support.rule_coop import Coop

from icn.domain.ledger import holds


@pytest.fixture
def coop() -> Coop:
    c = Coop(CoopScript())
    c.ok(c.s.found({"alice": ["admin"], "bob": []}))
    return c


def _hold(c: Coop, who: str, amount: int) -> None:
    coop = c.state.coop(c.s.coop)
    member = c.state.member(c.s.coop, c.s.did(who))
    assert coop is not None and member is not None
    placed = holds.place(c.state, coop, member, "hours", amount, limit=10_000)
    assert isinstance(placed, holds.HeldRecord), placed
    c.state.write(c.s.pay("bob", "alice", 1, advance=False), [placed])


def test_a_member_cannot_pay_away_credit_that_is_held(coop: Coop) -> None:
    _hold(coop, "alice", 6_000)
    assert holds.held(coop.state, coop.s.coop, coop.s.did("alice"), "hours") == 6_000
    assert coop.refused(coop.s.pay("alice", "bob", 4_001, advance=False)) == (
        "credit-limit-exceeded"
    )
    coop.ok(coop.s.pay("alice", "bob", 4_000))
    assert holds.available(coop.state, coop.s.coop, coop.s.did("alice"), "hours") == -10_000


def test_a_hold_past_the_limit_is_refused(coop: Coop) -> None:
    coop.ok(coop.s.pay("alice", "bob", 9_000))
    c = coop.state.coop(coop.s.coop)
    member = coop.state.member(coop.s.coop, coop.s.did("alice"))
    assert c is not None and member is not None
    refused = holds.place(coop.state, c, member, "hours", 1_001, limit=10_000)
    assert not isinstance(refused, holds.HeldRecord)
    assert refused.code == "credit-limit-exceeded"
    assert isinstance(holds.place(coop.state, c, member, "hours", 1_000, 10_000), holds.HeldRecord)


def test_more_than_is_held_is_never_released(coop: Coop) -> None:
    _hold(coop, "alice", 300)
    did = coop.s.did("alice")
    assert holds.release(coop.state, coop.s.coop, did, "hours", 300).amount == 0
    with pytest.raises(ValueError, match="releasing 301"):
        holds.release(coop.state, coop.s.coop, did, "hours", 301)
