"""Appeals: a root-domain proposal resolves one; its outcome is linked on close, and when it
overturns an executed decision it carries that decision's reverse (recorded when the
decision's effect was applied), executed and linked like any other action."""

from __future__ import annotations

from typing import Any

import msgspec

from icn.domain.coop.records import Policy
from icn.domain.events.envelope import Event
from icn.domain.governance import actions as a
from icn.domain.governance import state
from icn.domain.governance.links import OVERTURNED, budget_transaction

from .story import Gov
from .test_effects import accepted, coop, executed


def appeal(gov: Gov, p: Event, who: str = "carol") -> Event:
    filed = gov.event(who, "AppealFiled", {"proposal": p.id, "grounds": "we were not told"})
    gov.run(filed)
    return filed


def resolve(gov: Gov, filed: Event, action: dict[str, Any], *, yes: bool = True) -> Event:
    """The appeal's proposal, voted (yes: overturned; no: upheld) and closed."""
    r = gov.propose(action=action, appeal=filed.id)
    choice = "yes" if yes else "no"
    gov.run(r, *(gov.vote(who, r.id, choice) for who in ("alice", "bob", "carol")))
    gov.run(gov.close(r.id))
    return r


def outcome(gov: Gov, filed: Event) -> str | None:
    record = state.appeal(gov.c.state, gov.s.coop, filed.id)
    assert record is not None
    return record.outcome


def test_an_admission_overturned_suspends_the_member_by_the_appeals_proposal(gov: Gov) -> None:
    erin = gov.s.did("erin")
    p = accepted(gov, {"kind": "add-member", "member": erin})
    admitted = coop(gov, "coop.MemberAdmitted", {"member": erin, "proposal": p.id})
    gov.run(admitted)
    executed(gov, p, admitted)
    filed = appeal(gov, p)
    freeze = {"kind": "freeze", "member": erin, "reason": "r"}
    wrong = gov.propose(action=freeze, appeal=filed.id, advance=False)
    assert gov.c.refused(wrong) == "appeal-action-mismatch"
    reverse = {"kind": "remove-member", "member": erin, "reason": OVERTURNED}
    r = resolve(gov, filed, reverse)
    assert outcome(gov, filed) == "overturned"
    suspended = coop(gov, "coop.MemberSuspended", {"member": erin, "reason": OVERTURNED,
                                                   "proposal": r.id})  # fmt: skip
    gov.run(suspended)
    executed(gov, r, suspended)
    assert gov.c.member("erin").status == "suspended"
    assert gov.proposal(r.id).reverse == a.ReinstateMember(member=erin)


def test_a_policy_change_overturned_restores_the_previous_values_new_currencies_kept(
    gov: Gov,
) -> None:
    before = gov.c.state.coop(gov.s.coop)
    assert before is not None
    policy = msgspec.to_builtins(before.policy)
    policy["credit"]["hours"]["baseline"] = 1
    policy["credit"]["beans"] = {"baseline": 5, "max_limit": 5}
    beans = [{"code": "beans", "unit": "bean", "decimals": 0}]
    change = {"kind": "change-policy", "policy": policy, "add_currencies": beans}
    p = accepted(gov, change)
    body = {"policy": policy, "add_currencies": beans, "proposal": p.id}
    changed = coop(gov, "coop.PolicyChanged", body)
    gov.run(changed)
    executed(gov, p, changed)
    filed = appeal(gov, p)
    previous = msgspec.to_builtins(before.policy)
    previous["credit"]["beans"] = {"baseline": 5, "max_limit": 5}
    undo = gov.proposal(p.id).reverse
    assert isinstance(undo, a.ChangePolicy) and undo.policy == msgspec.convert(previous, Policy)
    r = resolve(gov, filed, {"kind": "change-policy", "policy": previous})
    restored = coop(gov, "coop.PolicyChanged", {"policy": previous, "proposal": r.id})
    gov.run(restored)
    executed(gov, r, restored)
    after = gov.c.state.coop(gov.s.coop)
    assert after is not None
    assert after.policy.credit["hours"] == before.policy.credit["hours"]
    assert set(after.currencies) == {"hours", "beans"}


def test_a_budget_overturned_is_paid_back_to_the_treasury(gov: Gov) -> None:
    bob = gov.s.did("bob")
    budget = {"kind": "allocate-budget", "to": bob, "amount": 300, "currency": "hours",
              "purpose": "tools"}  # fmt: skip
    p = accepted(gov, budget)
    paid = a.AllocateBudget(to=bob, amount=300, currency="hours", purpose="tools")
    entry = coop(gov, "ledger.EntryRecorded",
                 {"transactions": [budget_transaction(paid, gov.s.coop_did, p.id)]})  # fmt: skip
    gov.run(entry)
    executed(gov, p, entry)
    assert gov.c.balance("bob") == 300
    filed = appeal(gov, p)
    reclaim = {"kind": "reclaim-budget", "member": bob, "amount": 300, "currency": "hours",
               "purpose": "tools"}  # fmt: skip
    r = resolve(gov, filed, reclaim)
    back = a.ReclaimBudget(member=bob, amount=300, currency="hours", purpose="tools")
    tx = budget_transaction(back, gov.s.coop_did, r.id)
    assert (tx["from"], tx["to"]) == (bob, gov.s.coop_did)
    returned = coop(gov, "ledger.EntryRecorded", {"transactions": [tx]})
    gov.run(returned)
    executed(gov, r, returned)
    assert gov.c.balance("bob") == 0


def test_an_upheld_decision_is_left_as_it_is(gov: Gov) -> None:
    dan = gov.s.did("dan")
    p = accepted(gov, {"kind": "freeze", "member": dan, "reason": "audit"})
    frozen = coop(gov, "ledger.AccountFrozen", {"member": dan, "reason": "audit",
                                                "proposal": p.id})  # fmt: skip
    gov.run(frozen)
    executed(gov, p, frozen)
    filed = appeal(gov, p, "dan")
    r = resolve(gov, filed, {"kind": "unfreeze", "member": dan}, yes=False)
    assert outcome(gov, filed) == "upheld"
    lifted = coop(gov, "ledger.AccountUnfrozen", {"member": dan, "proposal": r.id}, ok=False)
    assert gov.c.refused(lifted) == "not-accepted"
    assert gov.c.member("dan").frozen


def test_a_rejection_overturned_carries_out_what_was_rejected(gov: Gov) -> None:
    action = {"kind": "amend-charter", "section": "purpose", "text": "We share.",
              "rationale": "r"}  # fmt: skip
    p = gov.propose(action=action)
    gov.run(p, gov.vote("alice", p.id, "no"), gov.vote("bob", p.id, "no"))
    gov.run(gov.close(p.id))
    filed = appeal(gov, p)
    other = {**action, "text": "We obey."}
    assert gov.c.refused(gov.propose(action=other, appeal=filed.id, advance=False)) == (
        "appeal-action-mismatch"
    )
    r = resolve(gov, filed, action)
    text = {k: v for k, v in action.items() if k != "kind"}
    amended = coop(gov, "governance.CharterAmended", {**text, "proposal": r.id})
    gov.run(amended)
    executed(gov, r, amended)
    assert gov.proposal(r.id).reverse == a.AmendCharter(
        section="purpose", text="", rationale=OVERTURNED
    )


def test_a_decision_without_reverse_is_overturned_in_words_only_and_once(gov: Gov) -> None:
    vouch = {"subject": gov.s.did("bob"), "context": "general", "score_ppm": 900_000}
    made = gov.s.event("carol", "trust.AttestationRecorded", vouch)
    gov.run(made)
    p = accepted(gov, {"kind": "revoke-trust", "attestation": made.id, "reason": "a ring"})
    revoked = coop(gov, "trust.AttestationRevoked", {"attestation": made.id, "proposal": p.id})
    gov.run(revoked)
    executed(gov, p, revoked)
    filed = appeal(gov, p)
    again = {"kind": "revoke-trust", "attestation": made.id, "reason": "again"}
    assert gov.c.refused(gov.propose(action=again, appeal=filed.id, advance=False)) == (
        "appeal-action-mismatch"
    )
    r = resolve(gov, filed, {"kind": "text"})
    assert outcome(gov, filed) == "overturned"
    executed(gov, r)


def test_two_appeals_overturn_a_decision_once(gov: Gov) -> None:
    dan = gov.s.did("dan")
    p = accepted(gov, {"kind": "freeze", "member": dan, "reason": "audit"})
    frozen = coop(gov, "ledger.AccountFrozen", {"member": dan, "reason": "audit",
                                                "proposal": p.id})  # fmt: skip
    gov.run(frozen)
    executed(gov, p, frozen)
    first, second = appeal(gov, p, "dan"), appeal(gov, p, "carol")
    unfreeze = {"kind": "unfreeze", "member": dan}
    r = gov.propose(action=unfreeze, appeal=first.id)
    gov.run(r)
    twice = gov.propose(action=unfreeze, appeal=second.id, advance=False)
    assert gov.c.refused(twice) == "already-overturned"
    gov.run(gov.propose(action={"kind": "text"}, appeal=second.id))  # in words: allowed


def test_a_domain_change_overturned_restores_the_previous_rules(gov: Gov) -> None:
    gov.run(gov.event("coop", "DomainDefined", {"domain": "finance", "rules": {}}))
    rules = {"method": "supermajority", "threshold_ppm": 750_000}
    p = accepted(gov, {"kind": "change-domain", "domain": "finance", "rules": rules})
    changed = gov.event("coop", "DomainChanged", {"domain": "finance", "rules": rules,
                                                  "proposal": p.id})  # fmt: skip
    gov.run(changed)
    executed(gov, p, changed)
    assert gov.proposal(p.id).reverse == a.ChangeDomain(domain="finance", rules=a.DomainRules())
    filed = appeal(gov, p)
    r = resolve(gov, filed, {"kind": "change-domain", "domain": "finance", "rules": {}})
    back = gov.event("coop", "DomainChanged", {"domain": "finance", "rules": {},
                                               "proposal": r.id})  # fmt: skip
    gov.run(back)
    executed(gov, r, back)
    record = gov.c.state.coop(gov.s.coop)
    assert record is not None
    finance = state.domain(gov.c.state, record, "finance")
    assert finance is not None and (finance.rules, finance.version) == (a.DomainRules(), 3)


def test_a_new_domain_has_no_reverse_and_is_overturned_in_words_only(gov: Gov) -> None:
    gov.run(gov.propose())  # past the coop's setting up: a new domain needs a proposal
    p = accepted(gov, {"kind": "change-domain", "domain": "legal", "rules": {}})
    defined = gov.event("coop", "DomainDefined", {"domain": "legal", "rules": {},
                                                  "proposal": p.id})  # fmt: skip
    gov.run(defined)
    executed(gov, p, defined)
    assert gov.proposal(p.id).reverse is None
    filed = appeal(gov, p)
    undo = {"kind": "change-domain", "domain": "legal", "rules": {"method": "unanimous"}}
    assert gov.c.refused(gov.propose(action=undo, appeal=filed.id, advance=False)) == (
        "appeal-action-mismatch"
    )
