"""Effects of accepted proposals, judged by their own rules: each names its proposal, and the
link is checked (exists, accepted, not carried out yet, the very action) and written back."""

from __future__ import annotations

from typing import Any

import msgspec

from icn.application.coop_view import decode_record, encode_record
from icn.domain.coop.records import DisputeStatus
from icn.domain.events.envelope import Event
from icn.domain.governance import actions as a
from icn.domain.governance.links import budget_transaction
from icn.domain.trust import state as trust_state

from .story import Gov


def accepted(gov: Gov, action: dict[str, Any]) -> Event:
    """A proposal of ``action``, voted yes by alice and bob and closed: accepted."""
    p = gov.propose(action=action)
    gov.run(p, gov.vote("alice", p.id), gov.vote("bob", p.id))
    gov.run(gov.close(p.id))
    assert gov.proposal(p.id).state == "accepted"
    return p


def coop(gov: Gov, kind: str, body: dict[str, Any], *, ok: bool = True) -> Event:
    """An event by the coop's DID (``ok=False``: leaves the chain as it was, for a refusal)."""
    return gov.s.event("coop", kind, body, advance=ok)


def executed(gov: Gov, p: Event, *effects: Event) -> None:
    body = {"proposal": p.id, "effects": [e.id for e in effects]}
    gov.run(gov.event("coop", "ProposalExecuted", body))
    assert gov.proposal(p.id).execution == "executed"


def test_the_coop_revokes_an_attestation_it_did_not_make_only_as_a_proposal_orders(
    gov: Gov,
) -> None:
    vouch = {"subject": gov.s.did("bob"), "context": "general", "score_ppm": 900_000}
    made = gov.s.event("carol", "trust.AttestationRecorded", vouch)
    other = gov.s.event("dan", "trust.AttestationRecorded", vouch)
    gov.run(made, other)
    revoke = {"attestation": made.id}
    assert gov.c.refused(coop(gov, "trust.AttestationRevoked", revoke, ok=False)) == (
        "proposal-required"  # the coop's DID made no attestation: it needs an order
    )
    by_other = gov.s.event("dan", "trust.AttestationRevoked", revoke, advance=False)
    assert gov.c.refused(by_other) == "not-truster"
    p = accepted(gov, {"kind": "revoke-trust", "attestation": made.id, "reason": "a ring"})
    by_truster = gov.s.event(
        "carol", "trust.AttestationRevoked", {**revoke, "proposal": p.id}, advance=False
    )
    assert gov.c.refused(by_truster) == "link-by-coop-only"
    wrong = {"attestation": other.id, "proposal": p.id}
    assert gov.c.refused(coop(gov, "trust.AttestationRevoked", wrong, ok=False)) == (
        "proposal-mismatch"
    )
    revoked = coop(gov, "trust.AttestationRevoked", {**revoke, "proposal": p.id})
    gov.run(revoked)
    live = trust_state.attestation(
        gov.c.state, gov.s.coop, "general", gov.s.did("carol"), gov.s.did("bob")
    )
    assert live is not None and live.revoked
    assert gov.proposal(p.id).carried == (revoked.id,)
    assert gov.proposal(p.id).reverse is None  # nothing un-revokes; carol may attest again
    again = coop(gov, "trust.AttestationRevoked", {**revoke, "proposal": p.id}, ok=False)
    assert gov.c.refused(again) == "already-executed"
    executed(gov, p, revoked)


def test_set_pretrusted_is_the_policy_as_it_stands_with_the_new_set(gov: Gov) -> None:
    state = gov.c.state.coop(gov.s.coop)
    assert state is not None and state.policy.trust.pretrusted is None
    dids = [gov.s.did("dan")]
    p = accepted(gov, {"kind": "set-pretrusted", "pretrusted": dids})
    policy: dict[str, Any] = {
        "credit": {"hours": {"baseline": 10_000, "max_limit": 10_000}},
        "trust": {"pretrusted": dids},
    }
    forged = coop(gov, "coop.PolicyChanged", {"policy": policy, "proposal": p.id}, ok=False)
    assert gov.c.refused(forged) == "proposal-mismatch"  # it changes credit too
    now = msgspec.to_builtins(state.policy)
    now["trust"]["pretrusted"] = dids
    changed = coop(gov, "coop.PolicyChanged", {"policy": now, "proposal": p.id})
    gov.run(changed)
    after = gov.c.state.coop(gov.s.coop)
    assert after is not None and after.policy.trust.pretrusted == dids
    assert gov.proposal(p.id).reverse == a.SetPretrusted(pretrusted=None)
    executed(gov, p, changed)


def escalated_dispute(gov: Gov) -> str:
    """bob pays carol 300; carol disputes; dan mediates and escalates: the dispute's id."""
    paid = gov.s.pay("bob", "carol", 300)
    filed = gov.s.event("bob", "ledger.DisputeFiled", {"entry": paid.id, "reason": "not done"})
    gov.run(paid, filed)
    assign = {"dispute": filed.id, "mediator": gov.s.did("dan")}
    gov.run(gov.s.event("alice", "ledger.MediatorAssigned", assign))
    up = {"dispute": filed.id, "outcome": "escalated"}
    gov.run(gov.s.event("dan", "ledger.DisputeResolved", up))
    return filed.id


def test_an_escalated_dispute_is_ruled_by_its_proposal_and_then_settled(gov: Gov) -> None:
    dispute = escalated_dispute(gov)
    ruling = {"dispute": dispute, "outcome": "partial-refund", "refund": 100}
    again = gov.s.event("dan", "ledger.DisputeResolved", ruling, advance=False)
    assert gov.c.refused(again) == "dispute-closed"  # the mediator handed it on
    action = {"kind": "escalated-dispute", "dispute": dispute, "ruling": "partial-refund",
              "refund": 100}  # fmt: skip
    p = accepted(gov, action)
    unlinked = coop(gov, "ledger.DisputeResolved", ruling, ok=False)
    assert gov.c.refused(unlinked) == "dispute-closed"
    other = {**ruling, "refund": 200, "proposal": p.id}
    assert gov.c.refused(coop(gov, "ledger.DisputeResolved", other, ok=False)) == (
        "proposal-mismatch"
    )
    resolved = coop(gov, "ledger.DisputeResolved", {**ruling, "proposal": p.id})
    gov.run(resolved)
    record = gov.c.state.dispute(gov.s.coop, dispute)
    assert record is not None
    assert (record.status, record.outcome, record.refund) == (
        DisputeStatus.RESOLVED, "partial-refund", 100,
    )  # fmt: skip
    executed(gov, p, resolved)
    # The settlement duty's entry and link follow, as for a mediator's ruling.
    back = {"from": gov.s.did("carol"), "to": gov.s.did("bob"), "amount": 100,
            "currency": "hours", "memo": "dispute"}  # fmt: skip
    entry = coop(gov, "ledger.EntryRecorded", {"transactions": [back]})
    gov.run(entry, coop(gov, "ledger.DisputeSettled", {"dispute": dispute, "entry": entry.id}))
    assert (gov.c.balance("bob"), gov.c.balance("carol")) == (-200, 200)


def test_a_ruling_that_moves_nothing_is_carried_out_once(gov: Gov) -> None:
    dispute = escalated_dispute(gov)
    action = {"kind": "escalated-dispute", "dispute": dispute, "ruling": "dismissed"}
    p = accepted(gov, action)
    ruled = coop(gov, "ledger.DisputeResolved", {"dispute": dispute, "outcome": "dismissed",
                                                 "proposal": p.id})  # fmt: skip
    gov.run(ruled)
    executed(gov, p, ruled)
    twice = {"dispute": dispute, "outcome": "dismissed", "proposal": p.id}
    assert gov.c.refused(coop(gov, "ledger.DisputeResolved", twice, ok=False)) == (
        "already-executed"
    )


def test_a_link_names_an_accepted_proposal_not_carried_out_of_this_very_effect(
    gov: Gov,
) -> None:
    erin = gov.s.did("erin")
    admit = {"member": erin, "roles": ["steward"]}
    unknown = coop(gov, "coop.MemberAdmitted", {**admit, "proposal": "ab" * 32}, ok=False)
    assert gov.c.refused(unknown) == "unknown-proposal"
    p = gov.propose(action={"kind": "add-member", **admit})
    gov.run(p)
    early = coop(gov, "coop.MemberAdmitted", {**admit, "proposal": p.id}, ok=False)
    assert gov.c.refused(early) == "not-accepted"
    gov.run(gov.vote("alice", p.id), gov.vote("bob", p.id))
    gov.run(gov.close(p.id))
    by_admin = gov.s.event(
        "alice", "coop.MemberAdmitted", {**admit, "proposal": p.id}, advance=False
    )
    assert gov.c.refused(by_admin) == "link-by-coop-only"
    roles = {"member": erin, "roles": ["admin"], "proposal": p.id}
    assert gov.c.refused(coop(gov, "coop.MemberAdmitted", roles, ok=False)) == ("proposal-mismatch")
    suspend = {"member": gov.s.did("bob"), "reason": "r", "proposal": p.id}
    assert gov.c.refused(coop(gov, "coop.MemberSuspended", suspend, ok=False)) == (
        "proposal-mismatch"
    )
    admitted = coop(gov, "coop.MemberAdmitted", {**admit, "proposal": p.id})
    gov.run(admitted)
    assert gov.c.member("erin").roles == ("steward",)
    assert gov.proposal(p.id).reverse == a.RemoveMember(member=erin, reason="overturned on appeal")
    forged = {"proposal": p.id, "effects": [p.id]}
    assert gov.c.refused(gov.event("coop", "ProposalExecuted", forged, advance=False)) == (
        "invalid-execution"  # listed effects are the one the link recorded
    )
    failed = {"proposal": p.id, "failed": "already-member"}
    assert gov.c.refused(gov.event("coop", "ProposalExecuted", failed, advance=False)) == (
        "invalid-execution"  # an effect carried it out: it did not fail
    )
    executed(gov, p, admitted)
    after = coop(gov, "coop.MemberSuspended", {"member": erin, "reason": "r",
                                               "proposal": p.id}, ok=False)  # fmt: skip
    assert gov.c.refused(after) == "already-executed"


def test_admins_and_the_coop_still_act_directly_without_a_link(gov: Gov) -> None:
    """Membership, freezes and policy keep their own rules after the first proposal:
    a link is checked when present, never required (domains and the charter need one)."""
    accepted(gov, {"kind": "text"})
    gov.run(gov.s.event("alice", "coop.MemberSuspended", {"member": gov.s.did("bob"),
                                                          "reason": "r"}))  # fmt: skip
    gov.run(gov.s.event("alice", "coop.MemberReinstated", {"member": gov.s.did("bob")}))
    gov.run(coop(gov, "ledger.AccountFrozen", {"member": gov.s.did("carol"), "reason": "r"}))
    gov.run(coop(gov, "ledger.AccountUnfrozen", {"member": gov.s.did("carol")}))


def test_freeze_unfreeze_and_reinstate_link_back_with_their_reverse(gov: Gov) -> None:
    dan = gov.s.did("dan")
    freeze = {"member": dan, "reason": "audit", "until": gov.s.ts + 10 * 86_400_000}
    p = accepted(gov, {"kind": "freeze", **freeze})
    loose = {**freeze, "until": None, "proposal": p.id}
    assert gov.c.refused(coop(gov, "ledger.AccountFrozen", loose, ok=False)) == (
        "proposal-mismatch"
    )
    frozen = coop(gov, "ledger.AccountFrozen", {**freeze, "proposal": p.id})
    gov.run(frozen)
    executed(gov, p, frozen)
    assert gov.proposal(p.id).reverse == a.Unfreeze(member=dan)
    q = accepted(gov, {"kind": "unfreeze", "member": dan})
    unfrozen = coop(gov, "ledger.AccountUnfrozen", {"member": dan, "proposal": q.id})
    gov.run(unfrozen)
    executed(gov, q, unfrozen)
    assert gov.proposal(q.id).reverse == a.Freeze(
        member=dan, reason="audit", until=freeze["until"]
    )  # the freeze as it stood before
    r = accepted(gov, {"kind": "remove-member", "member": dan, "reason": "gone"})
    suspended = coop(gov, "coop.MemberSuspended", {"member": dan, "reason": "gone",
                                                   "proposal": r.id})  # fmt: skip
    gov.run(suspended)
    executed(gov, r, suspended)
    assert gov.proposal(r.id).reverse == a.ReinstateMember(member=dan)
    back = accepted(gov, {"kind": "reinstate-member", "member": dan})
    reinstated = coop(gov, "coop.MemberReinstated", {"member": dan, "proposal": back.id})
    gov.run(reinstated)
    executed(gov, back, reinstated)
    assert gov.c.member("dan").status == "active"


def test_a_budget_is_the_one_treasury_entry_its_memo_names(gov: Gov) -> None:
    action = {"kind": "allocate-budget", "to": gov.s.did("bob"), "amount": 500,
              "currency": "hours", "purpose": "tools"}  # fmt: skip
    p = accepted(gov, action)
    budget = a.AllocateBudget(to=gov.s.did("bob"), amount=500, currency="hours", purpose="tools")
    want = budget_transaction(budget, gov.s.coop_did, p.id)
    assert want["memo"] == f"proposal {p.id}: tools"
    wrong = coop(gov, "ledger.EntryRecorded", {"transactions": [{**want, "amount": 499}]})
    gov.run(wrong)
    bad = {"proposal": p.id, "effects": [wrong.id]}
    assert gov.c.refused(gov.event("coop", "ProposalExecuted", bad, advance=False)) == (
        "invalid-execution"
    )
    entry = coop(gov, "ledger.EntryRecorded", {"transactions": [want]})
    gov.run(entry)
    executed(gov, p, entry)
    assert gov.proposal(p.id).reverse == a.ReclaimBudget(
        member=gov.s.did("bob"), amount=500, currency="hours", purpose="tools"
    )


def test_linked_proposals_with_their_reverse_survive_the_stores_encoding(gov: Gov) -> None:
    dan = gov.s.did("dan")
    p = accepted(gov, {"kind": "freeze", "member": dan, "reason": "audit"})
    frozen = coop(gov, "ledger.AccountFrozen", {"member": dan, "reason": "audit",
                                                "proposal": p.id})  # fmt: skip
    gov.run(frozen)
    executed(gov, p, frozen)
    record = gov.proposal(p.id)
    assert (record.carried, record.reverse) == ((frozen.id,), a.Unfreeze(member=dan))
    row = encode_record(gov.s.coop, record)
    assert decode_record(row.kind, row.value) == record
