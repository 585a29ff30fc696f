"""The event store's contract, run against every backend (SQLite file and real PostgreSQL).

Each test gets a fresh database from the ``store_url`` fixture, which is
parametrized over the backends, so every sentence below holds for both.
Nothing is mocked: events are signed and go through the real write path
(``AppendEvents``, spec checks then the coop rules) into a real database.

The spec's vector logs cannot be imported any more (their ``coop.Founded``
body is not the project's and one of their coops is never founded), so the
store's roots and proofs are compared with the pure in-memory tree of the
same generated log, and the vectors are checked against that pure tree and
the store-less audit here (the chain of equalities: store = pure tree of
the same log, pure tree = vectors).
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import msgspec
import pytest
from eventsourcing.persistence import PersistenceError
from nacl.signing import SigningKey
from sqlalchemy import func, select
from support.coops import (
    FOOD_MEMBERS,
    VECTOR_LIKE_BIKE,
    VECTOR_LIKE_FOOD,
    CoopScript,
    did_for,
    entry_body,
    faults_log,
    key_for,
    resign,
    two_coop_log,
)
from support.tampering import writer

from icn.application.append import AppendEvents, Outcome
from icn.application.audit import audit_lines
from icn.application.checkpoints import IssueCheckpoint
from icn.application.errors import BatchRefused
from icn.application.ports import Accepted, ConcurrentAppend, ForkEvidence, StoreError
from icn.domain.coop.records import CreditPolicy, Policy
from icn.domain.events.envelope import Event, inspect
from icn.domain.log import merkle
from icn.domain.log.checkpoint import open_checkpoint
from icn.infrastructure.store import schema
from icn.infrastructure.store.database import Database
from icn.infrastructure.store.event_store import SqlEventStore
from icn.infrastructure.store.log_rows import LogRowWriter
from icn.infrastructure.store.reads import stored_events

FOOD = VECTOR_LIKE_FOOD
BIKE = VECTOR_LIKE_BIKE
ENTRY = "ledger.EntryRecorded"
UNLIMITED = Policy(credit={"hours": CreditPolicy(baseline=10**12, max_limit=10**12)})
"""For tests about the log, not about credit: nobody reaches this limit."""

# -- helpers ------------------------------------------------------------------


def wires(events: Iterable[Event]) -> list[bytes]:
    return [e.wire_bytes() for e in events]


def vector_lines(vectors_dir: Path, name: str) -> list[bytes]:
    return (vectors_dir / name).read_bytes().splitlines()


def import_log(store: SqlEventStore, clock: Callable[[], int]) -> tuple[list[Event], CoopScript]:
    """Import :func:`two_coop_log` (all ``ok``); returns its events and food-coop's script."""
    food = CoopScript(FOOD)
    events = two_coop_log(food=food)
    outcomes = AppendEvents(store, clock).append(wires(events))
    assert [o.verdict for o in outcomes] == ["ok"] * len(events)
    return events, food


def of_coop(events: Iterable[Event], coop: str) -> list[Event]:
    return [e for e in events if e.coop == coop]


def pure_tree(events: Iterable[Event]) -> merkle.MemoryTree:
    """The tree of these events in this order, computed without any store."""
    tree = merkle.MemoryTree()
    for event in events:
        tree.append(merkle.leaf_hash(bytes.fromhex(event.id)))
    return tree


def last_of(events: Sequence[Event], author: str) -> Event:
    return [e for e in events if e.author == author][-1]


def fork_of(key: SigningKey, event: Event, to: str) -> Event:
    """A different entry at the seq of ``event`` (same chain, same prev)."""
    return resign(key, event, body=entry_body(event.author, to, 4321))


def count(store: SqlEventStore, table: Any) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def everything(store: SqlEventStore) -> dict[str, list[str]]:
    """Every row of every table the store writes (coop_state too): equal dumps mean no change."""
    dump = {}
    with store.engine.connect() as conn:
        for table in [stored_events, *schema.metadata.sorted_tables]:
            dump[table.name] = sorted(repr(tuple(r)) for r in conn.execute(select(table)))
    return dump


def visible(store: SqlEventStore, coops: Sequence[str]) -> dict[str, Any]:
    """What the store's own API shows for ``coops``."""
    dids = [did_for(n) for n in FOOD_MEMBERS]
    return {
        "coops": store.coops(),
        "sizes": {c: store.tree_size(c) for c in coops},
        "entries": {
            c: [(e.leaf_index, e.event_id, e.wire) for e in store.entries(c)] for c in coops
        },
        "quarantine": {
            c: [(f.event.id, f.conflicts_with) for f in store.quarantined(c)] for c in coops
        },
        "nodes": {c: store.stored_nodes(c) for c in coops},
        "state": {
            c: [store.state_get(c, "coop", "")]
            + [store.state_get(c, "member", d) for d in dids]
            + [store.state_get(c, "account", f"{d}/hours") for d in dids]
            for c in coops
        },
    }


def tree_of(store: SqlEventStore, coop: str) -> merkle.MemoryTree:
    """The coop's tree recomputed from its entries."""
    tree = merkle.MemoryTree()
    for entry in store.entries(coop):
        tree.append(merkle.leaf_hash(bytes.fromhex(entry.event_id)))
    return tree


def write_sql(database: Database, *statements: str) -> None:
    """Run DDL on the test database through a plain writer connection."""
    with writer(database.url) as conn:
        for sql in statements:
            conn.exec_driver_sql(sql)


# -- the spec's vectors: still passed by the store-less audit and the pure tree ----


def test_the_spec_vectors_pass_the_storeless_audit_and_the_pure_tree(vectors_dir: Path) -> None:
    expected = json.loads((vectors_dir / "expected.json").read_text())
    for name, want in expected.items():
        audit = audit_lines(vector_lines(vectors_dir, name))
        assert (audit.verdicts, audit.balances) == (want["verdicts"], want["balances"]), name

    vectors = json.loads((vectors_dir / "merkle.json").read_text())
    lines = vector_lines(vectors_dir, "ok.jsonl")
    food = of_coop((msgspec.json.decode(ln, type=Event) for ln in lines), "food-coop")
    assert [e.id for e in food] == vectors["leaves"]
    tree = pure_tree(food)
    checkpoint = vectors["checkpoint"]
    assert tree.root(checkpoint["size"]).hex() == checkpoint["root"]
    for size, root in vectors["roots"].items():
        assert tree.root(int(size)).hex() == root, f"size {size}"
    for case in vectors["inclusion"]:
        proof = merkle.inclusion_proof(tree.get, case["index"], case["size"])
        assert [p.hex() for p in proof] == case["proof"], case
    for case in vectors["consistency"]:
        proof = merkle.consistency_proof(tree.get, case["size1"], case["size2"])
        assert [p.hex() for p in proof] == case["proof"], case


# -- importing whole logs -------------------------------------------------------------


def test_importing_a_log_stores_every_line_at_its_place_in_its_coop(
    store: SqlEventStore, clock: Callable[[], int]
) -> None:
    events = two_coop_log()
    lines = wires(events)

    outcomes = AppendEvents(store, clock).append(lines)

    assert [o.verdict for o in outcomes] == ["ok"] * len(lines)
    next_leaf: dict[str, int] = {}
    for event, outcome in zip(events, outcomes, strict=True):
        assert outcome.position == next_leaf.get(event.coop, 0)
        assert outcome.id == event.id
        next_leaf[event.coop] = next_leaf.get(event.coop, 0) + 1
    assert store.coops() == sorted(next_leaf) == [BIKE, FOOD]
    assert {c: store.tree_size(c) for c in next_leaf} == {FOOD: 29, BIKE: 2}
    assert count(store, stored_events) == len(lines)
    for coop, founding in ((FOOD, events[0]), (BIKE, of_coop(events, BIKE)[0])):
        record = json.loads(store.state_get(coop, "coop", "") or b"null")
        assert (record["coop"], record["did"]) == (coop, founding.author)


def test_importing_a_faults_log_gives_exactly_the_expected_verdict_for_every_line(
    store: SqlEventStore, clock: Callable[[], int]
) -> None:
    faults = faults_log()
    lines = faults.lines
    assert audit_lines(lines).verdicts == faults.spec  # what a verifier of the format says

    outcomes = AppendEvents(store, clock).append(lines)

    assert len(outcomes) == len(faults.node) == len(lines)
    for number, (outcome, verdict) in enumerate(zip(outcomes, faults.node, strict=True), start=1):
        assert outcome.verdict == verdict, f"line {number}: {outcome}"
        assert outcome.code == faults.codes.get(number - 1, outcome.code), f"line {number}"
    assert set(faults.codes) == {i for i, v in enumerate(faults.node) if v == "refused"}
    stored = [o.id for o in outcomes if o.stored]
    assert sum(store.tree_size(c) for c in store.coops()) == len(stored)
    assert sorted(e.event_id for c in store.coops() for e in store.entries(c)) == sorted(stored)

    first_at = {}
    for line, outcome in zip(lines, outcomes, strict=True):
        if outcome.stored:
            d = json.loads(line)
            first_at[(d["coop"], d["author"], d["seq"])] = d["id"]
    forks = [json.loads(ln) for ln, v in zip(lines, faults.node, strict=True) if v == "fork"]
    assert [f["id"] for f in forks] == [faults.fork.id]  # type: ignore[union-attr]
    held = [f for c in store.coops() for f in store.quarantined(c)]
    assert [(f.event.id, f.conflicts_with) for f in held] == [
        (d["id"], first_at[(d["coop"], d["author"], d["seq"])]) for d in forks
    ]


def test_importing_a_log_one_line_at_a_time_gives_the_same_log_as_one_batch(
    store: SqlEventStore, open_store: Callable[[], SqlEventStore], clock: Callable[[], int]
) -> None:
    events = two_coop_log()
    append = AppendEvents(store, clock)

    verdicts = [v for line in wires(events) for v in (o.verdict for o in append.append([line]))]

    assert verdicts == ["ok"] * len(events)
    food = of_coop(events, FOOD)
    assert store.root(FOOD, len(food)) == pure_tree(food).root()
    assert [e.wire for e in store.entries(FOOD)] == wires(food)


def test_importing_the_same_log_twice_changes_nothing_the_second_time(
    store: SqlEventStore, clock: Callable[[], int]
) -> None:
    events, _ = import_log(store, clock)
    before = everything(store)

    again = AppendEvents(store, clock).append(wires(events))

    assert {o.verdict for o in again} == {"duplicate"}
    assert everything(store) == before


def test_the_stored_root_equals_the_pure_tree_root_at_every_size_and_at_a_checkpoint(
    store: SqlEventStore, clock: Callable[[], int]
) -> None:
    events, _ = import_log(store, clock)
    food = of_coop(events, FOOD)
    tree = pure_tree(food)

    assert [e.event_id for e in store.entries(FOOD)] == [e.id for e in food]
    assert store.tree_size(FOOD) == tree.size == 29
    for size in range(1, tree.size + 1):
        assert store.root(FOOD, size) == tree.root(size), f"size {size}"
    node = key_for("node1")
    cp = IssueCheckpoint(store, AppendEvents(store, clock), node, clock).issue(FOOD)
    opened = open_checkpoint(cp.note, did_for("node1"))
    assert (opened.size, opened.root, cp.root) == (29, tree.root(), tree.root().hex())


def test_checkpoints_of_other_nodes_are_not_new_events_to_checkpoint(
    store: SqlEventStore, clock: Callable[[], int]
) -> None:
    """Two nodes replicating one coop must not answer each other's checkpoints for ever."""
    _, food = import_log(store, clock)
    append = AppendEvents(store, clock)
    one = IssueCheckpoint(store, append, key_for("node1"), clock)
    two = IssueCheckpoint(store, append, key_for("node2"), clock)
    one.issue(FOOD)
    assert one.new_events(FOOD) == 0
    two.issue(FOOD)  # arrives at node1 by replication, as it were
    assert one.new_events(FOOD) == 0 and two.new_events(FOOD) == 0
    payment = food.pay("alice", "bob", 1)
    assert [o.verdict for o in append.append([payment.wire_bytes()])] == ["ok"]
    assert one.new_events(FOOD) == 1 and two.new_events(FOOD) == 1


def test_every_inclusion_proof_equals_the_one_of_the_pure_tree(
    store: SqlEventStore, clock: Callable[[], int]
) -> None:
    events, _ = import_log(store, clock)
    food = of_coop(events, FOOD)
    tree = pure_tree(food)

    for size in range(1, tree.size + 1):
        for index in range(size):
            proof = store.inclusion_proof(FOOD, index, size)
            assert proof == merkle.inclusion_proof(tree.get, index, size), (index, size)
            leaf = merkle.leaf_hash(bytes.fromhex(food[index].id))
            merkle.verify_inclusion(leaf, index, size, proof, tree.root(size))


def test_every_consistency_proof_equals_the_one_of_the_pure_tree(
    store: SqlEventStore, clock: Callable[[], int]
) -> None:
    events, _ = import_log(store, clock)
    tree = pure_tree(of_coop(events, FOOD))

    for size2 in range(1, tree.size + 1):
        for size1 in range(size2 + 1):
            proof = store.consistency_proof(FOOD, size1, size2)
            assert proof == merkle.consistency_proof(tree.get, size1, size2), (size1, size2)
            merkle.verify_consistency(size1, size2, proof, tree.root(size1), tree.root(size2))


def test_proofs_beyond_the_log_are_refused(store: SqlEventStore, clock: Callable[[], int]) -> None:
    import_log(store, clock)

    with pytest.raises(ValueError):
        store.root(FOOD, 30)
    with pytest.raises(ValueError):
        store.inclusion_proof(FOOD, 3, 30)
    with pytest.raises(ValueError):
        store.consistency_proof(FOOD, 3, 30)


# -- the log's bytes --------------------------------------------------------------


def test_entries_are_the_input_lines_in_log_order_when_the_input_is_canonical(
    store: SqlEventStore, clock: Callable[[], int]
) -> None:
    events, _ = import_log(store, clock)
    lines = wires(events)
    assert all(msgspec.json.encode(json.loads(line), order="sorted") == line for line in lines)

    for coop in (FOOD, BIKE):
        entries = list(store.entries(coop))
        assert [e.wire for e in entries] == wires(of_coop(events, coop))
        assert [e.leaf_index for e in entries] == list(range(len(entries)))
        assert all(e.coop == coop for e in entries)
    tail = list(store.entries(FOOD, start=20))
    assert [e.leaf_index for e in tail] == list(range(20, 29))
    some = tail[3]
    assert store.find(some.event_id) == some
    assert store.find("0" * 64) is None


def test_pages_are_the_entries_after_a_leaf_in_log_order_with_their_filters(
    store: SqlEventStore, clock: Callable[[], int]
) -> None:
    """What ``GET /events`` serves (on SQLite one aggregated row per page): the same
    entries, bytes and trusted times as :meth:`entries`, filtered by type and author."""
    events, _ = import_log(store, clock)
    entries = list(store.entries(FOOD))
    assert store.page(FOOD, limit=1000) == entries
    assert store.page(FOOD, after=4, limit=7) == entries[5:12]
    assert store.page(FOOD, after=len(entries) - 1) == []
    assert store.page("no-such-coop") == []
    by_type = [e for e, ev in zip(entries, of_coop(events, FOOD), strict=True)
               if ev.type.startswith("ledger.")]  # fmt: skip
    assert store.page(FOOD, type_prefix="ledger.", limit=1000) == by_type
    author = of_coop(events, FOOD)[-1].author
    mine = [e for e, ev in zip(entries, of_coop(events, FOOD), strict=True) if ev.author == author]
    assert 0 < len(by_type) < len(entries) and len(mine) >= 3
    assert store.page(FOOD, author=author, after=mine[0].leaf_index, limit=2) == mine[1:3]


def test_entries_stream_a_log_longer_than_one_read_page_completely_and_in_order(
    store: SqlEventStore, clock: Callable[[], int]
) -> None:
    big = CoopScript("big-coop")
    payers = ["alice", "bob", "carol"]
    events = [big.found({n: [] for n in [*payers, "dave"]}, policy=UNLIMITED)]
    events += [big.pay(payers[i % 3], "dave", 1 + i % 97) for i in range(2300)]
    for start in range(0, len(events), 250):  # small batches: see the large-batch test below
        outcomes = AppendEvents(store, clock).append(wires(events[start : start + 250]))
        assert {o.verdict for o in outcomes} == {"ok"}

    assert [e.event_id for e in store.entries("big-coop")] == [e.id for e in events]
    assert [e.leaf_index for e in store.entries("big-coop", start=1999)] == list(range(1999, 2301))
    assert store.root("big-coop", 2301) == pure_tree(events).root()


def test_a_batch_of_the_size_an_import_sends_is_stored_in_one_append(
    store: SqlEventStore, clock: Callable[[], int]
) -> None:
    """About 3.5 MB: 60 events near the 64 KiB limit (the CLI sends up to 500 lines at once)."""
    bulk = CoopScript("bulk-coop")
    [founded] = AppendEvents(store, clock).append([bulk.found(policy=UNLIMITED).wire_bytes()])
    assert founded.verdict == "ok"
    alice, bob = bulk.did("alice"), bulk.did("bob")
    events = []
    for n in range(60):
        body = {
            "transactions": [
                {
                    "from": alice,
                    "to": bob,
                    "amount": k + 1,
                    "currency": "hours",
                    "memo": f"{n}/{k} " + "x" * 1000,
                }
                for k in range(50)
            ]
        }
        events.append(bulk.event("alice", ENTRY, body))
    lines = wires(events)
    assert 50_000 < max(len(ln) for ln in lines) <= 64 * 1024
    done: list[list[Outcome]] = []
    failed: list[BaseException] = []

    def append() -> None:
        try:
            done.append(AppendEvents(store, clock).append(lines))
        except BaseException as exc:  # the database is dropped under a hung append
            failed.append(exc)

    worker = threading.Thread(target=append, daemon=True)  # a hung append must not hang pytest
    worker.start()
    worker.join(30)

    assert done or failed, (
        f"appending {sum(map(len, lines))} bytes in one batch did not finish within 30 s"
    )
    assert not failed, failed
    assert [o.verdict for o in done[0]] == ["ok"] * len(lines)
    assert [e.wire for e in store.entries("bulk-coop")][1:] == lines
    account = json.loads(store.state_get("bulk-coop", "account", f"{bob}/hours") or b"{}")
    assert account["balance"] == 60 * sum(range(1, 51))


def test_entries_are_canonical_wire_bytes_even_when_the_input_was_not(
    store: SqlEventStore, clock: Callable[[], int]
) -> None:
    events = two_coop_log()
    lines = wires(events)
    scrambled = [
        json.dumps(dict(reversed(json.loads(line).items())), indent=1).encode() for line in lines
    ]
    assert all(s != line for s, line in zip(scrambled, lines, strict=True))

    outcomes = AppendEvents(store, clock).append(scrambled)

    assert {o.verdict for o in outcomes} == {"ok"}
    assert [e.wire for e in store.entries(FOOD)] == wires(of_coop(events, FOOD))


def test_a_reopened_store_serves_the_same_log(
    store: SqlEventStore, open_store: Callable[[], SqlEventStore], clock: Callable[[], int]
) -> None:
    events, _ = import_log(store, clock)
    before = visible(store, [FOOD, BIKE])
    store.close()

    again = open_store()

    assert visible(again, [FOOD, BIKE]) == before
    assert again.root(FOOD, 29) == pure_tree(of_coop(events, FOOD)).root()


# -- forks ------------------------------------------------------------------------


def founded_coops(store: SqlEventStore, clock: Callable[[], int], *coops: str) -> list[CoopScript]:
    """Found each coop (alice admin, bob, carol, dave; no credit worries); their scripts."""
    scripts = [CoopScript(c) for c in coops]
    members = {"alice": ["admin"], "bob": [], "carol": [], "dave": [], "erin": []}
    founding = [s.found(members, policy=UNLIMITED) for s in scripts]
    assert {o.verdict for o in AppendEvents(store, clock).append(wires(founding))} == {"ok"}
    return scripts


def test_a_second_event_at_an_occupied_seq_is_kept_as_evidence_and_never_stored(
    store: SqlEventStore, clock: Callable[[], int]
) -> None:
    append = AppendEvents(store, clock)
    [s] = founded_coops(store, clock, "fork-coop")
    alice, bob = s.did("alice"), s.did("bob")
    first, second = s.pay("alice", "bob", 1), s.pay("alice", "bob", 2)
    assert [o.verdict for o in append.append(wires([first, second]))] == ["ok", "ok"]
    rival = fork_of(s.key("alice"), second, bob)
    assert (rival.seq, rival.prev) == (2, first.id) and rival.id != second.id
    stored_before = count(store, stored_events)
    entries_before = list(store.entries("fork-coop"))
    state_before = store.state_get("fork-coop", "account", f"{alice}/hours")

    [outcome] = append.append(wires([rival]))

    assert (outcome.verdict, outcome.id) == ("fork", rival.id)
    [evidence] = store.quarantined("fork-coop")
    assert (evidence.event, evidence.wire, evidence.conflicts_with) == (
        rival,
        rival.wire_bytes(),
        second.id,
    )
    assert store.find(second.id) is not None and store.find(rival.id) is None
    assert store.head("fork-coop", alice).id == second.id  # type: ignore[union-attr]
    assert list(store.entries("fork-coop")) == entries_before
    assert count(store, stored_events) == stored_before
    assert store.state_get("fork-coop", "account", f"{alice}/hours") == state_before

    # Sending the evidence again keeps one copy of it.
    assert [o.verdict for o in append.append(wires([rival]))] == ["fork"]
    assert len(store.quarantined("fork-coop")) == 1


def test_the_store_itself_refuses_a_second_event_at_an_occupied_seq(
    store: SqlEventStore, clock: Callable[[], int]
) -> None:
    [s] = founded_coops(store, clock, "fork-coop")
    first = s.pay("alice", "bob", 1)
    assert AppendEvents(store, clock).append(wires([first]))[0].verdict == "ok"
    rival = fork_of(s.key("alice"), first, s.did("bob"))
    before = everything(store)

    with pytest.raises(ConcurrentAppend):
        store.append([Accepted(rival, rival.wire_bytes())], [], clock())

    assert everything(store) == before


def test_a_forked_author_gets_nothing_more_applied_in_that_coop(
    store: SqlEventStore, clock: Callable[[], int]
) -> None:
    append = AppendEvents(store, clock)
    s, elsewhere = founded_coops(store, clock, "fork-coop", "other-coop")
    bob = s.did("bob")
    one, two = s.pay("alice", "bob", 1), s.pay("alice", "bob", 1)
    append.append(wires([one, two, s.pay("carol", "bob", 1)]))
    append.append(wires([fork_of(s.key("alice"), two, bob)]))
    head = store.head("fork-coop", s.did("alice"))
    size = store.tree_size("fork-coop")

    later = s.pay("alice", "bob", 1)
    outcomes = append.append(
        wires([later, s.pay("carol", "bob", 1), elsewhere.pay("alice", "bob", 1)])
    )

    assert [(o.verdict, o.code) for o in outcomes] == [
        ("refused", "author-flagged"),
        ("ok", ""),
        ("ok", ""),
    ]
    assert outcomes[0].id == later.id and outcomes[0].position is None
    assert store.find(later.id) is None
    assert store.head("fork-coop", s.did("alice")) == head
    assert store.tree_size("fork-coop") == size + 1


# -- atomicity --------------------------------------------------------------------


BAD_LINES = ["bad-signature", "fork", "gap", "malformed"]


@pytest.mark.parametrize("bad", BAD_LINES)
def test_an_atomic_batch_with_one_bad_line_is_refused_whole_and_changes_nothing(
    bad: str, store: SqlEventStore, clock: Callable[[], int]
) -> None:
    events, food = import_log(store, clock)
    size = store.tree_size(FOOD)
    dave = food.did("dave")
    good1, good2 = food.pay("alice", "dave", 1), food.pay("bob", "dave", 1)
    wrong = {
        "bad-signature": lambda: msgspec.structs.replace(
            food.pay("bob", "dave", 2, advance=False), sig=good1.sig
        ).wire_bytes(),
        "fork": lambda: fork_of(
            food.key("alice"), last_of(events, food.did("alice")), dave
        ).wire_bytes(),
        "gap": lambda: resign(food.key("bob"), good2, seq=good2.seq + 1).wire_bytes(),
        "malformed": lambda: b'{"v": 1, "coop": "food-coop"}',
    }[bad]()
    duplicate = events[4].wire_bytes()
    batch = [good1.wire_bytes(), wrong, duplicate, good2.wire_bytes()]
    heads = {d: store.head(FOOD, d) for d in (food.did("alice"), food.did("bob"))}
    before = everything(store)

    with pytest.raises(BatchRefused) as refused:
        AppendEvents(store, clock).append(batch, atomic=True)

    assert (refused.value.line, refused.value.verdict) == (2, bad)
    assert everything(store) == before
    assert store.tree_size(FOOD) == size
    assert {d: store.head(FOOD, d) for d in heads} == heads
    assert store.quarantined(FOOD) == []

    # Without the bad line the batch goes through, duplicates and all.
    outcomes = AppendEvents(store, clock).append([batch[0], batch[2], batch[3]], atomic=True)
    assert [(o.verdict, o.position) for o in outcomes] == [
        ("ok", size),
        ("duplicate", None),
        ("ok", size + 1),
    ]


CRASHES = (RuntimeError, StoreError, PersistenceError)


def _writer_fails_after_its_rows(
    monkeypatch: pytest.MonkeyPatch, database: Database, last: Event
) -> Callable[[], None]:
    original = LogRowWriter.write

    def write_then_crash(self: LogRowWriter, c: Any, batch: Any) -> None:
        original(self, c, batch)  # the coop_state rows are the last it writes
        raise RuntimeError("simulated crash after the log rows were written")

    monkeypatch.setattr(LogRowWriter, "write", write_then_crash)
    return monkeypatch.undo


def _database_fails_on_the_stored_events(
    monkeypatch: pytest.MonkeyPatch, database: Database, last: Event
) -> Callable[[], None]:
    if database.is_sqlite:
        # Fires on the batch's last stored event: the others are inserted by then.
        write_sql(
            database,
            (
                "CREATE TRIGGER simulated_crash AFTER INSERT ON stored_events"
                # The chain key names the author by number (log_authors): find the
                # event by its id in the stored bytes instead.
                f' WHEN instr(CAST(NEW.state AS TEXT), \'"id":"{last.id}"\') > 0'
                f" AND NEW.originator_version = {last.seq}"
                " BEGIN SELECT RAISE(ABORT, 'simulated crash'); END"
            ),
        )
        return lambda: write_sql(database, "DROP TRIGGER simulated_crash")
    # Deferred: fires at COMMIT, after every row of the batch is written.
    write_sql(
        database,
        "CREATE FUNCTION simulated_crash() RETURNS trigger LANGUAGE plpgsql"
        " AS $$ BEGIN RAISE EXCEPTION 'simulated crash'; END $$",
        "CREATE CONSTRAINT TRIGGER simulated_crash AFTER INSERT ON stored_events"
        " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION simulated_crash()",
    )
    return lambda: write_sql(database, "DROP TRIGGER simulated_crash ON stored_events")


class FailsOnce:
    """The store, with a failed write reported as it is instead of retried as a lost race.

    (SQLite reports the simulated crash as a constraint failure, which the
    store turns into :class:`ConcurrentAppend`; the write path would retry it.)
    """

    def __init__(self, inner: SqlEventStore) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def append_decided(self, chains: Any, decide: Any) -> list[int]:
        try:
            return self._inner.append_decided(chains, decide)
        except ConcurrentAppend as exc:
            raise StoreError(str(exc)) from exc


@pytest.mark.parametrize("via", ["store-append", "write-path"])
@pytest.mark.parametrize(
    "crash",
    [_writer_fails_after_its_rows, _database_fails_on_the_stored_events],
    ids=["writer-fails-after-its-rows", "database-fails-on-the-stored-events"],
)
def test_a_batch_that_crashes_before_commit_leaves_no_trace(
    crash: Callable[..., Callable[[], None]],
    via: str,
    monkeypatch: pytest.MonkeyPatch,
    store: SqlEventStore,
    clock: Callable[[], int],
) -> None:
    events, food = import_log(store, clock)
    size = store.tree_size(FOOD)
    newcomer = CoopScript("crash-coop")
    alice, dave = food.did("alice"), food.did("dave")
    fork_of_dave = fork_of(food.key("dave"), last_of(events, dave), food.did("carol"))
    batch = [
        food.pay("alice", "carol", 1),
        food.pay("dave", "carol", 1),
        newcomer.found({"mallory": ["admin"], "carol": []}),
        newcomer.pay("mallory", "carol", 1),
        food.pay("alice", "carol", 2),
        newcomer.pay("mallory", "carol", 3),
    ]
    lines = [*wires(batch[:2]), fork_of_dave.wire_bytes(), *wires(batch[2:])]
    coops = [FOOD, BIKE, "crash-coop"]
    before_rows, before_api = everything(store), visible(store, coops)
    heads = {d: store.head(FOOD, d) for d in (alice, dave)}

    recover = crash(monkeypatch, store.database, batch[-1])
    with pytest.raises(CRASHES, match="simulated crash"):
        if via == "store-append":
            # The batch as AppendEvents would hand it over once judged.
            accepted = [Accepted(e, e.wire_bytes()) for e in batch]
            forks = [ForkEvidence(fork_of_dave, fork_of_dave.wire_bytes(), heads[dave].id)]  # type: ignore[union-attr]
            store.append(accepted, forks, clock())
        else:
            # Judged by the rules in the transaction: the coop_state rows are written too.
            AppendEvents(FailsOnce(store), clock).append(lines)  # type: ignore[arg-type]

    assert everything(store) == before_rows
    assert visible(store, coops) == before_api
    assert store.tree_size(FOOD) == size and store.tree_size("crash-coop") == 0
    assert {d: store.head(FOOD, d) for d in heads} == heads
    assert store.head("crash-coop", newcomer.did("mallory")) is None
    assert store.state_get("crash-coop", "coop", "") is None
    assert count(store, stored_events) == len(events)

    recover()
    outcomes = AppendEvents(store, clock).append(lines)
    assert [(o.verdict, o.position) for o in outcomes] == [
        ("ok", size),
        ("ok", size + 1),
        ("fork", None),
        ("ok", 0),
        ("ok", 1),
        ("ok", size + 2),
        ("ok", 2),
    ]
    assert store.stored_nodes(FOOD) == tree_of(store, FOOD).nodes
    assert (
        store.root(FOOD, size + 3)
        == pure_tree([*of_coop(events, FOOD), *batch[:2], batch[4]]).root()
    )
    carol = json.loads(
        store.state_get("crash-coop", "account", f"{food.did('carol')}/hours") or b"{}"
    )
    assert carol["balance"] == 4


# -- concurrent writers -------------------------------------------------------------


def test_two_stores_appending_the_same_judged_event_store_it_exactly_once(
    store: SqlEventStore, open_store: Callable[[], SqlEventStore], clock: Callable[[], int]
) -> None:
    events, food = import_log(store, clock)
    size = store.tree_size(FOOD)
    other = open_store()
    event = food.pay("bob", "carol", 1)
    inspection = inspect(event.wire_bytes())
    assert inspection.verdict is None and inspection.event is not None
    accepted = Accepted(inspection.event, inspection.wire)

    assert store.append([accepted], [], clock()) == [size]
    with pytest.raises(ConcurrentAppend):
        other.append([accepted], [], clock())

    assert store.tree_size(FOOD) == other.tree_size(FOOD) == size + 1
    assert [e.event_id for e in other.entries(FOOD, start=size)] == [event.id]
    assert count(store, stored_events) == len(events) + 1


class LosesTheRace:
    """A store whose writer is beaten to the write lock: a rival commits first.

    The write path judges inside the transaction, after the lock, so the
    late writer must see the rival's event, without any retry.
    """

    def __init__(self, inner: SqlEventStore, rival: Callable[[], object]) -> None:
        self._inner = inner
        self._rival: Callable[[], object] | None = rival
        self.conflicts = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def append_decided(self, chains: Any, decide: Any) -> list[int]:
        if self._rival is not None:
            rival, self._rival = self._rival, None
            rival()
        try:
            return self._inner.append_decided(chains, decide)
        except ConcurrentAppend:
            self.conflicts += 1
            raise


@pytest.mark.parametrize("same_event", [True, False], ids=["same-event", "different-event"])
def test_a_writer_beaten_to_the_lock_judges_against_the_winner_and_stores_nothing(
    same_event: bool,
    store: SqlEventStore,
    open_store: Callable[[], SqlEventStore],
    clock: Callable[[], int],
) -> None:
    _, food = import_log(store, clock)
    size = store.tree_size(FOOD)
    winner = food.pay("bob", "carol", 10, advance=False)
    loser_event = winner if same_event else food.pay("bob", "carol", 11, advance=False)
    results: list[list[Outcome]] = []
    rival = AppendEvents(store, clock)
    loser = LosesTheRace(open_store(), lambda: results.append(rival.append(wires([winner]))))

    [outcome] = AppendEvents(loser, clock).append(wires([loser_event]))  # type: ignore[arg-type]

    assert [[o.verdict for o in r] for r in results] == [["ok"]]
    assert loser.conflicts == 0
    assert store.tree_size(FOOD) == size + 1
    assert [e.event_id for e in store.entries(FOOD, start=size)] == [winner.id]
    if same_event:
        assert (outcome.verdict, outcome.id) == ("duplicate", winner.id)
        assert store.quarantined(FOOD) == []
    else:
        assert (outcome.verdict, outcome.id) == ("fork", loser_event.id)
        [evidence] = store.quarantined(FOOD)
        assert (evidence.event.id, evidence.conflicts_with) == (loser_event.id, winner.id)


def test_writers_racing_in_threads_store_each_event_exactly_once(
    open_store: Callable[[], SqlEventStore], clock: Callable[[], int]
) -> None:
    stores = [open_store() for _ in range(3)]
    race = CoopScript("race-coop")
    payers = ["alice", "bob", "carol"]
    rng = random.Random(7)
    events = [race.found({n: [] for n in [*payers, "dave"]})]
    events += [race.pay(rng.choice(payers), "dave", rng.randint(1, 9)) for _ in range(30)]
    lines = wires(events)  # every writer sends the founding too
    start = threading.Barrier(len(stores))
    results: dict[int, list[str]] = {}
    errors: list[BaseException] = []

    def write(n: int, store: SqlEventStore) -> None:
        try:
            append = AppendEvents(store, clock)
            start.wait()
            results[n] = [append.append([line])[0].verdict for line in lines]
        except BaseException as exc:  # reported below, with the thread's traceback
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n, s)) for n, s in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)

    assert not errors, errors
    for i in range(len(lines)):
        assert sorted(results[n][i] for n in results) == ["duplicate", "duplicate", "ok"], i
    reader = stores[0]
    assert [e.wire for e in reader.entries("race-coop")] == lines
    assert reader.stored_nodes("race-coop") == pure_tree(events).nodes
    dave = json.loads(
        reader.state_get("race-coop", "account", f"{race.did('dave')}/hours") or b"{}"
    )
    assert dave["balance"] == sum(e.body["transactions"][0]["amount"] for e in events[1:])


def test_writers_appending_different_chains_at_once_get_distinct_consecutive_leaves(
    open_store: Callable[[], SqlEventStore], clock: Callable[[], int]
) -> None:
    stores = [open_store() for _ in range(4)]
    [busy] = founded_coops(stores[0], clock, "busy-coop")
    payers = ["alice", "bob", "carol", "dave"]
    per_writer = [[busy.pay(p, "erin", k + 1) for k in range(15)] for p in payers]
    start = threading.Barrier(len(stores))
    results: dict[int, list[Outcome]] = {}
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            append = AppendEvents(stores[n], clock)
            start.wait()
            results[n] = [append.append([e.wire_bytes()])[0] for e in per_writer[n]]
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)

    assert not errors, errors
    assert all(o.verdict == "ok" for r in results.values() for o in r)
    positions = sorted(o.position for r in results.values() for o in r)  # type: ignore[type-var]
    assert positions == list(range(1, 61))  # leaf 0 is the founding
    reader = stores[0]
    by_leaf = {e.leaf_index: e.event_id for e in reader.entries("busy-coop")}
    for n, outcomes in results.items():
        assert [by_leaf[o.position] for o in outcomes] == [e.id for e in per_writer[n]]  # type: ignore[index]
    assert reader.stored_nodes("busy-coop") == tree_of(reader, "busy-coop").nodes


# -- the stored tree ------------------------------------------------------------------


def test_the_stored_tree_equals_a_recomputed_tree_after_batches_of_random_sizes(
    store: SqlEventStore, clock: Callable[[], int]
) -> None:
    rng = random.Random(20251122)
    coops = ["tree-coop", "other-coop"]
    names = ["alice", "bob", "carol", "dave"]
    members = {n: [] for n in [*names, "erin"]}
    scripts = {c: CoopScript(c) for c in coops}
    events = [s.found(members, policy=UNLIMITED) for s in scripts.values()]
    chains = [(scripts[c], n) for n in names for c in coops]
    for _ in range(150):
        script, payer = rng.choice(chains)
        events.append(script.pay(payer, "erin", rng.randint(1, 500)))
    trees = {c: merkle.MemoryTree() for c in coops}
    append = AppendEvents(store, clock)

    i = 0
    while i < len(events):
        batch = events[i : i + rng.randint(1, 33)]
        i += len(batch)
        outcomes = append.append(wires(batch))
        for event, outcome in zip(batch, outcomes, strict=True):
            tree = trees[event.coop]
            assert (outcome.verdict, outcome.position) == ("ok", tree.size)
            tree.append(merkle.leaf_hash(bytes.fromhex(event.id)))
        for coop, tree in trees.items():
            assert store.tree_size(coop) == tree.size
            assert store.stored_nodes(coop) == tree.nodes
            assert store.root(coop, tree.size) == tree.root()

    for coop, tree in trees.items():
        ids = [e.event_id for e in store.entries(coop)]
        for _ in range(40):
            size = rng.randint(1, tree.size)
            index = rng.randrange(size)
            proof = store.inclusion_proof(coop, index, size)
            assert proof == merkle.inclusion_proof(tree.get, index, size)
            leaf = merkle.leaf_hash(bytes.fromhex(ids[index]))
            merkle.verify_inclusion(leaf, index, size, proof, store.root(coop, size))

            size1 = rng.randint(0, size)
            proof = store.consistency_proof(coop, size1, size)
            assert proof == merkle.consistency_proof(tree.get, size1, size)
            merkle.verify_consistency(
                size1, size, proof, store.root(coop, size1), store.root(coop, size)
            )
