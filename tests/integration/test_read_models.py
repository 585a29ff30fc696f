"""The ledger's read models on SQLite and PostgreSQL: catch-up, exactly once, queries, replay."""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from support.coops import HOURS, CoopScript

from icn.application.append import AppendEvents
from icn.application.coop_view import decode_record
from icn.application.ports import Accepted
from icn.domain.coop.records import AccountRecord, CreditPolicy, CurrencySpec, Policy
from icn.domain.events.envelope import Event, inspect
from icn.infrastructure.store import read_models as rm
from icn.infrastructure.store.database import parse_database_url
from icn.infrastructure.store.event_store import SqlEventStore
from icn.infrastructure.store.read_models import ReadSide, SqlReadModels
from icn.projections import ledger_views as views
from icn.projections.ledger import LEDGER_PROJECTIONS
from icn.projections.ports import Changes, Move

FOOD = CurrencySpec(code="food", unit="kg", decimals=0)
POLICY = Policy(
    credit={
        "hours": CreditPolicy(baseline=10_000, max_limit=50_000),
        "food": CreditPolicy(baseline=50, max_limit=50),
    }
)
NAMES = ["alice", "bob", "carol", "dan"]


def append(store: SqlEventStore, events: list[Event], clock: Callable[[], int]) -> None:
    outcomes = AppendEvents(store, clock).append_inspected(
        [inspect(e.wire_bytes()) for e in events]
    )
    assert [o.verdict for o in outcomes] == ["ok"] * len(events), outcomes


def story(coop: str = "demo", payments: int = 40) -> tuple[CoopScript, list[Event]]:
    """Two currencies, a multi-transaction entry, a coop charge, and many payments."""
    s = CoopScript(coop)
    events = [s.found({n: (["admin"] if n == "alice" else []) for n in NAMES},
                      currencies=[HOURS, FOOD], policy=POLICY)]  # fmt: skip
    for i in range(payments):
        payer, payee = NAMES[i % 4], NAMES[(i + 1 + i // 4) % 4]
        if payer == payee:
            payee = NAMES[(i + 2) % 4]
        events.append(s.pay(payer, payee, 100 + i, memo=f"job {i}"))
    events.append(
        s.event("alice", "ledger.EntryRecorded", {"transactions": [
            {"from": s.did("alice"), "to": s.did("bob"), "amount": 7, "currency": "food"},
            {"from": s.did("alice"), "to": s.did("carol"), "amount": 5, "currency": "food"},
            {"from": s.did("alice"), "to": s.did("bob"), "amount": 30, "currency": "hours"},
        ]}),
    )  # fmt: skip
    events.append(
        s.event("coop", "ledger.EntryRecorded", {"transactions": [
            {"from": s.did("dan"), "to": s.coop_did, "amount": 11, "currency": "hours",
             "memo": "membership fee"},
        ]}),
    )  # fmt: skip
    return s, events


def table(store: SqlEventStore, name: str) -> list[tuple[Any, ...]]:
    with store.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(f"SELECT * FROM {name} ORDER BY 1, 2, 3"))]


def tables(store: SqlEventStore) -> dict[str, list[tuple[Any, ...]]]:
    return {n: table(store, n) for n in ("ledger_balances", "ledger_history", "ledger_totals")}


def execute(store: SqlEventStore, sql: str) -> None:
    engine = rm.SqlReadModels(store.database)._writer
    with engine.begin() as conn:
        conn.execute(text(sql))
    engine.dispose()


def test_catch_up_agrees_with_the_rules_state_and_the_books_balance(
    store: SqlEventStore, clock: Callable[[], int]
) -> None:
    s, events = story()
    append(store, events, clock)
    side = ReadSide(store)
    report = side.catch_up()
    assert report.events == len(events) and report.conflicts == 0
    for name in [*NAMES, "coop"]:
        did = s.did(name)
        for row in side.models.balances("demo", did):
            raw = store.state_get("demo", AccountRecord.kind, f"{did}/{row.currency}")
            account = decode_record(AccountRecord.kind, raw) if raw else None
            assert isinstance(account, AccountRecord)
            assert (row.balance, row.cleared_volume) == (account.balance, account.cleared_volume)
    totals = {t.currency: t for t in side.models.totals("demo")}
    assert totals["hours"].balance_sum == totals["food"].balance_sum == 0
    assert totals["hours"].transactions == 42 and totals["food"].transactions == 2
    assert totals["food"].entries == 1 and totals["hours"].volume == sum(range(100, 140)) + 41
    alice = {r.currency: r for r in side.models.balances("demo", s.did("alice"))}
    assert alice["food"] == views.BalanceRow("food", -12, 0, 12, 1)
    assert len(table(store, "ledger_history")) == 2 * 44
    assert side.catch_up().events == 0
    side.close()


def test_reads_see_a_write_as_soon_as_they_catch_up(
    store: SqlEventStore, clock: Callable[[], int]
) -> None:
    s, events = story(payments=4)
    append(store, events, clock)
    side = ReadSide(store)
    side.catch_up()
    append(store, [s.pay("bob", "carol", 250)], clock)
    before = views.account_balances(side.models, "demo", s.did("carol"), clock())
    side.catch_up("demo")
    after = views.account_balances(side.models, "demo", s.did("carol"), clock())
    assert after.balances["hours"] - before.balances["hours"] == 250
    assert after.as_of == before.as_of + 1 == len(events)
    assert after.display["food"] == "5" and after.accounts["food"].credit_limit == 50
    side.close()


def test_history_filters_and_pages_without_gaps_or_repeats(
    store: SqlEventStore, clock: Callable[[], int]
) -> None:
    s, events = story(payments=60)
    append(store, events, clock)
    side = ReadSide(store)
    side.catch_up()
    bob = s.did("bob")
    everything = side.models.history("demo", bob, views.HistoryQuery(limit=1000))
    for descending in (False, True):
        seen: list[int] = []
        after = None
        while True:
            q = views.HistoryQuery(after=after, limit=7, descending=descending)
            page = views.account_history(side.models, "demo", bob, q)
            seen += [i.cursor for i in page.items]
            if page.next is None:
                break
            after = page.next
        assert seen == sorted((r.cursor for r in everything), reverse=descending)
    with_carol = views.account_history(
        side.models, "demo", bob, views.HistoryQuery(counterparty=s.did("carol"), limit=1000)
    )
    assert with_carol.items and {i.counterparty for i in with_carol.items} == {s.did("carol")}
    food = side.models.history("demo", bob, views.HistoryQuery(currency="food"))
    assert [(r.amount, r.currency) for r in food] == [(7, "food")]
    ts = sorted(r.ts for r in everything)
    window = side.models.history("demo", bob, views.HistoryQuery(since=ts[5], until=ts[9]))
    assert [r.ts for r in window] == ts[5:9]
    with pytest.raises(views.InvalidRequest):
        views.account_history(side.models, "demo", bob, views.HistoryQuery(since=5, until=5))
    side.close()


def test_a_commit_from_a_stale_position_changes_nothing(
    store: SqlEventStore, clock: Callable[[], int]
) -> None:
    _, events = story(payments=3)
    append(store, events, clock)
    side = ReadSide(store)
    side.catch_up()
    before = tables(store)
    changes = Changes()
    for p in LEDGER_PROJECTIONS:
        for i, e in enumerate(events):
            p.apply(i, e, changes)
    moves = [Move(p.name, "demo", -1, len(events) - 1) for p in LEDGER_PROJECTIONS]
    assert side.models.commit(moves, changes) is False
    assert tables(store) == before
    side.close()


def test_two_runners_racing_apply_every_entry_once(
    open_store: Callable[[], SqlEventStore], clock: Callable[[], int]
) -> None:
    first, second = open_store(), open_store()
    _, events = story(payments=300)
    append(first, events, clock)
    sides = [ReadSide(first), ReadSide(second)]
    for side in sides:
        side.runner.batch = 13
    threads = [threading.Thread(target=side.catch_up) for side in sides]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    raced = tables(first)
    assert sides[0].replay().identical
    assert len(raced["ledger_history"]) == 2 * (len(events) - 1 + 2)
    for side in sides:
        side.close()


def test_a_crash_inside_a_batch_leaves_no_trace(
    store: SqlEventStore, clock: Callable[[], int], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, events = story(payments=10)
    append(store, events, clock)
    side = ReadSide(store)
    real = SqlReadModels._write

    def dies_at_history(self: SqlReadModels, conn: Any, shape: Any, rows: Any) -> None:
        if shape.name == "ledger_history":
            raise RuntimeError("power cut")
        real(self, conn, shape, rows)

    monkeypatch.setattr(SqlReadModels, "_write", dies_at_history)
    with pytest.raises(RuntimeError, match="power cut"):
        side.catch_up()
    assert side.models.positions("demo") == {}
    assert all(rows == [] for rows in tables(store).values())
    monkeypatch.setattr(SqlReadModels, "_write", real)
    assert side.catch_up().events == len(events)
    assert side.replay().identical
    side.close()


def test_replay_is_identical_then_reports_each_tampered_row(
    store: SqlEventStore, clock: Callable[[], int]
) -> None:
    s, events = story(payments=20)
    append(store, events, clock)
    side = ReadSide(store)
    report = side.replay()
    assert report.identical and report.differences == [] and report.events == len(events)
    bob = s.did("bob")
    account = f"(SELECT id FROM read_accounts WHERE did = '{bob}')"
    execute(store, "UPDATE ledger_balances SET balance = balance + 1"
                   f" WHERE did = {account} AND currency = 'hours'")  # fmt: skip
    execute(store, "DELETE FROM ledger_history WHERE cursor = 64")
    execute(store, "UPDATE ledger_totals SET volume = 0 WHERE currency = 'food'")
    report = side.replay()
    assert not report.identical
    got = {(d.table, tuple(d.key)): d for d in report.differences}
    assert set(got) == {
        ("ledger_balances", ("demo", bob, "hours")),
        ("ledger_history", ("demo", s.did("alice"), 64)),
        ("ledger_history", ("demo", s.did(NAMES[1]), 64)),
        ("ledger_totals", ("demo", "food")),
    }
    d = got[("ledger_balances", ("demo", bob, "hours"))]
    assert d.live["balance"] == d.rebuilt["balance"] + 1
    assert got[("ledger_history", ("demo", s.did("alice"), 64))].live is None
    side.close()


def test_replay_reports_an_event_the_rules_now_refuse(
    store: SqlEventStore, clock: Callable[[], int]
) -> None:
    s, events = story(payments=2)
    append(store, events, clock)
    overdraft = s.pay("bob", "carol", 10_000_000)  # far beyond bob's limit
    store.append([Accepted(overdraft, overdraft.wire_bytes())], [], clock())  # bypasses the rules
    side = ReadSide(store)
    report = side.replay()
    assert not report.identical
    refused = [d for d in report.differences if d.table == "log"]
    assert refused and refused[0].key[2] == overdraft.id
    assert refused[0].rebuilt.startswith("credit-limit-exceeded")
    side.close()


# -- property: batch splits change nothing ------------------------------------------------

payments = st.lists(
    st.tuples(
        st.sampled_from([*NAMES, "coop"]),
        st.lists(
            st.tuples(st.sampled_from([*NAMES, "coop"]), st.integers(1, 4_000),
                      st.sampled_from(["hours", "food"])),
            min_size=1, max_size=3,
        ),
    ),
    min_size=3, max_size=40,
)  # fmt: skip


def _valid_story(drawn: list[Any]) -> list[Event]:
    """Drawn payments, keeping only those the rules accept (limits tracked here)."""
    s = CoopScript("prop")
    events = [s.found({n: (["admin"] if n == "alice" else []) for n in NAMES},
                      currencies=[HOURS, FOOD], policy=POLICY)]  # fmt: skip
    balance: dict[tuple[str, str], int] = {}
    for payer, txs in drawn:
        body = []
        after = dict(balance)
        for payee, drawn_amount, currency in txs:
            amount = drawn_amount if currency == "hours" else drawn_amount % 40 + 1
            source = payer if payer != "coop" else payee  # the coop's DID may debit anyone
            target = payee if payer != "coop" else "coop"
            if source == target or source == "coop":
                continue
            after[(source, currency)] = after.get((source, currency), 0) - amount
            after[(target, currency)] = after.get((target, currency), 0) + amount
            body.append({"from": s.did(source), "to": s.did(target), "amount": amount,
                         "currency": currency, "memo": None})  # fmt: skip
        limits = {"hours": 10_000, "food": 50}
        if not body or (payer != "coop" and any(
            after[(payer, c)] < -limits[c] for c in limits if (payer, c) in after
        )):  # fmt: skip
            continue
        balance = after
        events.append(s.event(payer, "ledger.EntryRecorded", {"transactions": body}))
    return events


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(drawn=payments, splits=st.lists(st.integers(1, 50), min_size=1, max_size=6),
       batch=st.integers(1, 9))  # fmt: skip
def test_any_batch_split_gives_the_same_tables_and_replay_agrees(
    drawn: list[Any], splits: list[int], batch: int
) -> None:
    events = _valid_story(drawn)
    ticks = iter(range(1_800_000_000_000, 1_900_000_000_000))
    with tempfile.TemporaryDirectory() as tmp:
        store = SqlEventStore(parse_database_url(None, Path(tmp)))
        store.create_tables()
        side = ReadSide(store)
        side.runner.batch = batch
        done = 0
        for n in splits:  # append in chunks, catching up in between, in small batches
            append(store, events[done : done + n], lambda: next(ticks))
            done += n
            side.catch_up()
        append(store, events[done:], lambda: next(ticks))
        side.catch_up()
        split = tables(store)
        report = side.replay()  # one catch-up from scratch, in batches of 2,000
        assert report.identical, msgspec.to_builtins(report.differences[:3])
        sums: dict[str, int] = {}
        for _, currency, bal, *_ in split["ledger_balances"]:  # (account, currency, …)
            sums[currency] = sums.get(currency, 0) + bal
        assert all(v == 0 for v in sums.values())
        history = len(split["ledger_history"])
        assert history == 2 * sum(len(e.body["transactions"]) for e in events[1:])
        side.close()
        store.close()


OLD_LAYOUT = (  # ledger_balances and ledger_history as releases before layout 2 made them
    "CREATE TABLE ledger_balances (coop VARCHAR(64) NOT NULL, did TEXT NOT NULL,"
    " currency VARCHAR(16) NOT NULL, balance BIGINT NOT NULL, cleared_volume BIGINT NOT NULL,"
    " debited_volume BIGINT NOT NULL, entries BIGINT NOT NULL,"
    " PRIMARY KEY (coop, did, currency))",
    "CREATE TABLE ledger_history (coop VARCHAR(64) NOT NULL, did TEXT NOT NULL,"
    " cursor BIGINT NOT NULL, event_id VARCHAR(64) NOT NULL, counterparty TEXT NOT NULL,"
    " amount BIGINT NOT NULL, currency VARCHAR(16) NOT NULL, memo TEXT, ts BIGINT NOT NULL,"
    " PRIMARY KEY (coop, did, cursor))",
    "CREATE INDEX ledger_history_by_time ON ledger_history (coop, did, ts, cursor)",
)


def test_a_store_with_an_older_layout_is_rebuilt_from_the_log_at_start(
    store: SqlEventStore, clock: Callable[[], int]
) -> None:
    s, events = story(payments=30)
    append(store, events, clock)
    side = ReadSide(store)
    side.catch_up()
    want_history = side.models.history("demo", s.did("bob"), views.HistoryQuery(limit=1000))
    want_balances = side.models.balances("demo", s.did("bob"))
    side.close()
    # What an earlier release left: its tables, rows and positions, and no layout noted.
    for name in ("ledger_history", "ledger_balances", "read_accounts"):
        execute(store, f"DROP TABLE {name}")
    for sql in OLD_LAYOUT:
        execute(store, sql)
    execute(store, "DELETE FROM node_meta WHERE key LIKE 'read-layout.%'")
    execute(store, f"INSERT INTO ledger_history VALUES ('demo', '{s.did('bob')}', 64,"
                   f" 'ab', '{s.did('alice')}', 1, 'hours', NULL, 5)")  # fmt: skip
    old = {p.name: len(events) - 1 for p in LEDGER_PROJECTIONS}
    assert {k: v for k, v in SqlReadModels(store.database).positions("demo").items()
            if k in old} == old  # fmt: skip

    assert store.create_tables() == ["ledger.balances", "ledger.history"]
    assert store.create_tables() == []  # noted: nothing to do the next time
    side = ReadSide(store)
    left = side.models.positions("demo")
    assert "ledger.history" not in left and left["ledger.totals"] == len(events) - 1
    assert side.catch_up().events == len(events)
    assert side.models.history("demo", s.did("bob"), views.HistoryQuery(limit=1000)) == (
        want_history
    )
    assert side.models.balances("demo", s.did("bob")) == want_balances
    assert side.replay().identical
    side.close()
