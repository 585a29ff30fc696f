"""The contract projection linking an invocation to the proposals its ``propose`` opened, as a
pure function: one row per proposal naming an invocation, nothing for any other."""

from __future__ import annotations

from support.coops import CoopScript

from icn.domain.governance import bodies as gb
from icn.projections.catalogue import PROJECTIONS
from icn.projections.contracts import CONTRACT_PROJECTIONS, OPENED, Opened
from icn.projections.ports import Changes
from icn.projections.runner import plan_batch


def test_a_proposal_naming_an_invocation_writes_its_link_and_no_other_event_does() -> None:
    s = CoopScript("demo")
    founded = s.found({"alice": ["admin"], "bob": []})
    body = {"domain": "root", "title": "Review", "text": "", "action": {"kind": "text"},
            "closes_at": founded.ts + 86_400_000}  # fmt: skip
    invocation = "ab" * 32
    by_member = s.event("alice", gb.PROPOSAL_SUBMITTED, body)
    by_contract = s.event("coop", gb.PROPOSAL_SUBMITTED, {**body, "invocation": invocation})
    pay = s.pay("alice", "bob", 100)
    events = list(enumerate([founded, by_member, by_contract, pay]))
    _, changes = plan_batch("demo", events, CONTRACT_PROJECTIONS, {}, {})
    assert changes.rows[OPENED.name] == [("demo", by_contract.id, 2, invocation, by_contract.ts)]
    assert any(isinstance(p, Opened) for p in PROJECTIONS)  # icn replay rebuilds it
    empty = Changes()
    for leaf, event in events:
        if event is not by_contract:
            Opened().apply(leaf, event, empty)
    assert len(empty) == 0
