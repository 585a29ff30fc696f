"""The ledger's invariants under random members and payments, through the real write path.

A hypothesis state machine drives a real SQLite store with random
admissions, freezes, suspensions and payments (many of them over the limit),
and after every step checks: Σ balances = 0 per currency; the store's
balances equal a plain model's (every accepted entry counted exactly once);
a payment is accepted exactly when the model says the payer is an active,
unfrozen member within their credit limit; and at the end, replaying the
log from scratch through the same rules rebuilds the identical state.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import defaultdict
from pathlib import Path

import hypothesis
import msgspec
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from sqlalchemy import func, select
from support.coops import CoopScript

from icn.application.append import AppendEvents
from icn.application.coop_view import NoRecords, StateLayer, decode_record
from icn.domain.coop.evolve import evolve
from icn.domain.coop.records import DAY_MS, AccountRecord, CreditPolicy, CurrencySpec, Policy
from icn.domain.events.envelope import Event
from icn.domain.ledger.credit import credit_limit
from icn.domain.refusals import Refusal
from icn.infrastructure.store.database import parse_database_url
from icn.infrastructure.store.event_store import SqlEventStore
from icn.infrastructure.store.schema import log_entries

CURRENCIES = ["hours", "bread"]
POLICY = Policy(
    credit={
        "hours": CreditPolicy(
            baseline=5_000, history_rate_ppm=100_000, max_limit=8_000, initial_limit=1_000,
            ramp_days=4,
        ),
        "bread": CreditPolicy(baseline=300, max_limit=300),
    }
)  # fmt: skip
SKEW_S = 300
NAMES = ["ann", "ben", "cat", "dan", "eve", "fay"]


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="icn-ledger-prop-"))
        self.store = SqlEventStore(parse_database_url("", self.dir))
        self.store.create_tables()
        self.now = 0
        """Trusted time: the node's clock when the next event arrives."""
        self.append = AppendEvents(self.store, lambda: self.now, max_skew_s=SKEW_S)
        self.s = CoopScript()
        self.balance: defaultdict[tuple[str, str], int] = defaultdict(int)
        self.cleared: defaultdict[tuple[str, str], int] = defaultdict(int)
        self.joined: dict[str, int] = {}
        self.status: dict[str, str] = {}
        self.frozen: set[str] = set()

    def _submit(self, event: Event, *, at: int | None = None) -> str:
        """Submit ``event`` when the node's clock reads ``at`` (default: the moment the
        author dated it, as for an honest client)."""
        self.now = event.ts if at is None else at
        [outcome] = self.append.append([event.wire_bytes()])
        return outcome.code if outcome.verdict == "refused" else outcome.verdict

    @initialize()
    def found(self) -> None:
        event = self.s.found(
            {"ann": ["admin"], "ben": [], "cat": [], "dan": []},
            currencies=[
                CurrencySpec(code="hours", unit="hour", decimals=2),
                CurrencySpec(code="bread", unit="loaf", decimals=0),
            ],
            policy=POLICY,
        )
        assert self._submit(event) == "ok"
        for name in ("ann", "ben", "cat", "dan"):
            self.joined[name], self.status[name] = event.ts, "active"

    @rule(name=st.sampled_from(NAMES), days=st.integers(0, 2))
    def admit(self, name: str, days: int) -> None:
        body = {"member": self.s.did(name), "roles": []}
        expect_ok = self.status.get(name) not in ("active", "suspended")
        ts = self.s.ts + days * DAY_MS
        event = self.s.event("ann", "coop.MemberAdmitted", body, ts=ts, advance=expect_ok)
        got = self._submit(event)
        assert got == ("ok" if expect_ok else "already-member"), got
        if got == "ok":
            self.joined[name], self.status[name] = event.ts, "active"

    @rule(name=st.sampled_from(NAMES[1:]), freeze=st.booleans())
    def toggle_freeze(self, name: str, freeze: bool) -> None:
        if self.status.get(name) != "active" or (name in self.frozen) == freeze:
            return
        kind = "ledger.AccountFrozen" if freeze else "ledger.AccountUnfrozen"
        body = {"member": self.s.did(name)}
        if freeze:
            body |= {"reason": "test", "until": None}
        assert self._submit(self.s.event("ann", kind, body)) == "ok"
        (self.frozen.add if freeze else self.frozen.discard)(name)

    @rule(
        payer=st.sampled_from(NAMES),
        payee=st.sampled_from([*NAMES, "coop"]),
        amount=st.integers(1, 1_200),
        currency=st.sampled_from(CURRENCIES),
        hours_later=st.integers(0, 30),
    )
    def pay(self, payer: str, payee: str, amount: int, currency: str, hours_later: int) -> None:
        if payer == payee:
            return
        ts = self.s.ts + hours_later * 3_600_000
        event = self.s.pay(payer, payee, amount, currency, ts=ts, advance=False)
        expected = self._expect(payer, payee, amount, currency, ts)
        got = self._submit(event)
        assert got == expected, (got, expected)
        hypothesis.event(f"payment: {got}")
        if got == "ok":
            self.s.pay(payer, payee, amount, currency, ts=ts)  # move the script's chain on
            self.balance[(payer, currency)] -= amount
            self.balance[(payee, currency)] += amount
            self.cleared[(payee, currency)] += amount

    @rule(
        payer=st.sampled_from(NAMES),
        amount=st.integers(1, 1_200),
        ahead_s=st.integers(0, 40 * 86_400),
        hours_later=st.integers(0, 30),
    )
    def pay_dated_ahead(self, payer: str, amount: int, ahead_s: int, hours_later: int) -> None:
        """An author dates a payment ahead of the node's clock: beyond the skew it is never
        stored, and within it the rules still judge at the node's time, not the author's
        (a ramp or a freeze cannot be dated away)."""
        now = self.s.ts + hours_later * 3_600_000
        ts = now + ahead_s * 1000
        event = self.s.pay(payer, "coop", amount, "hours", ts=ts, advance=False)
        if ahead_s > SKEW_S:
            expected = "clock-skew"
        else:
            expected = self._expect(payer, "coop", amount, "hours", now)
        got = self._submit(event, at=now)
        assert got == expected, (got, expected)
        hypothesis.event(f"payment dated ahead: {got}")
        if got == "ok":
            self.s.pay(payer, "coop", amount, "hours", ts=ts)  # move the script's chain on
            self.balance[(payer, "hours")] -= amount
            self.balance[("coop", "hours")] += amount
            self.cleared[("coop", "hours")] += amount

    @invariant()
    def nothing_stored_lies_beyond_trusted_time_and_skew(self) -> None:
        e = log_entries
        with self.store.engine.connect() as conn:
            worst = conn.execute(select(func.max(e.c.ts - e.c.trusted_ms))).scalar()
        assert worst is None or worst <= SKEW_S * 1000, worst

    def _expect(self, payer: str, payee: str, amount: int, currency: str, ts: int) -> str:
        if self.status.get(payer) != "active":
            return "not-a-member"
        if payer in self.frozen:
            return "account-frozen"
        if payee != "coop" and self.status.get(payee) != "active":
            return "not-a-member"
        limit = credit_limit(
            POLICY.credit[currency],
            cleared_volume=self.cleared[(payer, currency)],
            trust_ppm=0,
            joined_ms=self.joined[payer],
            now_ms=ts,
        ).limit
        if self.balance[(payer, currency)] - amount < -limit:
            return "credit-limit-exceeded"
        return "ok"

    def _stored_accounts(self) -> list[AccountRecord]:
        rows = self.store.state_records("demo", AccountRecord.kind)
        return [
            r
            for _, v in rows
            if isinstance(r := decode_record(AccountRecord.kind, v), AccountRecord)
        ]

    @invariant()
    def balances_sum_to_zero_and_match_the_model(self) -> None:
        totals: defaultdict[str, int] = defaultdict(int)
        stored = {}
        for a in self._stored_accounts():
            totals[a.currency] += a.balance
            stored[(a.did, a.currency)] = a.balance
        assert all(t == 0 for t in totals.values()), totals
        model = {
            (self.s.did(n), c): b
            for (n, c), b in self.balance.items()
            if b or (self.s.did(n), c) in stored
        }
        assert {k: v for k, v in stored.items() if v or k in model} == model

    def teardown(self) -> None:
        try:
            rebuilt = StateLayer(NoRecords())
            for entry in self.store.entries("demo"):
                event = msgspec.json.decode(entry.wire, type=Event)
                result = evolve(event, rebuilt, entry.trusted_ms or event.ts)
                assert not isinstance(result, Refusal), (entry.leaf_index, result)
                rebuilt.write(event, result)
            live = {
                (kind, key): value
                for kind in ("coop", "member", "account", "dispute")
                for key, value in self.store.state_records("demo", kind)
            }
            again = {(r.kind, r.key): r.value for r in rebuilt.rows()}
            assert again == live
        finally:
            self.store.close()
            shutil.rmtree(self.dir, ignore_errors=True)


LedgerMachine.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestLedgerInvariants = LedgerMachine.TestCase
