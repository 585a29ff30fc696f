"""The coop rules on the write path, against a real store (SQLite file and real PostgreSQL).

A refusal by a node rule must leave no trace: no event, no log row, no
``coop_state`` record, and no seq used up (the author's next event at that
seq is accepted). The records the rules keep must agree with the log: per
currency, balances sum to zero and equal what an audit recomputes from the
entries alone.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterable

import pytest
from sqlalchemy import select
from support.coops import HOURS, CoopScript, entry_body, follow, resign

from icn.application.append import AppendEvents, Outcome
from icn.application.audit import audit_store
from icn.application.errors import BatchRefused
from icn.domain.coop.records import CreditPolicy, CurrencySpec, Policy
from icn.domain.events.envelope import Event, inspect
from icn.infrastructure.store import schema
from icn.infrastructure.store.event_store import SqlEventStore
from icn.infrastructure.store.reads import stored_events

COOP = "rules-coop"
ENTRY = "ledger.EntryRecorded"
FOUNDERS = {"alice": ["admin"], "bob": [], "carol": []}
NAMES = [*FOUNDERS, "stranger"]
CURRENCIES = ["hours", "credits"]


def wires(events: Iterable[Event]) -> list[bytes]:
    return [e.wire_bytes() for e in events]


def everything(store: SqlEventStore) -> dict[str, list[str]]:
    """Every row of every table the store writes: equal dumps mean nothing changed."""
    dump = {}
    with store.engine.connect() as conn:
        for table in [stored_events, *schema.metadata.sorted_tables]:
            dump[table.name] = sorted(repr(tuple(r)) for r in conn.execute(select(table)))
    return dump


def state(store: SqlEventStore, s: CoopScript) -> dict[tuple[str, str], bytes | None]:
    """The records a payment could touch, read through the store's port."""
    out: dict[tuple[str, str], bytes | None] = {("coop", ""): store.state_get(COOP, "coop", "")}
    for name in NAMES:
        did = s.did(name)
        out[("member", did)] = store.state_get(COOP, "member", did)
        for currency in [*CURRENCIES, "euros"]:
            key = f"{did}/{currency}"
            out[("account", key)] = store.state_get(COOP, "account", key)
    return out


def balance_of(store: SqlEventStore, did: str, currency: str = "hours") -> int:
    raw = store.state_get(COOP, "account", f"{did}/{currency}")
    return int(json.loads(raw)["balance"]) if raw is not None else 0


def append(store: SqlEventStore, clock: Callable[[], int], *events: Event) -> list[Outcome]:
    return AppendEvents(store, clock).append(wires(events))


def founded(store: SqlEventStore, clock: Callable[[], int]) -> CoopScript:
    """rules-coop: alice (admin), bob, carol; 100.00 hours of credit each; a few payments."""
    s = CoopScript(COOP)
    events = [
        s.found(FOUNDERS),
        s.pay("alice", "bob", 250),
        s.pay("bob", "carol", 100),
        s.pay("carol", "alice", 40),
    ]
    assert [o.verdict for o in append(store, clock, *events)] == ["ok"] * len(events)
    return s


def freeze(s: CoopScript, who: str) -> Event:
    body = {"member": s.did(who), "reason": "audit pending", "until": None}
    return s.event("alice", "ledger.AccountFrozen", body)


def unfreeze(s: CoopScript, who: str) -> Event:
    return s.event("alice", "ledger.AccountUnfrozen", {"member": s.did(who)})


# Each case: what happens first (accepted), the payment refused, the rule's code,
# what changes next (accepted), and the event at the refused seq that is then accepted.
def _over_the_limit(s: CoopScript) -> tuple[list[Event], Event, str, list[Event], Event]:
    # bob is at +150: 10_151 more would take him 1 past his limit of -10_000.
    refused = s.pay("bob", "carol", 10_151, advance=False)
    return [], refused, "credit-limit-exceeded", [], s.pay("bob", "carol", 10_150, advance=False)


def _payee_not_a_member(s: CoopScript) -> tuple[list[Event], Event, str, list[Event], Event]:
    refused = s.pay("bob", "stranger", 5, advance=False)
    return [], refused, "not-a-member", [s.admit("alice", "stranger")], refused


def _unknown_currency(s: CoopScript) -> tuple[list[Event], Event, str, list[Event], Event]:
    refused = s.pay("bob", "carol", 5, "euros", advance=False)
    return [], refused, "unknown-currency", [], s.pay("bob", "carol", 5, advance=False)


def _frozen_payer(s: CoopScript) -> tuple[list[Event], Event, str, list[Event], Event]:
    first = [freeze(s, "bob")]
    refused = s.pay("bob", "carol", 5, advance=False)
    return first, refused, "account-frozen", [unfreeze(s, "bob")], refused


def _payer_not_a_member(s: CoopScript) -> tuple[list[Event], Event, str, list[Event], Event]:
    refused = s.pay("stranger", "bob", 5, advance=False)
    return [], refused, "not-a-member", [s.admit("alice", "stranger")], refused


CASES = {
    "credit-limit": _over_the_limit,
    "payee-not-a-member": _payee_not_a_member,
    "unknown-currency": _unknown_currency,
    "frozen-payer": _frozen_payer,
    "payer-not-a-member": _payer_not_a_member,
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_refused_payment_stores_nothing_changes_no_record_and_uses_up_no_seq(
    case: str, store: SqlEventStore, clock: Callable[[], int]
) -> None:
    s = founded(store, clock)
    first, payment, code, then, at_same_seq = CASES[case](s)
    assert {o.verdict for o in append(store, clock, *first)} <= {"ok"}
    payer = payment.author
    head = store.head(COOP, payer)
    size = store.tree_size(COOP)
    rows, records = everything(store), state(store, s)

    [outcome] = append(store, clock, payment)

    assert (outcome.verdict, outcome.code, outcome.id) == ("refused", code, payment.id)
    assert outcome.position is None and not outcome.stored
    assert everything(store) == rows
    assert state(store, s) == records
    assert store.head(COOP, payer) == head and store.find(payment.id) is None
    assert store.tree_size(COOP) == size

    # The payer's chain is where it was: the next event at that seq is accepted.
    assert {o.verdict for o in append(store, clock, *then)} <= {"ok"}
    assert at_same_seq.seq == payment.seq and at_same_seq.prev == payment.prev
    [accepted] = append(store, clock, at_same_seq)
    assert (accepted.verdict, accepted.position) == ("ok", size + len(then))
    assert store.head(COOP, payer).id == at_same_seq.id  # type: ignore[union-attr]
    [tx] = at_same_seq.body["transactions"]
    was = records[("account", f"{tx['to']}/hours")]
    assert balance_of(store, tx["to"]) == (json.loads(was)["balance"] if was else 0) + tx["amount"]


def test_a_frozen_member_still_receives(store: SqlEventStore, clock: Callable[[], int]) -> None:
    s = founded(store, clock)
    before = balance_of(store, s.did("bob"))
    outcomes = append(store, clock, freeze(s, "bob"), s.pay("carol", "bob", 7))
    assert [o.verdict for o in outcomes] == ["ok", "ok"]
    assert balance_of(store, s.did("bob")) == before + 7


def test_a_batch_with_one_refused_line_stores_nothing_when_atomic(
    store: SqlEventStore, clock: Callable[[], int]
) -> None:
    s = founded(store, clock)
    size = store.tree_size(COOP)
    good = s.pay("alice", "carol", 10)
    refused = s.pay("bob", "carol", 20_000, advance=False)
    after = s.pay("carol", "bob", 5)
    rows, records = everything(store), state(store, s)

    with pytest.raises(BatchRefused) as raised:
        AppendEvents(store, clock).append(wires([good, refused, after]), atomic=True)

    assert (raised.value.line, raised.value.verdict, raised.value.code) == (
        2,
        "refused",
        "credit-limit-exceeded",
    )
    assert everything(store) == rows
    assert state(store, s) == records

    # Line by line (not atomic), the others are stored and the refused one is not.
    outcomes = AppendEvents(store, clock).append(wires([good, refused, after]))
    assert [(o.verdict, o.code, o.position) for o in outcomes] == [
        ("ok", "", size),
        ("refused", "credit-limit-exceeded", None),
        ("ok", "", size + 1),
    ]


def test_a_refused_event_frees_its_seq_for_the_next_event_of_the_same_batch(
    store: SqlEventStore, clock: Callable[[], int]
) -> None:
    s = founded(store, clock)
    size = store.tree_size(COOP)
    too_much = s.pay("bob", "carol", 20_000, advance=False)
    instead = s.pay("bob", "carol", 20)
    assert (too_much.seq, too_much.prev) == (instead.seq, instead.prev)

    outcomes = append(store, clock, too_much, instead)

    assert [(o.verdict, o.position) for o in outcomes] == [("refused", None), ("ok", size)]
    assert store.head(COOP, s.did("bob")).id == instead.id  # type: ignore[union-attr]


def test_an_event_of_a_coop_never_founded_is_refused_and_stores_nothing(
    store: SqlEventStore, clock: Callable[[], int]
) -> None:
    founded(store, clock)
    nowhere = CoopScript("nowhere-coop")
    payment = nowhere.pay("alice", "bob", 1, advance=False)
    delegated = {"domain": "root", "to": nowhere.did("alice")}
    vote = nowhere.event("bob", "governance.VoteDelegated", delegated, advance=False)
    rows = everything(store)

    outcomes = append(store, clock, payment, vote)

    assert [(o.verdict, o.code) for o in outcomes] == [("refused", "unknown-coop")] * 2
    assert everything(store) == rows
    assert "nowhere-coop" not in store.coops()
    assert store.state_get("nowhere-coop", "coop", "") is None

    # Once the coop is founded, the very same events are accepted.
    outcomes = append(store, clock, nowhere.found(), payment, vote)
    assert [(o.verdict, o.position) for o in outcomes] == [("ok", 0), ("ok", 1), ("ok", 2)]


def test_a_replayed_event_is_a_duplicate_and_changes_no_record(
    store: SqlEventStore, clock: Callable[[], int]
) -> None:
    s = founded(store, clock)
    payment = s.pay("alice", "carol", 33)
    assert [o.verdict for o in append(store, clock, payment)] == ["ok"]
    rows, records = everything(store), state(store, s)
    founding = next(store.entries(COOP)).wire

    outcomes = AppendEvents(store, clock).append([payment.wire_bytes(), founding])

    assert [o.verdict for o in outcomes] == ["duplicate", "duplicate"]  # not paid twice
    assert everything(store) == rows
    assert state(store, s) == records
    # An all-or-nothing request that resends a payment is told it is already recorded.
    [answer] = AppendEvents(store, clock).append_requests([[inspect(payment.wire_bytes())]])
    assert isinstance(answer, BatchRefused) and answer.code == "duplicate"
    assert everything(store) == rows


# -- the records agree with the log --------------------------------------------------

MANY = {f"m{i}": ["admin"] if i == 0 else [] for i in range(6)}
TIGHT = Policy(
    credit={
        "hours": CreditPolicy(baseline=2_000, max_limit=2_000),
        "credits": CreditPolicy(baseline=500, max_limit=500),
    }
)


def test_balances_in_coop_state_sum_to_zero_and_equal_the_audit_after_random_payments(
    store: SqlEventStore, clock: Callable[[], int]
) -> None:
    rng = random.Random(20260101)
    s = CoopScript(COOP)
    credits = CurrencySpec(code="credits", unit="credit", decimals=0)
    founding = s.found(MANY, currencies=[HOURS, credits], policy=TIGHT)
    assert [o.verdict for o in append(store, clock, founding)] == ["ok"]
    members = list(MANY)
    codes: dict[str, int] = {}
    payments = 0
    while payments < 400:
        # A batch of distinct authors, each at its next seq; only the accepted are followed.
        authors = rng.sample([*members, "coop"], rng.randint(1, 7))
        batch = []
        for author in authors:
            currency = rng.choice(CURRENCIES)
            amount = rng.randint(1, 900)
            if author == "coop":  # a charge or a grant by the treasury: no limit applies
                member = s.did(rng.choice(members))
                pair = (member, s.coop_did) if rng.random() < 0.5 else (s.coop_did, member)
                body = entry_body(*pair, amount, currency)
                batch.append(s.event("coop", ENTRY, body, advance=False))
            else:
                payee = rng.choice([m for m in members if m != author])
                batch.append(s.pay(author, payee, amount, currency, advance=False))
        outcomes = append(store, clock, *batch)
        for event, outcome in zip(batch, outcomes, strict=True):
            if outcome.verdict == "ok":
                follow(s, event)
            else:
                assert outcome.verdict == "refused", outcome
                codes[outcome.code] = codes.get(outcome.code, 0) + 1
        payments += len(batch)

    assert set(codes) == {"credit-limit-exceeded"} and codes["credit-limit-exceeded"] > 20
    dids = [s.did(m) for m in members] + [s.coop_did]
    in_state = {
        c: {
            d: balance_of(store, d, c) for d in dids if store.state_get(COOP, "account", f"{d}/{c}")
        }
        for c in CURRENCIES
    }
    for currency, balances in in_state.items():
        assert sum(balances.values()) == 0, currency
    audit = audit_store(store, COOP, None)
    assert audit.passed
    assert {c: in_state[c] for c in audit.balances} == audit.balances
    assert set(audit.balances) == set(CURRENCIES)


def test_a_fork_flags_its_author_for_the_rest_of_the_same_batch(
    store: SqlEventStore, clock: Callable[[], int]
) -> None:
    """Batching must not matter: an author who forks gets nothing more accepted, in or after it."""
    s = founded(store, clock)
    second = s.pay("alice", "carol", 10)
    assert [o.verdict for o in append(store, clock, second)] == ["ok"]
    rival = resign(s.key("alice"), second, body=entry_body(s.did("alice"), s.did("bob"), 11))
    after = s.pay("alice", "bob", 1)
    outcomes = append(store, clock, rival, after)
    assert [(o.verdict, o.code) for o in outcomes] == [
        ("fork", "fork"),
        ("refused", "author-flagged"),
    ]
    assert store.head(COOP, s.did("alice")).id == second.id  # type: ignore[union-attr]
