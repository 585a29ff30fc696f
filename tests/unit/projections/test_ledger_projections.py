"""The ledger projections as pure functions, and the runner over in-memory ports."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest
from support.coops import CoopScript, sample_log

from icn.application.ports import LogEntry
from icn.domain.coop import bodies as cb
from icn.domain.events.envelope import Event
from icn.projections.ledger import (
    BALANCES,
    HISTORY,
    LEDGER_PROJECTIONS,
    TOTALS,
    Balances,
    History,
    Totals,
    cursor_of,
    leaf_of,
)
from icn.projections.ports import Changes, Move
from icn.projections.runner import Runner, plan_batch


def _entry(s: CoopScript, payer: str, txs: list[tuple[str, int, str, str | None]]) -> Event:
    body = {
        "transactions": [
            {"from": s.did(payer), "to": s.did(to), "amount": a, "currency": c, "memo": m}
            for to, a, c, m in txs
        ]
    }
    return s.event(payer, "ledger.EntryRecorded", body)


@pytest.fixture
def s() -> CoopScript:
    script = CoopScript("demo")
    script.found({"alice": ["admin"], "bob": [], "carol": []})
    return script


def test_balances_move_both_sides_and_count_an_entry_once_per_account(s: CoopScript) -> None:
    changes = Changes()
    entry = _entry(s, "alice", [("bob", 300, "hours", None), ("carol", 200, "hours", "x")])
    Balances().apply(7, entry, changes)
    rows = changes.sums[BALANCES.name]
    assert rows[("demo", s.did("alice"), "hours")] == [-500, 0, 500, 1]
    assert rows[("demo", s.did("bob"), "hours")] == [300, 300, 0, 1]
    assert rows[("demo", s.did("carol"), "hours")] == [200, 200, 0, 1]
    assert sum(v[0] for v in rows.values()) == 0


def test_history_has_one_row_per_party_with_signed_amounts_and_cursors(s: CoopScript) -> None:
    changes = Changes()
    entry = _entry(s, "alice", [("bob", 300, "hours", "bread"), ("carol", 5, "food", None)])
    History().apply(3, entry, changes)
    rows = changes.rows[HISTORY.name]
    assert len(rows) == 4
    by = {(r[1], r[2]): r for r in rows}
    alice_0 = by[(s.did("alice"), cursor_of(3, 0))]
    # no event id: the cursor names the leaf, and the log holds its id
    assert alice_0 == (
        "demo", s.did("alice"), 192, s.did("bob"), -300, "hours", "bread", entry.ts
    )  # fmt: skip
    assert by[(s.did("bob"), 192)][3:7] == (s.did("alice"), 300, "hours", "bread")
    assert by[(s.did("carol"), 193)][4:7] == (5, "food", None)
    assert leaf_of(193) == (3, 1)


def test_totals_count_volume_transactions_and_entries_per_currency(s: CoopScript) -> None:
    changes = Changes()
    Totals().apply(
        1, _entry(s, "alice", [("bob", 3, "hours", None), ("carol", 4, "hours", None)]), changes
    )
    Totals().apply(2, _entry(s, "bob", [("carol", 9, "food", None)]), changes)
    assert changes.sums[TOTALS.name] == {("demo", "hours"): [7, 2, 1], ("demo", "food"): [9, 1, 1]}


def test_other_events_change_nothing(s: CoopScript) -> None:
    changes = Changes()
    for p in LEDGER_PROJECTIONS:
        p.apply(0, s.found(), changes)
        p.apply(1, s.admit("alice", "dan"), changes)
        p.apply(2, s.event("bob", cb.MEMBER_APPLIED, cb.MemberApplied()), changes)
    assert len(changes) == 0


def test_changes_of_a_batch_are_summed_per_key(s: CoopScript) -> None:
    changes = Changes()
    for i in range(5):
        Balances().apply(i, s.pay("alice", "bob", 10), changes)
    assert changes.sums[BALANCES.name][("demo", s.did("bob"), "hours")] == [50, 50, 0, 5]


def test_a_batch_applies_each_event_once_per_projection_from_its_own_position() -> None:
    events = [(i, e) for i, e in enumerate(sample_log(CoopScript("demo"), 9))]
    positions = {"ledger.balances": 4, "ledger.history": -1}  # totals: never ran
    moves, changes = plan_batch("demo", events, LEDGER_PROJECTIONS, positions, {"ledger.totals": 6})
    assert moves == [
        Move("ledger.balances", "demo", 4, 9),
        Move("ledger.history", "demo", -1, 9),
        Move("ledger.totals", "demo", -1, 6),
    ]
    assert len(changes.rows[HISTORY.name]) == 2 * 9  # entries 1..9, both sides
    assert changes.sums[TOTALS.name][("demo", "hours")][2] == 6  # entries 1..6
    assert sum(v[3] for v in changes.sums[BALANCES.name].values()) == 2 * 5  # entries 5..9


class MemoryLog:
    def __init__(self, events: Sequence[Event]) -> None:
        self.events = list(events)

    def coops(self) -> list[str]:
        return sorted({e.coop for e in self.events})

    def tree_size(self, coop: str) -> int:
        return len(self.events)

    def entries(self, coop: str, start: int = 0, stop: int | None = None) -> Iterator[LogEntry]:
        for i, e in enumerate(self.events[start:stop], start):
            yield LogEntry(coop, i, e.id, e.wire_bytes())


class MemoryModels:
    """Tables as dicts; ``steal`` makes the next commit lose, as if another runner won."""

    def __init__(self) -> None:
        self.positions_: dict[str, int] = {}
        self.sums: dict[str, dict[tuple, list[int]]] = {}
        self.rows: dict[str, list[tuple]] = {}
        self.steal: list[int] = []
        self.commits = 0

    def positions(self, coop: str) -> dict[str, int]:
        return dict(self.positions_)

    def commit(self, moves: Sequence[Move], changes: Changes) -> bool:
        if any(self.positions_.get(m.projection, -1) != m.before for m in moves):
            return False
        if self.steal:  # another runner applies this batch first
            self.steal.pop()
            self._apply(moves, changes)
            return False
        self._apply(moves, changes)
        return True

    def _apply(self, moves: Sequence[Move], changes: Changes) -> None:
        self.commits += 1
        for m in moves:
            self.positions_[m.projection] = m.after
        for name, rows in changes.sums.items():
            table = self.sums.setdefault(name, {})
            for k, v in rows.items():
                table[k] = [a + b for a, b in zip(table.get(k, [0] * len(v)), v, strict=True)]
        for name, new in changes.rows.items():
            self.rows.setdefault(name, []).extend(new)


def test_the_runner_applies_everything_once_in_batches_and_then_does_nothing() -> None:
    log = MemoryLog(sample_log(CoopScript("demo"), 25))
    models = MemoryModels()
    runner = Runner(log, models, batch=7)
    report = runner.catch_up()
    assert (report.events, report.batches) == (26, 4)
    assert models.positions_ == {p.name: 25 for p in LEDGER_PROJECTIONS}
    assert len(models.rows[HISTORY.name]) == 50
    assert runner.catch_up().events == 0 and models.commits == 4


def test_a_lost_race_is_not_applied_twice() -> None:
    log = MemoryLog(sample_log(CoopScript("demo"), 25))
    models = MemoryModels()
    models.steal = [1]
    report = Runner(log, models, batch=10).catch_up()
    assert report.conflicts == 1
    assert len(models.rows[HISTORY.name]) == 50  # each transaction, both sides, once
    assert sum(v[0] for v in models.sums[BALANCES.name].values()) == 0


def test_new_events_are_picked_up_where_the_runner_stopped() -> None:
    events = sample_log(CoopScript("demo"), 12)
    log = MemoryLog(events[:5])
    models = MemoryModels()
    runner = Runner(log, models)
    runner.catch_up()
    log.events = events
    assert runner.catch_up("demo").events == 8
    assert models.sums[TOTALS.name][("demo", "hours")][2] == 12
