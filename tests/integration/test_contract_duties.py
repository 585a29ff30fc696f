"""Contracts on a real store: deployed by vote, invoked by members, judged where they stand,
carried out by the coop's key exactly once, schedules run in trusted time; two nodes keeping
the coop's key sign the same events."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import msgspec
from support.compute_node import Node as KeyNode
from support.coops import CoopScript

from icn.application.coop_view import decode_stored
from icn.application.trust_epochs import CommittedState
from icn.domain.contract import bodies as cb
from icn.domain.contract.records import ContractRecord, InvocationRecord, PendingRecord
from icn.domain.contract.rules import pending_of
from icn.domain.events.envelope import Event, inspect
from icn.domain.governance import bodies as gb
from icn.domain.governance import state
from icn.infrastructure.store.contract_reads import SqlContractReads
from icn.infrastructure.store.database import parse_database_url
from icn.infrastructure.store.event_store import SqlEventStore
from icn.infrastructure.store.governance_reads import SqlGovernanceReads
from icn.infrastructure.store.read_models import ReadSide
from icn.projections import contract_views as views
from icn.projections import governance_views
from tests.conftest import REPO_ROOT

DAY = 86_400_000
EXAMPLES = REPO_ROOT / "examples" / "contracts"


def example(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((EXAMPLES / f"{name}.json").read_text())
    return doc


class Node(KeyNode):
    """One node keeping the coop's key, its trusted clock set by the test."""

    def __init__(self, store: SqlEventStore, script: CoopScript | None = None) -> None:
        super().__init__(store, script, governed=True)

    def write(self, *events: Event) -> list[Any]:
        outcomes = self.append.append_inspected([inspect(e.wire_bytes()) for e in events])
        return [(o.verdict, o.code) if o.verdict != "ok" else "ok" for o in outcomes]

    def ok(self, *events: Event) -> None:
        assert self.write(*events) == ["ok"] * len(events)

    def vote_deploy(self, doc: dict[str, Any]) -> list[Event]:
        """A proposal to deploy ``doc`` and everyone's yes."""
        action = {"kind": "deploy-contract", **{k: doc[k] for k in
                  ("name", "version", "code", "capabilities", "fuel_limit")}}  # fmt: skip
        body = {"domain": "root", "title": f"deploy {doc['name']}", "text": "",
                "action": action, "closes_at": self.now + DAY}  # fmt: skip
        proposal = self.s.event("alice", gb.PROPOSAL_SUBMITTED, body)
        votes = [
            self.s.event(who, gb.VOTE_CAST, {"proposal": proposal.id, "choice": "yes"})
            for who in ("alice", "bob", "carol")
        ]
        return [proposal, *votes]

    def deploy(self, doc: dict[str, Any]) -> list[Event]:
        """Propose the deploy, everyone votes yes, the period passes: the duty round's events."""
        self.ok(*self.vote_deploy(doc))
        self.now += DAY + 5
        return self.run()

    def invoke(self, who: str, contract: str, rule: str, args: dict[str, Any]) -> Event:
        return self.s.event(who, cb.INVOKED, {"contract": contract, "rule": rule, "args": args})

    def balance(self, who: str) -> int:
        did = self.s.coop_did if who == "coop" else self.s.did(who)
        account = CommittedState(self.store).account("demo", did, "hours")
        return account.balance if account is not None else 0

    def invocation(self, event: Event) -> InvocationRecord:
        found = CommittedState(self.store).record("demo", InvocationRecord.kind, event.id)
        assert isinstance(found, InvocationRecord)
        return found


def founded(store: SqlEventStore) -> Node:
    node = Node(store)
    node.ok(node.s.found({"alice": ["admin"], "bob": [], "carol": ["committee"]}))
    return node


def test_record_service_deployed_by_vote_invoked_and_carried_out_once(
    store: SqlEventStore,
) -> None:
    node = founded(store)
    done = node.deploy(example("timebank"))
    assert [e.type for e in done] == [gb.PROPOSAL_CLOSED, cb.DEPLOYED, gb.PROPOSAL_EXECUTED]
    record = CommittedState(store).record("demo", ContractRecord.kind, "timebank")
    assert isinstance(record, ContractRecord) and record.version == 1

    args = {"sender": node.s.did("alice"), "recipient": node.s.did("bob"), "hours": 3}
    call = node.invoke("alice", "timebank", "record_service", args)
    node.ok(call)
    assert node.invocation(call).state == "judged" and node.invocation(call).fuel == 49
    assert node.balance("alice") == 0  # nothing moves until the coop's DID signs it
    done = node.run()
    assert [e.type for e in done] == ["ledger.EntryRecorded", cb.EXECUTED]
    assert done[1].body == {"invocation": call.id, "effects": [done[0].id], "fuel": 49}
    assert done[0].ts == done[1].ts == max(call.ts, done[0].ts)  # dated by the trigger
    assert (node.balance("alice"), node.balance("bob")) == (-300, 300)
    assert node.invocation(call).state == "executed"
    assert node.run() == []  # once


def test_refusals_carry_the_contracts_codes(store: SqlEventStore) -> None:
    node = founded(store)
    node.deploy(example("timebank"))
    alice, bob = node.s.did("alice"), node.s.did("bob")

    def refused(who: str, args: dict[str, Any], contract: str = "timebank") -> Any:
        event = node.s.event(who, cb.INVOKED, {"contract": contract, "rule": "record_service",
                             "args": args}, advance=False)  # fmt: skip
        [outcome] = node.write(event)
        return outcome[1]

    assert refused("alice", {"sender": alice, "recipient": bob, "hours": 0}) == (
        "requirement-failed"
    )
    assert refused("bob", {"sender": alice, "recipient": bob, "hours": 1}) == ("requirement-failed")
    assert refused("alice", {"sender": alice, "recipient": bob, "hours": "1"}) == "invalid-args"
    assert refused("alice", {"sender": alice, "recipient": bob}, "nope") == "unknown-contract"
    # DEFAULT_POLICY: a limit of 100.00 hours; 24 hours a call, the fifth goes over, though
    # none of the four is executed yet: a judged invocation's transfers count as done
    for _ in range(4):
        node.ok(node.invoke("alice", "timebank", "record_service",
                            {"sender": alice, "recipient": bob, "hours": 24}))  # fmt: skip
    assert refused("alice", {"sender": alice, "recipient": bob, "hours": 24}) == (
        "credit-limit-exceeded"
    )
    pending = pending_of(CommittedState(store), "demo")
    assert len(pending.ids) == 4 and pending.reserved == {
        f"{alice} hours": -9_600, f"{bob} hours": 9_600
    }  # fmt: skip
    assert len(node.run()) == 4 * 2 and node.balance("alice") == -9_600
    assert pending_of(CommittedState(store), "demo") == PendingRecord()  # all carried out

    starving = copy.deepcopy(example("timebank"))
    starving.update(name="starving", fuel_limit=10)
    node.deploy(starving)
    assert refused("alice", {"sender": alice, "recipient": bob, "hours": 1}, "starving") == (
        "out-of-fuel"
    )

    greedy = copy.deepcopy(example("timebank"))
    greedy.update(name="greedy", capabilities=["read-ledger"])
    action = {"kind": "deploy-contract", **{k: greedy[k] for k in
              ("name", "version", "code", "capabilities", "fuel_limit")}}  # fmt: skip
    body = {"domain": "root", "title": "greedy", "text": "", "action": action,
            "closes_at": node.now + DAY}  # fmt: skip
    proposal = node.s.event("alice", gb.PROPOSAL_SUBMITTED, body, advance=False)
    assert node.write(proposal) == [("refused", "capability-denied")]


def test_an_execution_the_ledger_refuses_is_recorded_as_failed(store: SqlEventStore) -> None:
    """Judged within the limit; the payer spends the room before the duty runs: the execution
    records the ledger's code, nothing moves, and it is never tried again."""
    node = founded(store)
    node.deploy(example("timebank"))
    alice, bob = node.s.did("alice"), node.s.did("bob")
    call = node.invoke("alice", "timebank", "record_service",
                       {"sender": alice, "recipient": bob, "hours": 20})  # fmt: skip
    node.ok(call, node.s.pay("alice", "bob", 9_000))
    done = node.run()
    assert [e.type for e in done] == [cb.EXECUTED]
    assert done[0].body["failed"] == "credit-limit-exceeded"
    assert node.invocation(call).state == "failed"
    assert (node.balance("alice"), node.balance("bob")) == (-9_000, 9_000)
    assert node.run() == []


def test_monthly_dues_run_on_day_one_once(store: SqlEventStore) -> None:
    node = founded(store)
    node.deploy(example("dues"))
    assert node.run() == []  # 2026-01-03: the next period is 2026-02-01
    feb_1 = 1_769_904_000_000
    node.now = feb_1 + 1_000
    done = node.run()
    assert [e.type for e in done] == [cb.INVOKED, "ledger.EntryRecorded", cb.EXECUTED]
    assert done[0].body == {"contract": "dues", "rule": "charge", "args": {},
                            "schedule": 0, "period": feb_1}  # fmt: skip
    assert done[0].ts == feb_1
    assert [node.balance(w) for w in ("alice", "bob", "carol", "coop")] == [-50, -50, -50, 150]
    assert node.run() == []
    node.now = feb_1 + 40 * DAY  # March 1st and nothing more
    assert [e.type for e in node.run()] == [cb.INVOKED, "ledger.EntryRecorded", cb.EXECUTED]
    assert node.balance("coop") == 300


def test_two_nodes_keeping_the_coop_key_sign_the_same_events(
    store: SqlEventStore, tmp_path: Path
) -> None:
    """Same log, same trigger: each duty round of the second node is byte for byte the
    first's, though its clock reads a minute later."""
    a = founded(store)
    (tmp_path / "b").mkdir()
    other = SqlEventStore(parse_database_url(None, tmp_path / "b"))
    other.create_tables()
    try:
        b = Node(other, a.s)
        b.ok(*[e for e in (inspect_back(w.wire) for w in store.entries("demo"))])

        def both(*events: Event) -> None:
            a.ok(*events)
            b.ok(*events)

        def round_() -> list[Event]:
            b.now = a.now + 60_000  # its clock reads later: the trigger dates what it signs
            ours, theirs = a.run(), b.run()
            b.now = a.now  # written events are judged at one trusted time, as replicas are
            assert [e.wire_bytes() for e in ours] == [e.wire_bytes() for e in theirs]
            return ours

        both(*a.vote_deploy(example("timebank")))
        a.now = b.now = a.now + DAY + 5
        assert [e.type for e in round_()][1] == cb.DEPLOYED
        args = {"sender": a.s.did("alice"), "recipient": a.s.did("bob"), "hours": 2}
        both(a.invoke("alice", "timebank", "record_service", args))
        assert [e.type for e in round_()] == ["ledger.EntryRecorded", cb.EXECUTED]
        assert a.balance("bob") == b.balance("bob") == 200
        both(*a.vote_deploy(ASKER))  # a proposal a rule asks for: the same bytes too
        a.now = b.now = a.now + DAY + 5
        assert [e.type for e in round_()][1] == cb.DEPLOYED
        both(a.invoke("bob", "asker", "ask", {}))
        assert [e.type for e in round_()] == [gb.PROPOSAL_SUBMITTED, cb.EXECUTED]
    finally:
        other.close()


def inspect_back(wire: bytes) -> Event:
    """A stored event as the envelope decodes it."""
    return decode_stored(wire)


def test_a_refused_schedule_run_is_recorded_and_the_read_side_replays(
    store: SqlEventStore,
) -> None:
    """A schedule whose rule refuses is still run once per period (recorded ``refused`` with
    the code, nothing moved); the read models show every state and ``replay`` rebuilds them
    and the rules' records identically."""
    node = founded(store)
    closed = copy.deepcopy(example("dues"))
    closed["name"] = "closed"
    closed["code"]["rules"]["charge"]["body"][0]["cond"] = {"op": "bool", "value": False}
    node.deploy(closed)
    node.deploy(example("timebank"))
    feb_1 = 1_769_904_000_000
    node.now = feb_1 + 1_000
    done = node.run()
    assert [e.type for e in done] == [cb.INVOKED]  # refused by the contract: no execution
    assert node.invocation(done[0]).state == "refused"
    assert node.invocation(done[0]).code == "requirement-failed"
    assert node.run() == [] and node.balance("coop") == 0
    args = {"sender": node.s.did("alice"), "recipient": node.s.did("bob"), "hours": 1}
    node.ok(node.invoke("alice", "timebank", "record_service", args))
    node.run()

    side = ReadSide(store)
    side.catch_up("demo")
    reads = SqlContractReads(store.engine)
    listed = views.contracts(reads, "demo")
    assert [(c.name, c.invocations) for c in listed.contracts] == [("closed", 1), ("timebank", 1)]
    assert listed.contracts[0].schedules == [{"rule": "charge", "every": "month", "day": 1}]
    [run] = views.contract(reads, "demo", "closed").recent
    assert (run.state, run.code, run.schedule, run.caller) == (
        "refused",
        "requirement-failed",
        0,
        node.s.coop_did,
    )
    [paid] = views.contract(reads, "demo", "timebank").recent
    assert (paid.state, paid.fuel, len(paid.effects)) == ("executed", 49, 1)
    report = side.replay()
    assert report.identical, report.differences


def test_two_accepted_deploys_of_one_version_the_second_records_its_refusal(
    store: SqlEventStore,
) -> None:
    """Both proposals passed their checks when proposed; the first executed deploys version 1,
    the second's contract.Deployed is refused (contract-exists) and its execution records
    that code, once."""
    node = founded(store)
    votes = node.vote_deploy(example("timebank")) + node.vote_deploy(example("timebank"))
    node.ok(*votes)
    node.now += DAY + 5
    done = node.run()
    executions = [e.body for e in done if e.type == gb.PROPOSAL_EXECUTED]
    assert [("effects" in b, b.get("failed")) for b in executions] == [
        (True, None), (False, "contract-exists")
    ]  # fmt: skip
    assert [e.type for e in done].count(cb.DEPLOYED) == 1
    assert node.run() == []


ASKER = {
    "name": "asker", "version": 1, "capabilities": ["propose"], "fuel_limit": 100,
    "code": {"rules": {
        "ask": {"body": [{"do": "propose", "domain": "root", "title": "Review the time bank",
                          "text": "A year on: keep it?", "period_days": 3}]},
        "ask_council": {"body": [{"do": "propose", "domain": "council", "title": "Paint"}]},
        "ask_long": {"body": [{"do": "propose", "domain": "council", "title": "Slow",
                               "period_days": 20}]},
        "ask_nowhere": {"body": [{"do": "propose", "domain": "nowhere", "title": "Lost"}]},
    }},
}  # fmt: skip
"""A contract whose rules open proposals: in root, in a domain only the committee proposes
in (votes of at most ten days), in a domain that does not exist."""


def asking(store: SqlEventStore) -> Node:
    """The coop with a council domain (set up before its first proposal) and ASKER deployed."""
    node = founded(store)
    rules = {"proposer_roles": ["committee"], "max_period_ms": 10 * DAY}
    node.ok(node.s.event("coop", gb.DOMAIN_DEFINED, {"domain": "council", "rules": rules}))
    node.deploy(ASKER)
    return node


def test_a_proposal_a_rule_asks_for_is_opened_and_runs_its_course(store: SqlEventStore) -> None:
    """``propose`` opens a real proposal: the coop's DID signs it for the invocation, in the
    execution's batch, closing ``period_days`` after the invocation; members vote on it, the
    duty closes it at its time and executes it, each once."""
    node = asking(store)
    call = node.invoke("bob", "asker", "ask", {})
    node.ok(call)
    assert [p.title for p in node.invocation(call).proposals] == ["Review the time bank"]
    invoked_ms = node.invocation(call).invoked_ms
    done = node.run()
    assert [e.type for e in done] == [gb.PROPOSAL_SUBMITTED, cb.EXECUTED]
    opened, executed = done
    assert opened.author == node.s.coop_did
    assert opened.body == {
        "domain": "root", "title": "Review the time bank", "text": "A year on: keep it?",
        "action": {"kind": "text"}, "closes_at": invoked_ms + 3 * DAY, "invocation": call.id,
    }  # fmt: skip
    fuel = node.invocation(call).fuel
    assert executed.body == {
        "invocation": call.id, "effects": [], "fuel": fuel, "proposals": [opened.id]
    }  # fmt: skip
    assert node.invocation(call).state == "executed"
    assert node.invocation(call).opened == (opened.id,)
    record = state.proposal(CommittedState(store), "demo", opened.id)
    assert record is not None and record.state == "open"
    assert (record.author, record.invocation) == (node.s.coop_did, call.id)
    assert node.run() == []  # opened once
    side = ReadSide(store)
    side.catch_up("demo")  # what GET …/contracts/asker shows: the invocation's proposals
    [shown_call] = views.contract(SqlContractReads(store.engine), "demo", "asker").recent
    assert shown_call.id == call.id and shown_call.state == "executed"
    assert [msgspec.to_builtins(p) for p in shown_call.proposals] == [
        {"id": opened.id, "title": "Review the time bank", "closes_at": invoked_ms + 3 * DAY,
         "state": "open", "execution": None}
    ]  # fmt: skip

    ballots = [node.s.event(who, gb.VOTE_CAST, {"proposal": opened.id, "choice": choice})
               for who, choice in (("alice", "yes"), ("bob", "yes"), ("carol", "no"))]  # fmt: skip
    node.ok(*ballots)
    node.now = invoked_ms + 3 * DAY + 5
    done = node.run()
    assert [e.type for e in done] == [gb.PROPOSAL_CLOSED, gb.PROPOSAL_EXECUTED]
    assert done[0].body["outcome"] == "accepted" and done[0].body["counts"]["yes"] == 2
    record = state.proposal(CommittedState(store), "demo", opened.id)
    assert record is not None and record.state == "accepted" and record.execution is not None
    assert node.run() == []
    side.catch_up("demo")  # what GET …/proposals/{id} shows: the link, the end
    shown = governance_views.proposal(SqlGovernanceReads(store.engine), "demo", opened.id)
    assert (shown.author, shown.invocation, shown.state) == (node.s.coop_did, call.id, "accepted")
    [ended] = views.contract(SqlContractReads(store.engine), "demo", "asker").recent[0].proposals
    assert (ended.id, ended.state, ended.execution) == (opened.id, "accepted", "executed")
    report = side.replay()  # icn replay rebuilds the link and compares it
    assert report.identical, report.differences
    side.close()


def test_a_rule_proposes_only_where_the_domain_rules_allow(store: SqlEventStore) -> None:
    """Judged when invoked, with nothing stored: the domain must exist, allow the period, and
    take proposals from the member who invoked the rule."""
    node = asking(store)

    def code(who: str, rule: str) -> Any:
        event = node.s.event(who, cb.INVOKED, {"contract": "asker", "rule": rule, "args": {}},
                             advance=False)  # fmt: skip
        [outcome] = node.write(event)
        return outcome if outcome == "ok" else outcome[1]

    assert code("carol", "ask_nowhere") == "unknown-domain"
    assert code("bob", "ask_council") == "not-a-proposer"  # bob is not on the committee
    assert code("carol", "ask_long") == "invalid-voting-period"  # 20 days; council takes 10
    assert code("carol", "ask_council") == "ok"
    done = node.run()
    assert [e.type for e in done] == [gb.PROPOSAL_SUBMITTED, cb.EXECUTED]
    assert done[0].body["domain"] == "council" and done[0].body["closes_at"] == (node.now + 7 * DAY)


def test_only_the_coop_did_opens_a_contracts_proposal_and_only_as_computed(
    store: SqlEventStore,
) -> None:
    """A member cannot name an invocation; the coop's DID cannot open a proposal without one,
    nor one the rule did not compute, nor one for an invocation already carried out."""
    node = asking(store)
    call = node.invoke("bob", "asker", "ask", {})
    node.ok(call)
    invoked_ms = node.invocation(call).invoked_ms
    body = {"domain": "root", "title": "Review the time bank", "text": "A year on: keep it?",
            "action": {"kind": "text"}, "closes_at": invoked_ms + 3 * DAY,
            "invocation": call.id}  # fmt: skip

    def code(who: str, **changes: Any) -> Any:
        for e in (decode_stored(w.wire) for w in store.entries("demo")):
            node.s._heads[e.author] = (e.seq, e.id)  # the coop's chain as its duties left it
        changed = {k: v for k, v in {**body, **changes}.items() if v is not None}
        ts = node.now + 1_000  # after the duties' events, which are dated by their triggers
        event = node.s.event(who, gb.PROPOSAL_SUBMITTED, changed, ts=ts, advance=False)
        [outcome] = node.write(event)
        return outcome if outcome == "ok" else outcome[1]

    assert code("alice") == "not-authorized"
    assert code("coop", invocation=None) == "not-a-proposer"
    assert code("coop", title="Something else") == "execution-mismatch"
    assert code("coop", closes_at=invoked_ms + 4 * DAY) == "execution-mismatch"
    assert code("coop", invocation=ASKER_ID) == "unknown-invocation"
    node.run()
    assert node.invocation(call).state == "executed"
    assert code("coop") == "already-executed"


ASKER_ID = "0" * 64
