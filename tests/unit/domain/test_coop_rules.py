"""The coop rules as pure functions: one story per rule, judged on an in-memory view."""

from __future__ import annotations

import msgspec
import pytest
from support.coops import CoopScript
from support.rule_coop import Coop

from icn.domain.coop.records import (
    DAY_MS,
    CreditPolicy,
    MemberStatus,
    Policy,
)
from icn.domain.events.envelope import Event
from icn.domain.ledger.credit import credit_limit


@pytest.fixture
def coop() -> Coop:
    c = Coop(CoopScript())
    c.ok(c.s.found({"alice": ["admin"], "bob": [], "mia": ["mediator"]}))
    return c


def test_nothing_happens_in_a_coop_that_was_never_founded() -> None:
    c = Coop(CoopScript())
    assert c.refused(c.s.pay("alice", "bob", 100, advance=False)) == "unknown-coop"


def test_a_coop_is_founded_once(coop: Coop) -> None:
    assert coop.refused(coop.s.found()) == "coop-already-founded"


def test_payments_move_money_and_balances_sum_to_zero(coop: Coop) -> None:
    coop.ok(coop.s.pay("alice", "bob", 2_500))
    coop.ok(coop.s.pay("bob", "mia", 1_000))
    assert (coop.balance("alice"), coop.balance("bob"), coop.balance("mia")) == (-2500, 1500, 1000)
    bob = coop.state.account("demo", coop.s.did("bob"), "hours")
    assert bob is not None and bob.cleared_volume == 2_500


def test_the_credit_limit_is_the_floor(coop: Coop) -> None:
    coop.ok(coop.s.pay("alice", "bob", 10_000))  # exactly the baseline
    assert coop.refused(coop.s.pay("alice", "bob", 1, advance=False)) == "credit-limit-exceeded"
    assert coop.balance("alice") == -10_000


def test_cleared_volume_raises_the_limit_up_to_the_cap() -> None:
    policy = Policy(
        credit={"hours": CreditPolicy(baseline=1_000, history_rate_ppm=500_000, max_limit=2_000)}
    )
    c = Coop(CoopScript())
    c.ok(c.s.found({"alice": ["admin"], "bob": []}, policy=policy))
    c.ok(c.s.pay("alice", "bob", 1_000))
    c.ok(c.s.pay("bob", "alice", 1_000))  # bob now has 1,000 cleared: limit 1,500
    c.ok(c.s.pay("bob", "alice", 1_500))
    assert c.refused(c.s.pay("bob", "alice", 1, advance=False)) == "credit-limit-exceeded"
    c.ok(c.s.pay("alice", "bob", 3_500))  # alice: 2,500 cleared → 2,250, capped at 2,000
    assert c.balance("alice") == -2_000
    assert c.refused(c.s.pay("alice", "bob", 1, advance=False)) == "credit-limit-exceeded"


def test_a_new_member_ramps_up_from_the_initial_limit() -> None:
    policy = Policy(
        credit={
            "hours": CreditPolicy(
                baseline=10_000, max_limit=10_000, initial_limit=2_000, ramp_days=10
            )
        }
    )
    c = Coop(CoopScript())
    c.ok(c.s.found({"alice": ["admin"], "bob": []}, policy=policy))
    joined = c.s.ts
    c.ok(c.s.pay("alice", "bob", 2_000))
    assert c.refused(c.s.pay("alice", "bob", 1, advance=False)) == "credit-limit-exceeded"
    half = joined + 5 * DAY_MS  # halfway: 2,000 + 8,000 / 2
    c.ok(c.s.pay("alice", "bob", 4_000, ts=half))
    assert c.refused(c.s.pay("alice", "bob", 1, ts=half, advance=False)) == "credit-limit-exceeded"
    c.ok(c.s.pay("alice", "bob", 4_000, ts=joined + 10 * DAY_MS))


def test_limit_breakdown_names_every_term() -> None:
    policy = CreditPolicy(
        baseline=10_000,
        trust_multiplier_ppm=300_000,
        history_rate_ppm=50_000,
        max_limit=100_000,
    )
    b = credit_limit(policy, cleared_volume=100_000, trust_ppm=800_000, joined_ms=0, now_ms=1)
    # The reference example: 100 + 100 × 0.8 × 0.3 + 1000 × 0.05 = 174 hours.
    assert (b.trust_bonus, b.history_bonus, b.limit) == (2_400, 5_000, 17_400)


def test_only_members_pay_and_only_members_are_paid(coop: Coop) -> None:
    assert coop.refused(coop.s.pay("zoe", "bob", 1, advance=False)) == "not-a-member"
    assert coop.refused(coop.s.pay("alice", "zoe", 1, advance=False)) == "not-a-member"
    coop.ok(coop.s.pay("alice", "coop", 5))  # the coop's account takes payments


def test_unknown_currency_is_refused(coop: Coop) -> None:
    code = coop.refused(coop.s.pay("alice", "bob", 1, currency="eur", advance=False))
    assert code == "unknown-currency"


def test_membership_lifecycle(coop: Coop) -> None:
    s = coop.s
    coop.ok(s.event("zoe", "coop.MemberApplied", {"note": "hello"}))
    assert coop.member("zoe").status == MemberStatus.APPLIED
    admit = {"member": s.did("zoe"), "roles": []}
    assert coop.refused(s.event("bob", "coop.MemberAdmitted", admit, advance=False)) == (
        "not-authorized"
    )
    coop.ok(s.event("alice", "coop.MemberAdmitted", admit))
    assert coop.member("zoe").is_active
    coop.ok(s.pay("zoe", "bob", 100))
    suspend = {"member": s.did("zoe"), "reason": "unpaid dues"}
    coop.ok(s.event("alice", "coop.MemberSuspended", suspend))
    assert coop.refused(s.pay("zoe", "bob", 1, advance=False)) == "member-suspended"
    assert coop.refused(s.pay("bob", "zoe", 1, advance=False)) == "member-suspended"
    coop.ok(s.event("alice", "coop.MemberReinstated", {"member": s.did("zoe")}))
    assert coop.refused(s.event("zoe", "coop.MemberExited", {}, advance=False)) == (
        "balance-not-settled"
    )
    coop.ok(s.pay("bob", "zoe", 100))
    coop.ok(s.event("zoe", "coop.MemberExited", {"reason": "moving away"}))
    assert coop.member("zoe").status == MemberStatus.EXITED
    assert coop.refused(s.pay("alice", "zoe", 1, advance=False)) == "not-a-member"


def test_a_frozen_member_receives_but_does_not_pay(coop: Coop) -> None:
    s = coop.s
    until = s.ts + DAY_MS
    freeze = {"member": s.did("bob"), "reason": "lost phone", "until": until}
    coop.ok(s.event("alice", "ledger.AccountFrozen", freeze))
    coop.ok(s.pay("alice", "bob", 100))
    assert coop.refused(s.pay("bob", "alice", 1, advance=False)) == "account-frozen"
    coop.ok(s.pay("bob", "alice", 1, ts=until))  # the freeze ended by itself
    coop.ok(s.event("alice", "ledger.AccountFrozen", {**freeze, "until": None}))
    assert coop.refused(s.pay("bob", "alice", 1, advance=False)) == "account-frozen"
    coop.ok(s.event("alice", "ledger.AccountUnfrozen", {"member": s.did("bob")}))
    coop.ok(s.pay("bob", "alice", 1))


def _dispute(coop: Coop, amount: int = 1_000) -> tuple[Event, Event]:
    s = coop.s
    entry = s.pay("alice", "bob", amount)
    coop.ok(entry)
    filed = s.event("alice", "ledger.DisputeFiled", {"entry": entry.id, "reason": "never done"})
    coop.ok(filed)
    return entry, filed


def test_a_reversal_is_settled_by_a_coop_entry_that_matches_the_ruling(coop: Coop) -> None:
    s = coop.s
    entry, filed = _dispute(coop)
    again = {"entry": entry.id, "reason": "twice"}
    assert coop.refused(s.event("bob", "ledger.DisputeFiled", again, advance=False)) == (
        "already-disputed"
    )
    answer = {"dispute": filed.id, "response": "it was done"}
    assert coop.refused(s.event("alice", "ledger.DisputeAnswered", answer, advance=False)) == (
        "not-a-party"
    )
    coop.ok(s.event("bob", "ledger.DisputeAnswered", answer))
    assign = {"dispute": filed.id, "mediator": s.did("bob")}
    assert coop.refused(s.event("alice", "ledger.MediatorAssigned", assign, advance=False)) == (
        "not-eligible"
    )
    coop.ok(s.event("alice", "ledger.MediatorAssigned", {**assign, "mediator": s.did("mia")}))
    ruling = {"dispute": filed.id, "outcome": "reversed"}
    assert coop.refused(s.event("alice", "ledger.DisputeResolved", ruling, advance=False)) == (
        "not-authorized"
    )
    coop.ok(s.event("mia", "ledger.DisputeResolved", ruling))
    wrong = s.event(
        "coop",
        "ledger.EntryRecorded",
        {"transactions": [{"from": s.did("bob"), "to": s.did("alice"), "amount": 999,
                           "currency": "hours", "memo": None}]},
    )  # fmt: skip
    coop.ok(wrong)
    settle = {"dispute": filed.id, "entry": wrong.id}
    assert coop.refused(s.event("coop", "ledger.DisputeSettled", settle, advance=False)) == (
        "settlement-mismatch"
    )
    right = s.event(
        "coop",
        "ledger.EntryRecorded",
        {"transactions": [{"from": s.did("bob"), "to": s.did("alice"), "amount": 1_000,
                           "currency": "hours", "memo": "reversal"}]},
    )  # fmt: skip
    coop.ok(right)
    coop.ok(s.event("coop", "ledger.DisputeSettled", {**settle, "entry": right.id}))
    dispute = coop.state.dispute("demo", filed.id)
    assert dispute is not None and (dispute.status, dispute.settlement) == ("settled", right.id)


def test_partial_refund_needs_an_amount_below_the_disputed_one(coop: Coop) -> None:
    s = coop.s
    _, filed = _dispute(coop)
    too_much = {"dispute": filed.id, "outcome": "partial-refund", "refund": 1_000}
    assert coop.refused(s.event("alice", "ledger.DisputeResolved", too_much, advance=False)) == (
        "not-authorized"  # alice is a party: never her own judge
    )
    assert coop.refused(s.event("mia", "ledger.DisputeResolved", too_much, advance=False)) == (
        "not-authorized"  # mia is no admin and no mediator was assigned
    )
    coop.ok(s.event("alice", "coop.RolesAssigned", {"member": s.did("mia"), "roles": ["admin"]}))
    assert coop.refused(s.event("mia", "ledger.DisputeResolved", too_much, advance=False)) == (
        "invalid-amount"
    )
    coop.ok(s.event("mia", "ledger.DisputeResolved", {**too_much, "refund": 400}))
    dispute = coop.state.dispute("demo", filed.id)
    assert dispute is not None and dispute.refund == 400


def test_policy_changes_only_by_the_coop_and_stay_consistent(coop: Coop) -> None:
    s = coop.s
    new = msgspec.to_builtins(
        Policy(credit={"hours": CreditPolicy(baseline=20_000, max_limit=20_000)})
    )
    assert coop.refused(s.event("alice", "coop.PolicyChanged", {"policy": new}, advance=False)) == (
        "not-authorized"
    )
    orphan = {
        "policy": {"credit": {"hours": new["credit"]["hours"], "eur": new["credit"]["hours"]}}
    }
    # A policy naming a currency it does not define is invalid as written (never clears),
    # unlike a payment in a currency a later policy change may add (unknown-currency).
    assert coop.refused(s.event("coop", "coop.PolicyChanged", orphan, advance=False)) == (
        "invalid-policy"
    )
    coop.ok(s.event("coop", "coop.PolicyChanged", {"policy": new}))
    coop.ok(s.pay("alice", "bob", 20_000))


def test_other_types_need_an_active_member_and_log_types_anyone(coop: Coop) -> None:
    s = coop.s
    assert coop.refused(s.event("zoe", "custom.Noted", {}, advance=False)) == ("not-a-member")
    coop.ok(s.event("bob", "custom.Noted", {}))
    assert coop.apply(s.event("node", "log.Whatever", {})) is None


def test_a_bad_body_is_refused_with_its_own_code(coop: Coop) -> None:
    s = coop.s
    bad = s.event(
        "alice", "coop.MemberAdmitted", {"member": s.did("zoe"), "extra": 1}, advance=False
    )
    assert coop.refused(bad) == "invalid-body"


def test_writing_off_a_payment_the_coop_made_is_refused(coop: Coop) -> None:
    s = coop.s
    grant = s.event(
        "coop",
        "ledger.EntryRecorded",
        {"transactions": [{"from": s.did("coop"), "to": s.did("bob"), "amount": 50,
                           "currency": "hours", "memo": "grant"}]},
    )  # fmt: skip
    coop.ok(grant)
    filed = s.event("bob", "ledger.DisputeFiled", {"entry": grant.id, "reason": "too small"})
    coop.ok(filed)
    ruling = {"dispute": filed.id, "outcome": "written-off"}
    assert coop.refused(s.event("alice", "ledger.DisputeResolved", ruling, advance=False)) == (
        "invalid-outcome"
    )


def test_only_members_speak_in_a_dispute(coop: Coop) -> None:
    s = coop.s
    coop.ok(s.event("alice", "coop.MemberAdmitted", {"member": s.did("zoe"), "roles": []}))
    entry = s.pay("zoe", "bob", 100)
    coop.ok(entry)
    coop.ok(s.pay("bob", "zoe", 100))
    coop.ok(s.event("zoe", "coop.MemberExited", {}))
    filing = {"entry": entry.id, "reason": "after leaving"}
    assert coop.refused(s.event("zoe", "ledger.DisputeFiled", filing, advance=False)) == (
        "not-a-member"
    )


def test_demurrage_switched_on_later_counts_from_then_in_whole_periods(coop: Coop) -> None:
    s = coop.s
    policy = {
        "credit": {"hours": {"baseline": 10_000, "max_limit": 10_000}},
        "demurrage": {"hours": {"rate_ppm": 10_000, "period_days": 7}},
    }
    changed = s.event("coop", "coop.PolicyChanged", {"policy": policy}, ts=s.ts + 100 * DAY_MS)
    coop.ok(changed)
    record = coop.state.coop("demo")
    assert record is not None and record.demurrage_until == {"hours": changed.ts}
    charge = {"currency": "hours", "entries": []}
    early = {**charge, "period_end": changed.ts + 7 * DAY_MS}
    assert coop.refused(s.event("coop", "ledger.DemurrageCharged", early, advance=False)) == (
        "invalid-period"  # the period has not ended yet at the event's ts
    )
    odd = {**charge, "period_end": changed.ts + 5 * DAY_MS}
    later = changed.ts + 8 * DAY_MS
    assert (
        coop.refused(s.event("coop", "ledger.DemurrageCharged", odd, ts=later, advance=False))
        == "invalid-period"
    )
    coop.ok(s.event("coop", "ledger.DemurrageCharged", early, ts=later))
    assert (
        coop.refused(s.event("coop", "ledger.DemurrageCharged", early, ts=later, advance=False))
        == "already-charged"
    )
