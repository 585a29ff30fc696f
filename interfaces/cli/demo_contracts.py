"""The demo coop's contracts: the three examples of ``examples/contracts/``, deployed by vote.

On day 48 Amara proposes deploying the time bank, the monthly dues and the
treasurer's budget envelope; a dozen members vote yes over the next days and
the proposals close on day 52. After the history is written, the coop's key
closes and executes them through the governance duty (dated when each tally
was due), a few members record services through the time bank, and the
contract duty carries those out and runs the dues if a first of the month
has passed since the deploy. The documents are the example files' (a unit
test holds them equal); the envelope is the treasurer's account and its
committee the ``treasurer`` role, so the demo needs no new role.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from nacl.signing import SigningKey

from icn.application.contract_duties import ContractDuties
from icn.application.errors import BatchRefused
from icn.domain.contract import bodies as cb
from icn.domain.coop.records import DAY_MS
from icn.domain.events.envelope import Event
from icn.domain.governance import bodies as gb
from icn.interfaces.bootstrap import Node

HOUR = 3_600_000
Plan = list[tuple[int, Callable[[int], None]]]
Sign = Callable[[SigningKey, str, dict[str, Any], int], Event]


def _var(name: str) -> dict[str, Any]:
    return {"op": "var", "name": name}


def _transfer(frm: dict[str, Any], to: dict[str, Any], amount: dict[str, Any], memo: str) -> Any:
    return {"do": "transfer", "from": frm, "to": to, "amount": amount,
            "currency": _var("currency"), "memo": memo}  # fmt: skip


HOURS = {"op": "currency", "value": "hours"}
TIMEBANK: dict[str, Any] = {
    "name": "timebank",
    "version": 1,
    "capabilities": ["read-ledger", "write-ledger"],
    "fuel_limit": 1000,
    "code": {
        "language": "icn-contract/1",
        "consts": {"currency": HOURS, "units_per_hour": {"op": "int", "value": 100}},
        "rules": {
            "record_service": {
                "params": [
                    {"name": "sender", "type": "did"},
                    {"name": "recipient", "type": "did"},
                    {"name": "hours", "type": "int"},
                ],
                "requires": [
                    {"op": "gt", "a": _var("hours"), "b": {"op": "int", "value": 0}},
                    {"op": "le", "a": _var("hours"), "b": {"op": "int", "value": 24}},
                ],
                "body": [
                    {
                        "do": "require",
                        "cond": {"op": "eq", "a": {"op": "caller"}, "b": _var("sender")},
                        "reason": "only the sender records the hours they give",
                    },
                    _transfer(
                        _var("sender"),
                        _var("recipient"),
                        {"op": "mul", "a": _var("hours"), "b": _var("units_per_hour")},
                        "time bank service",
                    ),
                ],
            }
        },
    },
}
DUES: dict[str, Any] = {
    "name": "dues",
    "version": 1,
    "capabilities": ["read-ledger", "write-ledger"],
    "fuel_limit": 100000,
    "code": {
        "language": "icn-contract/1",
        "consts": {"currency": HOURS, "dues": {"op": "int", "value": 50}},
        "rules": {
            "charge": {
                "body": [
                    {
                        "do": "require",
                        "cond": {"op": "eq", "a": {"op": "caller"}, "b": {"op": "treasury"}},
                        "reason": "dues are charged by the coop's schedule only",
                    },
                    {
                        "do": "each-member",
                        "var": "m",
                        "body": [
                            {
                                "do": "if",
                                "cond": {
                                    "op": "ge",
                                    "a": {
                                        "op": "credit-room",
                                        "account": _var("m"),
                                        "currency": _var("currency"),
                                    },
                                    "b": _var("dues"),
                                },
                                "then": [
                                    _transfer(
                                        _var("m"), {"op": "treasury"}, _var("dues"), "monthly dues"
                                    )
                                ],
                            }
                        ],
                    },
                ]
            }
        },
        "schedules": [{"rule": "charge", "every": "month", "day": 1}],
    },
}
BUDGET: dict[str, Any] = {
    "name": "budget",
    "version": 1,
    "capabilities": ["read-ledger", "write-ledger"],
    "fuel_limit": 1000,
    "code": {
        "language": "icn-contract/1",
        "consts": {
            "envelope": {"op": "did", "value": "did:key:z6MkEnvelopeAccountReplaceBeforeDeploying"},
            "currency": HOURS,
            "most_per_spend": {"op": "int", "value": 5000},
        },
        "rules": {
            "spend": {
                "params": [{"name": "to", "type": "did"}, {"name": "amount", "type": "int"}],
                "requires": [
                    {"op": "has-role", "member": {"op": "caller"}, "role": "committee"},
                    {"op": "gt", "a": _var("amount"), "b": {"op": "int", "value": 0}},
                    {"op": "le", "a": _var("amount"), "b": _var("most_per_spend")},
                ],
                "body": [
                    {
                        "do": "require",
                        "cond": {
                            "op": "ge",
                            "a": {
                                "op": "balance",
                                "account": _var("envelope"),
                                "currency": _var("currency"),
                            },
                            "b": _var("amount"),
                        },
                        "reason": "the envelope does not hold that much",
                    },
                    _transfer(
                        _var("envelope"), _var("to"), _var("amount"), "from the budget envelope"
                    ),
                ],
            }
        },
    },
}
EXAMPLES = (TIMEBANK, DUES, BUDGET)
"""The three example deploy documents, as ``examples/contracts/*.json`` hold them."""


class Member(Protocol):
    """What the plan reads of a demo person."""

    name: str
    key: SigningKey
    did: str


class Deploys:
    """The deploy proposals' ids (filled in as the story is signed)."""

    def __init__(self) -> None:
        self.proposals: list[str] = []


def budget_for(treasurer: str) -> dict[str, Any]:
    """The budget envelope as the demo deploys it: the treasurer's account, spent by the
    ``treasurer`` role."""
    doc = copy.deepcopy(BUDGET)
    doc["code"]["consts"]["envelope"]["value"] = treasurer
    doc["code"]["rules"]["spend"]["requires"][0]["role"] = "treasurer"
    return doc


def contracts_plan(
    sign: Sign, people: Sequence[Member], start: int, rng: random.Random
) -> tuple[Plan, Deploys]:
    """Amara's three deploy proposals on day 48 and a dozen yes votes on each."""
    by = {p.name.split()[0]: p for p in people}
    made = Deploys()
    opens = start + 48 * DAY_MS + 11 * HOUR
    closes = start + 52 * DAY_MS + 11 * HOUR
    docs = [TIMEBANK, DUES, budget_for(by["Chiara"].did)]

    def propose(doc: dict[str, Any]) -> Callable[[int], None]:
        def act(ts: int) -> None:
            fields = ("name", "version", "code", "capabilities", "fuel_limit")
            body = {
                "domain": "root",
                "title": f"Deploy the {doc['name']} contract",
                "text": "As discussed: let the rules we keep by hand run by themselves.",
                "action": {"kind": "deploy-contract", **{k: doc[k] for k in fields}},
                "closes_at": closes,
            }
            made.proposals.append(sign(by["Amara"].key, gb.PROPOSAL_SUBMITTED, body, ts).id)

        return act

    def vote(who: Member, index: int) -> Callable[[int], None]:
        def act(ts: int) -> None:
            body = {"proposal": made.proposals[index], "choice": "yes"}
            sign(who.key, gb.VOTE_CAST, body, ts)

        return act

    plan: Plan = [(opens + i * 60_000, propose(doc)) for i, doc in enumerate(docs)]
    voters = ["Amara", "Ben", "Chiara", "Elena", "Farid", "Hiro", "Isla", "Jonas", "Kemi",
              "Maya", "Olivia", "Priya"]  # fmt: skip
    for index in range(len(docs)):
        for name in voters:
            plan.append((start + int(rng.uniform(48.6, 51.5) * DAY_MS), vote(by[name], index)))
    return plan, made


SERVICES = (("Elena", "Farid", 2), ("Hiro", "Isla", 1), ("Kemi", "Maya", 3))
"""Services recorded through the time bank once it is deployed: (sender, recipient, hours)."""


def carry_out(
    node: Node, coop: str, coop_key: SigningKey, deploys: Deploys, people: Sequence[Member]
) -> tuple[list[Event], list[Event]]:
    """Close and execute the deploy proposals (dated when each tally was due), record the
    services, and let the contract duty carry them out (and run the dues if one is due).
    Returns the deploy events and what the contract duty signed."""
    deployed: list[Event] = []
    for proposal in deploys.proposals:
        done = node.governance.close_and_execute(coop, proposal, coop_key)
        deployed += [e for e in done if e.type == cb.DEPLOYED]
    by = {p.name.split()[0]: p for p in people}
    for sender, recipient, hours in SERVICES:
        args = {"sender": by[sender].did, "recipient": by[recipient].did, "hours": hours}
        body = {"contract": "timebank", "rule": "record_service", "args": args}
        try:
            node.author.submit(by[sender].key, coop, [(cb.INVOKED, body)])
        except BatchRefused:  # a sender without the room: the rule said no, as it should
            continue
    contracts = ContractDuties(node.store, node.author)
    signed: list[Event] = []
    for _, duty in contracts.duties(coop, coop_key, node.clock_ms()):
        signed += duty()
    return deployed, signed
