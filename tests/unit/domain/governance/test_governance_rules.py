"""The governance rules as pure functions: each refusal by its code, and the paths that pass."""

from __future__ import annotations

from typing import Any

import pytest

from icn.application.coop_view import decode_record, encode_record
from icn.domain.governance import state
from icn.domain.governance.eligibility import trust_class
from icn.domain.governance.records import ProposalState
from icn.domain.governance.tally import commitment_of
from icn.domain.registry import RECORD_TYPES
from icn.domain.trust.classes import TrustClass
from icn.domain.trust.rules import standing_at

from .story import DAY, Gov

SALT = "pepper-and-salt-0"


def define(gov: Gov, domain: str, **rules: Any) -> None:
    gov.run(gov.event("coop", "DomainDefined", {"domain": domain, "rules": rules}))


def test_a_proposal_is_voted_closed_once_and_executed_once(gov: Gov) -> None:
    p = gov.propose("bob")
    gov.run(p, gov.vote("alice", p.id), gov.vote("bob", p.id), gov.vote("carol", p.id, "no"))
    gov.run(gov.vote("carol", p.id, "yes", reason="convinced"))  # a later vote replaces it
    assert gov.c.refused(gov.close(p.id, counted=2)) == "tally-mismatch"
    assert gov.c.refused(gov.close(p.id, who="alice")) == "not-authorized"
    close = gov.close(p.id)
    assert close.body["counts"]["yes"] == 3 and close.body["eligible"] == 4
    gov.run(close)
    assert gov.proposal(p.id).state == ProposalState.ACCEPTED
    assert gov.c.refused(gov.close(p.id)) == "already-closed"
    done = gov.event("coop", "ProposalExecuted", {"proposal": p.id})
    gov.run(done)
    assert gov.proposal(p.id).execution == "executed"
    again = gov.event("coop", "ProposalExecuted", {"proposal": p.id}, advance=False)
    assert gov.c.refused(again) == "already-executed"


def test_a_close_before_its_time_or_of_a_forged_tally_is_refused(gov: Gov) -> None:
    p = gov.propose()
    gov.run(p, gov.vote("alice", p.id))
    due = gov.close(p.id, proposal=p.id)  # as it will be, not advancing the chain
    early = gov.event("coop", "ProposalClosed", due.body, ts=gov.s.ts + 1, advance=False)
    assert gov.c.refused(early) == "tally-not-due"
    forged = gov.close(p.id, outcome="accepted")  # 1 of 4 voted: no quorum
    assert gov.c.refused(forged) == "tally-mismatch"
    assert gov.c.refused(gov.close(p.id, ballots_digest="00" * 32)) == "tally-mismatch"
    gov.run(gov.close(p.id))
    assert gov.proposal(p.id).state == ProposalState.NO_QUORUM


@pytest.mark.parametrize(
    ("who", "change", "code"),
    [
        ("zoe", {}, "not-a-member"),
        ("alice", {"proposal": "ab" * 32}, "unknown-proposal"),
        ("alice", {"choice": "block"}, "invalid-vote"),  # majority domain
        ("alice", {"credits": 4}, "invalid-vote"),  # not quadratic
        ("alice", {"choice": "maybe"}, "invalid-body"),
        ("alice", {"extra": 1}, "invalid-body"),
        ("alice", {"reason": "x" * 1025}, "invalid-body"),
    ],
)
def test_bad_votes_are_refused_with_a_code(
    gov: Gov, who: str, change: dict[str, Any], code: str
) -> None:
    p = gov.propose()
    gov.run(p)
    vote = gov.vote(who, p.id, advance=False)
    body = {**vote.body, **change}
    assert gov.c.refused(gov.event(who, "VoteCast", body, advance=False)) == code


def test_votes_after_closes_at_before_opens_at_or_on_a_withdrawn_proposal_are_refused(
    gov: Gov,
) -> None:
    later = gov.propose(opens_at=gov.s.ts + 1 + DAY, period=DAY)
    gov.run(later)
    assert gov.c.refused(gov.vote("bob", later.id, advance=False)) == "proposal-not-open"
    p = gov.propose()
    gov.run(p)
    closes_at = gov.proposal(p.id).closes_at
    late = gov.vote("bob", p.id, ts=closes_at, advance=False)
    assert gov.c.refused(late) == "proposal-closed"
    assert gov.c.refused(
        gov.event("bob", "ProposalWithdrawn", {"proposal": p.id}, advance=False)
    ) == ("not-proposal-author")
    gov.run(gov.event("alice", "ProposalWithdrawn", {"proposal": p.id}))
    assert gov.c.refused(gov.vote("bob", p.id, advance=False)) == "proposal-withdrawn"
    assert gov.c.refused(gov.close(p.id)) == "already-closed"


@pytest.mark.parametrize(
    ("who", "change", "code"),
    [
        ("zoe", {}, "not-a-member"),
        ("alice", {"domain": "finance"}, "unknown-domain"),
        ("alice", {"closes_at": 5}, "invalid-voting-period"),
        ("alice", {"period": DAY - 1}, "invalid-voting-period"),
        ("alice", {"period": 30 * DAY + 1}, "invalid-voting-period"),
        ("alice", {"opens_at": "far"}, "invalid-body"),
        ("alice", {"action": {"kind": "launch-rocket"}}, "invalid-body"),
        ("alice", {"action": {"kind": "allocate-budget", "to": "bob", "amount": 5,
                              "currency": "euros", "purpose": "tools"}}, "unknown-currency"),
        ("alice", {"action": {"kind": "add-member", "member": "bob"}}, "already-member"),
        ("alice", {"action": {"kind": "freeze", "member": "zoe", "reason": "x"}}, "not-a-member"),
        ("alice", {"action": {"kind": "change-policy", "policy": {"credit": {}}}},
         "invalid-policy"),
        ("alice", {"action": {"kind": "change-policy",
                              "policy": {"credit": {}, "colour": "red"}}}, "invalid-body"),
        ("alice", {"action": {"kind": "change-domain", "domain": "finance",
                              "rules": {"method": "supermajority"}}}, "invalid-domain"),
        ("alice", {"action": {"kind": "revoke-trust", "attestation": "ab" * 32,
                              "reason": "x"}}, "unknown-attestation"),
        ("alice", {"action": {"kind": "escalated-dispute", "dispute": "ab" * 32,
                              "ruling": "reversed"}}, "unknown-dispute"),
        ("alice", {"appeal": "ab" * 32}, "unknown-appeal"),
    ],
)  # fmt: skip
def test_bad_proposals_are_refused_with_a_code(
    gov: Gov, who: str, change: dict[str, Any], code: str
) -> None:
    for key in ("to", "member"):
        action = change.get("action", {})
        if key in action:
            action[key] = gov.s.did(action[key])
    period = change.pop("period", DAY)
    assert gov.c.refused(gov.propose(who, period=period, advance=False, **change)) == code


def test_roles_and_trust_class_decide_who_proposes_votes_and_vetoes(gov: Gov) -> None:
    define(gov, "tools", proposer_roles=["steward"], voter_roles=["steward", "admin"],
           veto_roles=["admin"])  # fmt: skip
    define(gov, "elders", min_class_vote="known", min_class_propose="partner")
    assert gov.c.refused(gov.propose("bob", domain="tools", advance=False)) == "not-a-proposer"
    p = gov.propose("dan", domain="tools")
    gov.run(p, gov.vote("alice", p.id))
    assert gov.c.refused(gov.vote("bob", p.id, advance=False)) == "not-a-voter"
    veto = {"proposal": p.id, "reason": "not now"}
    assert gov.c.refused(gov.event("dan", "ProposalVetoed", veto, advance=False)) == (
        "no-veto-right"
    )
    gov.run(gov.event("alice", "ProposalVetoed", veto))
    assert gov.proposal(p.id).state == ProposalState.VETOED
    assert gov.c.refused(gov.vote("dan", p.id, advance=False)) == "proposal-closed"

    assert gov.c.refused(gov.propose("alice", domain="elders", advance=False)) == (
        "not-a-proposer"
    )  # nobody has a governance standing before the first epoch: Isolated


def test_domains_are_defined_by_the_coop_once_with_rules_that_hold(gov: Gov) -> None:
    body: dict[str, Any] = {"domain": "root", "rules": {}}
    assert gov.c.refused(gov.event("coop", "DomainDefined", body, advance=False)) == (
        "domain-exists"
    )
    body["domain"] = "finance"
    assert gov.c.refused(gov.event("alice", "DomainDefined", body, advance=False)) == (
        "not-authorized"
    )
    bad = {"domain": "finance", "rules": {"min_period_ms": 10, "max_period_ms": 5}}
    assert gov.c.refused(gov.event("coop", "DomainDefined", bad, advance=False)) == (
        "invalid-domain"
    )
    linked = {**body, "proposal": "ab" * 32}
    assert gov.c.refused(gov.event("coop", "DomainDefined", linked, advance=False)) == (
        "unknown-proposal"
    )
    gov.run(gov.event("coop", "DomainDefined", body))
    change = {"domain": "finance", "rules": {"method": "unanimous"}}
    gov.run(gov.event("coop", "DomainChanged", change))
    coop = gov.c.state.coop(gov.s.coop)
    assert coop is not None
    finance = state.domain(gov.c.state, coop, "finance")
    assert finance is not None and finance.version == 2 and finance.rules.method == "unanimous"
    missing = {"domain": "legal", "rules": {}}
    assert gov.c.refused(gov.event("coop", "DomainChanged", missing, advance=False)) == (
        "unknown-domain"
    )


def test_sealed_ballots_commit_once_reveal_after_the_close_and_unrevealed_abstain(
    gov: Gov,
) -> None:
    define(gov, "secret", sealed=True, quorum_ppm=0)
    p = gov.propose(domain="secret")
    gov.run(p)
    assert gov.c.refused(gov.vote("bob", p.id, advance=False)) == "sealed-ballot"
    commit = {"proposal": p.id, "commitment": commitment_of("yes", None, SALT)}
    gov.run(gov.event("bob", "VoteCommitted", commit))
    assert gov.c.refused(gov.event("bob", "VoteCommitted", commit, advance=False)) == (
        "already-voted"
    )
    gov.run(gov.event("carol", "VoteCommitted", {**commit, "commitment": "00" * 32}))
    reveal = {"proposal": p.id, "choice": "yes", "salt": SALT}
    assert gov.c.refused(gov.event("bob", "VoteRevealed", reveal, advance=False)) == (
        "reveal-window"
    )
    closes_at = gov.proposal(p.id).closes_at
    wrong = {**reveal, "choice": "no"}
    assert gov.c.refused(gov.event("bob", "VoteRevealed", wrong, ts=closes_at, advance=False)) == (
        "reveal-mismatch"
    )
    assert gov.c.refused(gov.event("dan", "VoteRevealed", reveal, ts=closes_at, advance=False)) == (
        "no-commitment"
    )
    gov.run(gov.event("bob", "VoteRevealed", reveal, ts=closes_at))
    assert gov.c.refused(gov.event("bob", "VoteRevealed", reveal, advance=False)) == (
        "no-commitment"
    )
    close = gov.close(p.id)
    assert close.ts == closes_at + DAY  # after the reveal window
    assert close.body["counts"]["yes"] == 1 and close.body["counts"]["abstain"] == 1
    gov.run(close)
    assert gov.proposal(p.id).state == ProposalState.ACCEPTED


def test_a_delegation_cycle_is_refused_and_a_delegate_votes_for_their_delegators(
    gov: Gov,
) -> None:
    def delegate(who: str, to: str | None, **kw: Any) -> Any:
        body = {"domain": "root", "to": gov.s.did(to) if to else None}
        return gov.event(who, "VoteDelegated", body, **kw)

    gov.run(delegate("bob", "carol"), delegate("carol", "alice"))
    assert gov.c.refused(delegate("alice", "bob", advance=False)) == "delegation-cycle"
    assert gov.c.refused(delegate("alice", "alice", advance=False)) == "delegation-cycle"
    assert gov.c.refused(delegate("alice", "zoe", advance=False)) == "not-a-member"
    p = gov.propose("dan")
    gov.run(p, gov.vote("alice", p.id, "no"), gov.vote("carol", p.id, "yes"))
    close = gov.close(p.id)
    # bob follows carol (who voted yes herself); dan has no ballot and no delegate.
    assert close.body["counts"]["yes"] == 2 and close.body["counts"]["no"] == 1
    assert close.body["counted"] == 3
    gov.run(close, delegate("bob", None))
    assert state.delegation(gov.c.state, gov.s.coop, "root", gov.s.did("bob")) is None


def test_executions_record_effects_or_a_failure_and_never_twice(gov: Gov) -> None:
    rejected = gov.propose()
    gov.run(rejected, gov.vote("alice", rejected.id, "no"), gov.vote("bob", rejected.id, "no"))
    p = gov.propose(action={"kind": "freeze", "member": gov.s.did("dan"), "reason": "audit"})
    gov.run(p, gov.vote("alice", p.id), gov.vote("bob", p.id))
    gov.run(gov.close(rejected.id), gov.close(p.id))
    no = gov.event("coop", "ProposalExecuted", {"proposal": rejected.id}, advance=False)
    assert gov.c.refused(no) == "not-accepted"
    for bad in (
        {"proposal": p.id},  # a freeze has effects
        {"proposal": p.id, "effects": ["ab" * 32]},  # not in the log
        {"proposal": p.id, "failed": "no-such-code"},
        {"proposal": p.id, "failed": "account-frozen", "effects": [p.id]},
    ):
        refused = gov.c.refused(gov.event("coop", "ProposalExecuted", bad, advance=False))
        assert refused == "invalid-execution", bad
    by_member = gov.event("alice", "ProposalExecuted", {"proposal": p.id}, advance=False)
    assert gov.c.refused(by_member) == "not-authorized"
    gov.run(gov.event("coop", "ProposalExecuted", {"proposal": p.id, "failed": "not-a-member"}))
    assert (gov.proposal(p.id).execution, gov.proposal(p.id).failed) == ("failed", "not-a-member")


def test_appeals_come_within_the_window_and_a_root_proposal_resolves_each_once(
    gov: Gov,
) -> None:
    define(gov, "finance")
    p = gov.propose()
    gov.run(p, gov.vote("alice", p.id), gov.vote("bob", p.id))
    appeal = {"proposal": p.id, "grounds": "we were not told"}
    assert gov.c.refused(gov.event("bob", "AppealFiled", appeal, advance=False)) == (
        "not-appealable"
    )
    gov.run(gov.close(p.id))
    filed = gov.event("carol", "AppealFiled", appeal)
    gov.run(filed)
    assert gov.proposal(p.id).appeals == (filed.id,)
    assert gov.c.refused(gov.propose(domain="finance", appeal=filed.id, advance=False)) == (
        "invalid-action"
    )
    first = gov.propose(appeal=filed.id)
    gov.run(first, gov.event("alice", "ProposalWithdrawn", {"proposal": first.id}))
    resolving = gov.propose(appeal=filed.id)  # the withdrawn one resolved nothing
    gov.run(resolving)
    assert gov.c.refused(gov.propose(appeal=filed.id, advance=False)) == "appeal-resolved"
    gov.run(gov.vote("bob", resolving.id, "no"), gov.vote("carol", resolving.id, "no"))
    gov.run(gov.close(resolving.id))
    resolved = state.appeal(gov.c.state, gov.s.coop, filed.id)
    assert resolved is not None
    assert (resolved.resolution, resolved.outcome) == (resolving.id, "upheld")
    too_late = gov.proposal(p.id).appeal_until()
    late = gov.event("dan", "AppealFiled", appeal, ts=too_late, advance=False)
    assert gov.c.refused(late) == "appeal-window-closed"


def test_the_charter_keeps_every_version_each_ordered_by_its_proposal(gov: Gov) -> None:
    versions = []
    for text in ("We share.", "We share and care."):
        action = {"kind": "amend-charter", "section": "purpose", "text": text, "rationale": "r"}
        p = gov.propose(action=action)
        gov.run(p, gov.vote("alice", p.id), gov.vote("bob", p.id))
        gov.run(gov.close(p.id))
        body = {"proposal": p.id, "section": "purpose", "text": text, "rationale": "r"}
        forged = {**body, "text": "We obey."}
        assert gov.c.refused(gov.event("coop", "CharterAmended", forged, advance=False)) == (
            "proposal-mismatch"
        )
        amended = gov.event("coop", "CharterAmended", body)
        gov.run(amended)
        assert gov.c.refused(gov.event("coop", "CharterAmended", body, advance=False)) == (
            "already-executed"
        )
        versions.append(text)
    charter = state.charter(gov.c.state, gov.s.coop, "purpose")
    assert [(v.version, v.text) for v in charter] == [(1, versions[0]), (2, versions[1])]


def test_every_record_a_story_writes_survives_the_stores_encoding(gov: Gov) -> None:
    """Proposals hold a tagged action and their rules: the stored bytes decode to the same."""
    action = {"kind": "allocate-budget", "to": gov.s.did("bob"), "amount": 5,
              "currency": "hours", "purpose": "tools"}  # fmt: skip
    p = gov.propose(action=action)
    gov.run(p, gov.vote("alice", p.id), gov.vote("bob", p.id))
    gov.run(gov.event("carol", "VoteDelegated", {"domain": "root", "to": gov.s.did("bob")}))
    gov.run(gov.close(p.id))
    written = list(gov.c.state.records.values())
    kinds = {r.kind for r in written}
    assert {"proposal", "ballot", "delegation"} <= kinds <= set(RECORD_TYPES)
    for record in written:
        row = encode_record(gov.s.coop, record)
        assert decode_record(row.kind, row.value) == record


def test_a_least_trust_class_reads_the_governance_standing_of_the_last_epoch(gov: Gov) -> None:
    define(gov, "elders", min_class_vote="known")
    p = gov.propose(domain="elders")
    gov.run(p)
    assert gov.c.refused(gov.vote("bob", p.id, advance=False)) == "not-a-voter"
    for truster in ("alice", "carol", "dan"):
        body = {"subject": gov.s.did("bob"), "context": "governance", "score_ppm": 900_000}
        gov.run(gov.s.event(truster, "trust.AttestationRecorded", body))
    coop = gov.c.state.coop(gov.s.coop)
    assert coop is not None
    now = gov.s.ts + 1
    standing = standing_at(gov.c.state, coop, "governance", now)
    epoch = {
        "context": "governance", "epoch": 1, "as_of": gov.c.state.log_size(gov.s.coop),
        "count": len(standing.members), "digest": standing.digest(),
    }  # fmt: skip
    gov.run(gov.s.event("coop", "trust.StandingPublished", epoch, ts=now))
    assert trust_class(gov.c.state, coop, gov.s.did("bob")) != TrustClass.ISOLATED
    gov.run(gov.vote("bob", p.id))


def test_after_the_first_proposal_only_an_accepted_proposal_changes_a_domain(gov: Gov) -> None:
    define(gov, "finance")  # setting up: the coop's DID alone
    rules = {"method": "supermajority", "threshold_ppm": 750_000}
    action = {"kind": "change-domain", "domain": "finance", "rules": rules}
    p = gov.propose(action=action)
    gov.run(p)
    change = {"domain": "finance", "rules": rules}
    alone = gov.event("coop", "DomainChanged", change, advance=False)
    assert gov.c.refused(alone) == "proposal-required"
    assert gov.c.refused(gov.event("coop", "DomainDefined", {"domain": "legal", "rules": {}},
                                   advance=False)) == "proposal-required"  # fmt: skip
    early = gov.event("coop", "DomainChanged", {**change, "proposal": p.id}, advance=False)
    assert gov.c.refused(early) == "not-accepted"  # not (yet)
    gov.run(gov.vote("alice", p.id), gov.vote("bob", p.id))
    gov.run(gov.close(p.id))
    other = {"domain": "finance", "rules": {"method": "unanimous"}, "proposal": p.id}
    assert gov.c.refused(gov.event("coop", "DomainChanged", other, advance=False)) == (
        "proposal-mismatch"
    )
    gov.run(gov.event("coop", "DomainChanged", {**change, "proposal": p.id}))
    coop = gov.c.state.coop(gov.s.coop)
    assert coop is not None
    finance = state.domain(gov.c.state, coop, "finance")
    assert finance is not None and finance.rules.threshold_ppm == 750_000
