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
    room = holds.credit_room(c.state, coop, member, "hours", c.s.ts)
    assert room.limit == 10_000
    placed = holds.place(coop, member, "hours", amount, room)
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
    room = holds.credit_room(coop.state, c, member, "hours", coop.s.ts)
    assert (room.balance, room.held, room.limit, room.spendable) == (-9_000, 0, 10_000, 1_000)
    refused = holds.place(c, member, "hours", 1_001, room)
    assert not isinstance(refused, holds.HeldRecord)
    assert refused.code == "credit-limit-exceeded"
    assert isinstance(holds.place(c, member, "hours", 1_000, room), holds.HeldRecord)


def test_more_than_is_held_is_never_released(coop: Coop) -> None:
    _hold(coop, "alice", 300)
    did = coop.s.did("alice")
    assert holds.release(coop.state, coop.s.coop, did, "hours", 300).amount == 0
    with pytest.raises(ValueError, match="releasing 301"):
        holds.release(coop.state, coop.s.coop, did, "hours", 301)


def test_the_credit_room_counts_holds_as_credit_used(coop: Coop) -> None:
    """What the read side shows and the write side judges: one struct, one formula."""
    _hold(coop, "alice", 6_000)
    c = coop.state.coop(coop.s.coop)
    member = coop.state.member(coop.s.coop, coop.s.did("alice"))
    assert c is not None and member is not None
    room = holds.credit_room(coop.state, c, member, "hours", coop.s.ts)
    assert (room.balance, room.held, room.used, room.available, room.spendable) == (
        0, 6_000, 6_000, 4_000, 4_000,
    )  # fmt: skip
    assert room.allows(-4_000) and not room.allows(-4_001)
    coop.ok(coop.s.pay("bob", "alice", 5_000))
    room = holds.credit_room(coop.state, c, member, "hours", coop.s.ts)
    assert (room.used, room.available, room.spendable) == (1_000, 9_000, 9_000)
