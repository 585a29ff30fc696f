"""One refusal vocabulary: each code means one thing, and what follows from it is derived."""

from __future__ import annotations

import pytest
from support.coops import CoopScript

from icn.application.append import REFUSED, Outcome
from icn.application.coop_view import NoRecords, StateLayer
from icn.application.intake import parkable
from icn.domain.coop.evolve import evolve
from icn.domain.events.envelope import Event
from icn.domain.refusals import Code, Kind, Refusal, lookup, may_clear
from icn.interfaces.cli.exit_codes import exit_code_for
from icn.interfaces.http.problems import status_for

STATUS_BEFORE_THE_VOCABULARY = {
    403: {"not-a-member", "not-authorized", "member-suspended", "account-frozen",
          "author-flagged", "payer-not-signer", "not-author"},
    409: {"credit-limit-exceeded", "coop-already-founded", "already-member", "already-disputed",
          "already-answered", "already-charged", "dispute-closed", "balance-not-settled",
          "fork", "gap", "broken-link", "duplicate"},
    422: {"malformed", "bad-id", "bad-signature", "self-payment", "invalid-amount",
          "invalid-body", "clock-skew", "unknown-coop", "unknown-currency", "invalid-policy",
          "invalid-member", "not-suspended", "not-frozen", "unknown-entry", "not-a-party",
          "unknown-dispute", "not-eligible", "invalid-outcome", "settlement-mismatch",
          "invalid-period", "wrong-coop"},
    503: {"store-busy", "stream-unavailable"},
}  # fmt: skip
"""What the API answered for each code before the table existed (it must not change)."""


class Coop:
    """A coop's state, moved forward only by accepted events."""

    def __init__(self) -> None:
        self.s = CoopScript()
        self.state = StateLayer(NoRecords())
        self.events: dict[str, Event] = {}

    def apply(self, event: Event) -> Refusal | None:
        result = evolve(event, self.state, event.ts)
        if isinstance(result, Refusal):
            return result
        self.state.write(event, result)
        return None

    def ok(self, event: Event) -> None:
        assert self.apply(event) is None

    def refused(self, event: Event) -> str:
        refusal = self.apply(event)
        assert refusal is not None, f"{event.type} was accepted"
        return refusal.code


@pytest.fixture
def coop() -> Coop:
    c = Coop()
    c.ok(c.s.found({"alice": ["admin"], "bob": [], "mia": ["mediator"]}))
    return c


@pytest.mark.parametrize("status", sorted(STATUS_BEFORE_THE_VOCABULARY))
def test_http_statuses_derived_from_kinds_are_the_ones_the_api_gave(status: int) -> None:
    for code in STATUS_BEFORE_THE_VOCABULARY[status]:
        assert status_for(code) == status, code


def test_the_codes_split_out_answer_by_their_own_kind() -> None:
    assert status_for("already-suspended") == 409  # was 403 as member-suspended
    assert status_for("dispute-not-resolved") == 409
    assert status_for("invalid-freeze") == 422  # was invalid-request, 400 elsewhere


def test_intake_parks_exactly_the_refusals_that_may_clear() -> None:
    for code in Code:
        outcome = Outcome(REFUSED, "", code=code)
        assert parkable(outcome) is code.clears, code
    assert parkable(Outcome("gap", "", code="gap"))
    assert not parkable(Outcome("fork", "", code="fork"))
    assert not may_clear("no-such-code") and lookup("no-such-code") is None


def test_every_refusal_is_exit_1_on_the_command_line() -> None:
    assert {exit_code_for(code) for code in Code} == {1}
    assert {c.kind for c in Code} == set(Kind)


def test_a_suspended_actor_and_a_second_suspension_are_two_codes(coop: Coop) -> None:
    s = coop.s
    suspend = {"member": s.did("bob"), "reason": "unpaid dues"}
    coop.ok(s.event("alice", "coop.MemberSuspended", suspend))
    assert coop.refused(s.event("alice", "coop.MemberSuspended", suspend, advance=False)) == (
        "already-suspended"
    )
    assert coop.refused(s.pay("bob", "alice", 1, advance=False)) == "member-suspended"


def test_a_settlement_before_its_resolution_waits_one_after_it_is_closed(coop: Coop) -> None:
    s = coop.s
    entry = s.pay("alice", "bob", 1_000)
    coop.ok(entry)
    filed = s.event("alice", "ledger.DisputeFiled", {"entry": entry.id, "reason": "never done"})
    coop.ok(filed)
    settle = {"dispute": filed.id, "entry": filed.id}
    refused = s.event("coop", "ledger.DisputeSettled", settle, advance=False)
    assert coop.refused(refused) == "dispute-not-resolved"
    assert Code.DISPUTE_NOT_RESOLVED.clears and not Code.DISPUTE_CLOSED.clears
    resolve = {"dispute": filed.id, "outcome": "dismissed"}
    coop.ok(s.event("coop", "ledger.DisputeResolved", resolve))
    refused = s.event("coop", "ledger.DisputeSettled", settle, advance=False)
    assert coop.refused(refused) == "dispute-closed"


def test_the_credit_limit_refusal_speaks_the_currencys_units(coop: Coop) -> None:
    event = coop.s.pay("bob", "alice", 50_250, advance=False)
    refusal = coop.apply(event)
    assert refusal is not None and refusal.code == "credit-limit-exceeded"
    assert "would be -502.50 hours, below the credit limit of -100.00" in refusal.reason, (
        refusal.reason
    )
