"""A small ledger story for the read-model tests: two currencies, a multi-transaction
entry, a coop charge, a dispute and a freeze, and the balances a reader must see."""

from __future__ import annotations

from typing import Any

from icn.domain.coop.records import CreditPolicy, CurrencySpec, Policy
from icn.domain.events.envelope import Event
from icn.domain.ledger import bodies as lb
from support.coops import HOURS, CoopScript

FOOD = CurrencySpec(code="food", unit="kg", decimals=0)
POLICY = Policy(
    credit={
        "hours": CreditPolicy(
            baseline=10_000,
            history_rate_ppm=100_000,
            max_limit=50_000,
            initial_limit=2_000,
            ramp_days=30,
        ),
        "food": CreditPolicy(baseline=50, max_limit=50),
    }
)
MEMBERS = {"alice": ["admin"], "bob": [], "carol": [], "dan": []}
PAYERS = ["alice", "bob", "carol"]


def ledger_story(coop: str = "food-coop", payments: int = 30) -> tuple[CoopScript, list[Event]]:
    """Founding, ``payments`` payments among alice, bob and carol (memo ``job i``), then a
    two-currency entry, a membership fee the coop charges dan, a dispute and a freeze."""
    s = CoopScript(coop)
    events = [s.found(MEMBERS, currencies=[HOURS, FOOD], policy=POLICY, name="Food coop")]
    for i in range(payments):
        payer, payee = PAYERS[i % 3], PAYERS[(i + 1) % 3]
        events.append(s.pay(payer, payee, 100 + i, memo=f"job {i}"))
    events.append(
        s.event("alice", "ledger.EntryRecorded", {"transactions": [
            {"from": s.did("alice"), "to": s.did("bob"), "amount": 7, "currency": "food"},
            {"from": s.did("alice"), "to": s.did("dan"), "amount": 250, "currency": "hours",
             "memo": "garden"},
        ]}),
    )  # fmt: skip
    events.append(
        s.event("coop", "ledger.EntryRecorded", {"transactions": [
            {"from": s.did("dan"), "to": s.coop_did, "amount": 500, "currency": "hours",
             "memo": "membership fee"},
        ]}),
    )  # fmt: skip
    disputed = events[2]  # bob pays carol 101 ("job 1")
    events.append(
        s.event("bob", lb.DISPUTE_FILED, lb.DisputeFiled(entry=disputed.id, reason="not done"))
    )
    events.append(
        s.event("alice", lb.ACCOUNT_FROZEN, lb.AccountFrozen(member=s.did("carol"), reason="audit"))
    )
    return s, events


def bike_coop() -> tuple[CoopScript, list[Event]]:
    """A second coop on the same node, with bob as a member."""
    s = CoopScript("bike-coop")
    return s, [s.found({"bob": ["admin"]}, name="Bike coop")]


def balances_of(events: list[Event]) -> dict[tuple[str, str], int]:
    """(DID, currency) -> balance, summed from the entries (spec section 6)."""
    out: dict[tuple[str, str], int] = {}
    for e in events:
        if e.type != "ledger.EntryRecorded":
            continue
        for tx in e.body["transactions"]:
            key_from, key_to = (tx["from"], tx["currency"]), (tx["to"], tx["currency"])
            out[key_from] = out.get(key_from, 0) - tx["amount"]
            out[key_to] = out.get(key_to, 0) + tx["amount"]
    return out


def history_of(events: list[Event], did: str) -> list[dict[str, Any]]:
    """The rows of ``did``'s history, in log order (leaf = index in ``events``)."""
    rows = []
    for leaf, e in enumerate(events):
        if e.type != "ledger.EntryRecorded":
            continue
        for i, tx in enumerate(e.body["transactions"]):
            if did in (tx["from"], tx["to"]):
                sign = -1 if tx["from"] == did else 1
                other = tx["to"] if sign < 0 else tx["from"]
                rows.append({"cursor": leaf * 64 + i, "amount": sign * tx["amount"],
                             "counterparty": other, "currency": tx["currency"],
                             "memo": tx.get("memo"), "ts": e.ts, "event_id": e.id})  # fmt: skip
    return rows
