"""The governance duties on a real store: members decide by vote, the coop's key closes the
proposal when its time has passed and carries the decision out exactly once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
from support.coops import STORY_NOW, CoopScript

from icn.application.append import AppendEvents
from icn.application.authoring import EventAuthor
from icn.application.coop_duties import CoopDuties
from icn.application.governance_duties import GovernanceDuties
from icn.application.trust_epochs import CommittedState
from icn.domain.events.envelope import Event, inspect, sign_event
from icn.domain.governance import bodies as gb
from icn.domain.governance import state
from icn.domain.governance.closing import recount
from icn.domain.governance.links import kind_of
from icn.domain.governance.records import Execution, ProposalRecord, ProposalState
from icn.domain.trust import state as trust_state
from icn.infrastructure.store.database import parse_database_url
from icn.infrastructure.store.event_store import SqlEventStore

DAY = 86_400_000


class Node:
    """One node keeping the coop's key, its trusted clock set by the test."""

    def __init__(self, store: SqlEventStore) -> None:
        self.store = store
        self.now = STORY_NOW
        self.s = CoopScript("demo")
        self.append = AppendEvents(store, lambda: self.now)
        self.gov = GovernanceDuties(store, self.append, lambda: self.now)
        author = EventAuthor(store, self.append, lambda: self.now)
        self.duties = CoopDuties(store, author, self._key, None, self.gov)
        self.write(self.s.found({"alice": ["admin"], "bob": [], "carol": []}))

    def _key(self, coop: str) -> Any:
        return self.s.coop_key if coop == "demo" else None

    def write(self, *events: Event) -> None:
        outcomes = self.append.append_inspected([inspect(e.wire_bytes()) for e in events])
        assert [o.verdict for o in outcomes] == ["ok"] * len(events), outcomes

    def decide(self, action: dict[str, Any], voters: list[str], **more: Any) -> ProposalRecord:
        """Propose, vote yes, let the period pass, run the duty round; the proposal after it."""
        body = {
            "domain": "root",
            "title": f"{action['kind']} by vote",
            "text": "Decided together.",
            "action": action,
            "closes_at": self.now + DAY,
            **more,
        }
        proposal = self.s.event("alice", gb.PROPOSAL_SUBMITTED, body)
        self.write(proposal)
        for who in voters:
            self.write(self.s.event(who, gb.VOTE_CAST, {"proposal": proposal.id, "choice": "yes"}))
        assert self.duties.run(self.now) == []  # not due yet: nothing is closed early
        self.now += DAY + 5
        done = self.duties.run(self.now)
        assert self.duties.failures == []
        assert done[0].type == gb.PROPOSAL_CLOSED
        assert done[0].ts == body["closes_at"]  # from the trigger, not from the node's clock
        assert self.duties.run(self.now) == []  # once: the round after does nothing
        p = self.proposal(proposal.id)
        assert (p.state, p.execution) == (ProposalState.ACCEPTED, Execution.EXECUTED)
        assert list(p.effects) == [e.id for e in done[1:-1]]
        assert done[-1].type == gb.PROPOSAL_EXECUTED
        linked = [e.body.get("proposal") for e in done[1:-1] if e.type != "ledger.EntryRecorded"]
        if action["kind"] not in ("allocate-budget", "reclaim-budget"):  # an entry: its memo
            assert linked == [proposal.id]  # the effect names the proposal it carries out
        return p

    def proposal(self, proposal_id: str) -> ProposalRecord:
        p = state.proposal(CommittedState(self.store), "demo", proposal_id)
        assert p is not None
        return p


def test_a_member_admitted_a_budget_paid_and_an_account_frozen_by_vote(
    store: SqlEventStore,
) -> None:
    node = Node(store)
    s, view = node.s, CommittedState(store)
    dave = s.did("dave")

    admitted = node.decide({"kind": "add-member", "member": dave}, ["alice", "bob", "carol"])
    member = view.member("demo", dave)
    assert member is not None and member.status == "active"

    budget = {
        "kind": "allocate-budget",
        "to": s.did("bob"),
        "amount": 500,
        "currency": "hours",
        "purpose": "tools for the workshop",
    }
    paid = node.decide(budget, ["alice", "bob", "dave"])
    coop = view.coop("demo")
    assert coop is not None
    bob = view.account("demo", s.did("bob"), "hours")
    treasury = view.account("demo", coop.did, "hours")
    assert bob is not None and bob.balance == 500
    assert treasury is not None and treasury.balance == -500

    freeze = {"kind": "freeze", "member": s.did("carol"), "reason": "unpaid dues"}
    frozen = node.decide(freeze, ["alice", "bob", "dave"])
    carol = view.member("demo", s.did("carol"))
    assert carol is not None and carol.frozen

    for p in (admitted, paid, frozen):  # every stored close is what the log recounts
        t = recount(view, coop, p)
        assert (t.outcome, t.counted, t.ballots_digest) == (p.state, p.counted, p.ballots_digest)
    assert node.gov.due_closes("demo") == node.gov.due_executions("demo") == []


def test_an_effect_refused_is_recorded_as_failed_once(store: SqlEventStore) -> None:
    """Two proposals to admit the same person: the first to close admits, the second's
    effect is refused (``already-member``) and its execution records that code, no effects."""
    node = Node(store)
    s = node.s
    closes_at = node.now + DAY
    action = {"kind": "add-member", "member": s.did("dave")}
    ids = []
    for title in ("Admit dave", "Admit dave, again"):
        body = {"domain": "root", "title": title, "text": "", "action": action,
                "closes_at": closes_at}  # fmt: skip
        proposal = s.event("alice", gb.PROPOSAL_SUBMITTED, body)
        node.write(proposal, *(s.event(w, gb.VOTE_CAST, {"proposal": proposal.id,
                   "choice": "yes"}) for w in ("alice", "bob")))  # fmt: skip
        ids.append(proposal.id)
    node.now = closes_at + 1
    done = node.duties.run(node.now)
    assert node.duties.failures == [] and node.duties.run(node.now) == []
    executions = [e.body for e in done if e.type == gb.PROPOSAL_EXECUTED]
    assert sorted(e.get("failed") or "" for e in executions) == ["", "already-member"]
    outcomes = {node.proposal(i).execution for i in ids}
    assert outcomes == {Execution.EXECUTED, Execution.FAILED}
    failed = next(node.proposal(i) for i in ids if node.proposal(i).execution == "failed")
    assert (failed.failed, failed.effects) == ("already-member", ())


def test_two_nodes_keeping_the_coop_key_sign_the_same_close_and_execution(
    store: SqlEventStore, tmp_path: Path
) -> None:
    """The same log on two nodes, the duty run on each: the same event ids, so either node's
    events arriving at the other are duplicates and the coop chain does not fork."""
    (tmp_path / "b").mkdir()
    other = SqlEventStore(parse_database_url(None, tmp_path / "b"))
    other.create_tables()
    try:
        nodes = [Node(store), Node(other)]
        signed = []
        for node in nodes:
            s = node.s
            body = {"domain": "root", "title": "Admit dave", "text": "",
                    "action": {"kind": "add-member", "member": s.did("dave")},
                    "closes_at": node.now + DAY}  # fmt: skip
            proposal = s.event("alice", gb.PROPOSAL_SUBMITTED, body)
            node.write(proposal, *(s.event(w, gb.VOTE_CAST, {"proposal": proposal.id,
                       "choice": "yes"}) for w in ("alice", "bob")))  # fmt: skip
            node.now += DAY + 1 + len(signed) * 60_000  # the nodes' clocks disagree
            signed.append(node.duties.run(node.now))
        assert [e.id for e in signed[0]] == [e.id for e in signed[1]] and len(signed[0]) == 3
        again = nodes[0].append.append([e.wire_bytes() for e in signed[1]])
        assert [o.verdict for o in again] == ["duplicate"] * 3
    finally:
        other.close()


def test_trust_revoked_pretrusted_set_and_an_escalated_dispute_ruled_by_vote(
    store: SqlEventStore,
) -> None:
    """The actions that carry out through other capabilities' events: a revocation by the
    coop's DID, a policy change of the pre-trusted set, and a dispute's resolution, which the
    settlement duty then carries out in the next round."""
    node = Node(store)
    s, view = node.s, CommittedState(store)
    vouch = {"subject": s.did("bob"), "context": "general", "score_ppm": 800_000}
    made = s.event("carol", "trust.AttestationRecorded", vouch)
    node.write(made)
    revoke = {"kind": "revoke-trust", "attestation": made.id, "reason": "a ring"}
    node.decide(revoke, ["alice", "bob"])
    live = trust_state.attestation(view, "demo", "general", s.did("carol"), s.did("bob"))
    assert live is not None and live.revoked

    node.decide({"kind": "set-pretrusted", "pretrusted": [s.did("alice")]}, ["alice", "bob"])
    coop = view.coop("demo")
    assert coop is not None and coop.policy.trust.pretrusted == [s.did("alice")]

    paid = s.pay("bob", "carol", 300)
    filed = s.event("bob", "ledger.DisputeFiled", {"entry": paid.id, "reason": "not done"})
    node.write(paid, filed)
    node.write(s.event("alice", "ledger.MediatorAssigned",
                       {"dispute": filed.id, "mediator": s.did("alice")}))  # fmt: skip
    node.write(s.event("alice", "ledger.DisputeResolved",
                       {"dispute": filed.id, "outcome": "escalated"}))  # fmt: skip
    action = {"kind": "escalated-dispute", "dispute": filed.id, "ruling": "reversed"}
    body = {"domain": "root", "title": "Rule on it", "text": "", "action": action,
            "closes_at": node.now + DAY}  # fmt: skip
    proposal = s.event("alice", gb.PROPOSAL_SUBMITTED, body)
    node.write(proposal, *(s.event(w, gb.VOTE_CAST, {"proposal": proposal.id,
               "choice": "yes"}) for w in ("alice", "carol")))  # fmt: skip
    node.now += DAY + 5
    ruled = node.duties.run(node.now)
    assert [e.type for e in ruled] == [
        gb.PROPOSAL_CLOSED,
        "ledger.DisputeResolved",
        gb.PROPOSAL_EXECUTED,
    ]
    assert ruled[1].body["proposal"] == proposal.id
    settled = node.duties.run(node.now)  # the settlement duty, as after a mediator's ruling
    assert [e.type for e in settled] == ["ledger.EntryRecorded", "ledger.DisputeSettled"]
    assert node.duties.failures == [] and node.duties.run(node.now) == []
    dispute = view.dispute("demo", filed.id)
    assert dispute is not None and (dispute.status, dispute.outcome) == ("settled", "reversed")
    bob = view.account("demo", s.did("bob"), "hours")
    assert bob is not None and bob.balance == 0


def test_an_appeal_overturns_an_admission_and_a_budget_with_their_reverses(
    store: SqlEventStore,
) -> None:
    """Each decision's reverse was recorded when it was carried out; an appeal's proposal
    carrying it is voted and the duty executes it like any action, linked to that proposal."""
    node = Node(store)
    s, view = node.s, CommittedState(store)
    dave = s.did("dave")
    admitted = node.decide({"kind": "add-member", "member": dave}, ["alice", "bob"])
    budget = {"kind": "allocate-budget", "to": s.did("bob"), "amount": 400,
              "currency": "hours", "purpose": "a lathe"}  # fmt: skip
    paid = node.decide(budget, ["alice", "bob", "carol"])
    for p in (admitted, paid):
        filed = s.event("carol", gb.APPEAL_FILED, {"proposal": p.id, "grounds": "not told"})
        node.write(filed)
        assert p.reverse is not None
        reverse = {"kind": kind_of(p.reverse), **_plain_action(p.reverse)}
        overturn = node.decide(reverse, ["alice", "bob", "carol"], appeal=filed.id)
        record = state.appeal(view, "demo", filed.id)
        assert record is not None and (record.resolution, record.outcome) == (
            overturn.id, "overturned",
        )  # fmt: skip
    member = view.member("demo", dave)
    assert member is not None and member.status == "suspended"
    bob = view.account("demo", s.did("bob"), "hours")
    assert bob is not None and bob.balance == 0


def _plain_action(action: Any) -> dict[str, Any]:
    raw = msgspec.to_builtins(action)
    assert isinstance(raw, dict)
    raw.pop("kind", None)
    return raw


def test_an_effect_in_the_log_without_its_execution_is_listed_not_signed_again(
    store: SqlEventStore,
) -> None:
    """Another holder of the key carried the proposal out but stopped before the execution:
    the duty records that effect (a second one would be refused already-executed)."""
    node = Node(store)
    s = node.s
    dave = s.did("dave")
    body = {"domain": "root", "title": "Admit dave", "text": "", "closes_at": node.now + DAY,
            "action": {"kind": "add-member", "member": dave}}  # fmt: skip
    proposal = s.event("alice", gb.PROPOSAL_SUBMITTED, body)
    node.write(proposal, *(s.event(w, gb.VOTE_CAST, {"proposal": proposal.id,
               "choice": "yes"}) for w in ("alice", "bob")))  # fmt: skip
    node.now += DAY + 5
    node.gov.close("demo", proposal.id, s.coop_key)
    head = store.head("demo", s.coop_did)
    assert head is not None
    admitted = {"member": dave, "roles": [], "proposal": proposal.id}
    effect = sign_event(s.coop_key, coop="demo", seq=head.seq + 1, prev=head.id, ts=head.ts,
                        type="coop.MemberAdmitted", body=admitted)  # fmt: skip
    node.write(effect)
    done = node.duties.run(node.now)
    assert node.duties.failures == []
    assert [(e.type, e.body.get("effects")) for e in done] == [(gb.PROPOSAL_EXECUTED, [effect.id])]
    p = node.proposal(proposal.id)
    assert (p.execution, p.effects) == (Execution.EXECUTED, (effect.id,))
    assert node.duties.run(node.now) == []
