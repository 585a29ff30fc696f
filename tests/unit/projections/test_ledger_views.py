"""The documents members read, composed from rows and records (no database)."""

from __future__ import annotations

import pytest
from support.coops import HOURS, CoopScript

from icn.application.coop_view import NoRecords, StateLayer, encode_record
from icn.application.errors import InvalidRequest, NotFound
from icn.domain.coop.evolve import evolve
from icn.domain.coop.records import DAY_MS, CreditPolicy, CurrencySpec, Policy
from icn.domain.events.envelope import Event
from icn.projections import ledger_views as views
from icn.projections.ledger import LEDGER_PROJECTIONS, leaf_of
from icn.projections.ports import Changes

FOOD = CurrencySpec(code="food", unit="kg", decimals=0)
POLICY = Policy(
    credit={
        "hours": CreditPolicy(
            baseline=10_000, history_rate_ppm=200_000, max_limit=12_000,
            initial_limit=1_000, ramp_days=10,
        ),
        "food": CreditPolicy(baseline=20, max_limit=20),
    }
)  # fmt: skip


class Reads:
    """LedgerReads over a StateLayer (records) and projection changes (rows)."""

    def __init__(self, events: list[Event]) -> None:
        self.state = StateLayer(NoRecords())
        self.changes = Changes()
        for leaf, e in enumerate(events):
            result = evolve(e, self.state, e.ts)
            assert isinstance(result, list), result
            self.state.write(e, result)
            for p in LEDGER_PROJECTIONS:
                p.apply(leaf, e, self.changes)
        self.size = len(events)
        self.ids = [e.id for e in events]

    def balances(self, coop: str, did: str) -> list[views.BalanceRow]:
        rows = self.changes.sums["ledger_balances"]
        return [views.BalanceRow(k[2], *v) for k, v in sorted(rows.items()) if k[:2] == (coop, did)]

    def history(self, coop: str, did: str, query: views.HistoryQuery) -> list[views.HistoryRow]:
        rows = [  # the store reads the event id from the log, by the cursor's leaf
            views.HistoryRow(r[2], self.ids[leaf_of(r[2])[0]], *r[3:])
            for r in self.changes.rows["ledger_history"]
            if r[:2] == (coop, did)
        ]
        rows = [r for r in rows if query.after is None or r.cursor > query.after]
        return sorted(rows, key=lambda r: r.cursor)[: query.limit]

    def totals(self, coop: str) -> list[views.TotalsRow]:
        return []

    def holds(self, coop: str, did: str) -> list[views.HoldRow]:
        return []

    def positions(self, coop: str) -> dict[str, int]:
        return {p.name: self.size - 1 for p in LEDGER_PROJECTIONS}

    def record(self, coop: str, kind: str, key: str) -> bytes | None:
        r = self.state.record(coop, kind, key)
        return encode_record(coop, r).value if r is not None else None

    def records(self, coop: str, kind: str, after: str | None, limit: int) -> list[bytes]:
        keys = sorted(k for (c, kd, k) in self.state.records if c == coop and kd == kind)
        keys = [k for k in keys if after is None or k > after][:limit]
        return [self.record(coop, kind, k) or b"" for k in keys]


@pytest.fixture
def story() -> tuple[CoopScript, Reads]:
    s = CoopScript("demo")
    events = [s.found({"alice": ["admin"], "bob": []}, currencies=[HOURS, FOOD], policy=POLICY)]
    events += [s.pay("alice", "bob", 900, memo="a"), s.pay("bob", "alice", 250)]
    return s, Reads(events)


def test_every_currency_is_listed_with_display_and_credit(story) -> None:
    s, reads = story
    doc = views.account_balances(reads, "demo", s.did("alice"), s.ts + 10 * DAY_MS)
    assert doc.balances == {"hours": -650, "food": 0}
    assert doc.display == {"hours": "-6.50", "food": "0"}
    hours = doc.accounts["hours"]
    # ramp over: 10,000 + 250 × 20 % = 10,050 (below the 12,000 cap)
    assert (hours.credit_used, hours.credit_limit, hours.available) == (650, 10_050, 9_400)
    assert hours.available_display == "94.00" and doc.as_of == 2


def test_the_limit_during_the_ramp_term_by_term(story) -> None:
    s, reads = story
    joined = s.ts - 2  # founding
    doc = views.account_limit(reads, "demo", s.did("bob"), "hours", joined + 5 * DAY_MS)
    assert (doc.cleared_volume, doc.history_bonus, doc.formula_limit) == (900, 180, 10_180)
    assert (doc.full_limit, doc.days_since_joining) == (10_180, 5)
    assert doc.limit == 1_000 + (10_180 - 1_000) * 5 // 10
    assert (doc.balance, doc.used, doc.available) == (650, 0, doc.limit)
    with pytest.raises(InvalidRequest):
        views.account_limit(reads, "demo", s.did("bob"), None, joined)
    with pytest.raises(NotFound):
        views.account_limit(reads, "demo", s.coop_did, "hours", joined)


def test_the_coop_account_has_no_limit_and_strangers_no_account(story) -> None:
    s, reads = story
    doc = views.account_balances(reads, "demo", s.coop_did, s.ts)
    assert doc.accounts["hours"].credit_limit is None and doc.balances["hours"] == 0
    with pytest.raises(NotFound):
        views.account_balances(reads, "demo", s.did("stranger"), s.ts)
    with pytest.raises(NotFound):
        views.account_balances(reads, "nowhere", s.did("alice"), s.ts)


def test_history_pages_end_with_a_null_cursor(story) -> None:
    s, reads = story
    first = views.account_history(reads, "demo", s.did("bob"), views.HistoryQuery(limit=1))
    assert [(i.position, i.amount, i.display, i.memo) for i in first.items] == [
        (1, 900, "9.00", "a")
    ]
    rest = views.account_history(
        reads, "demo", s.did("bob"), views.HistoryQuery(limit=1, after=first.next)
    )
    assert [i.amount for i in rest.items] == [-250] and rest.next is None
    with pytest.raises(InvalidRequest):
        views.account_history(reads, "demo", s.did("bob"), views.HistoryQuery(limit=0))


def test_members_page_in_did_order(story) -> None:
    s, reads = story
    page = views.members(reads, "demo", after=None, limit=1, now_ms=s.ts)
    dids = sorted([s.did("alice"), s.did("bob")])
    assert [m.did for m in page.members] == dids[:1] and page.next == dids[0]
    page = views.members(reads, "demo", after=page.next, limit=1, now_ms=s.ts)
    assert [m.did for m in page.members] == dids[1:] and page.next is None
