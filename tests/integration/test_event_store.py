"""The event store's contract, run against every backend (SQLite file and real PostgreSQL).

Each test gets a fresh database from the ``store_url`` fixture, which is
parametrized over the backends, so every sentence below holds for both.
Nothing is mocked: events are signed with the spec's vector keys and go
through the real write path (``AppendEvents``) into a real database.
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
from sqlalchemy import create_engine, func, select

from icn.application.append import AppendEvents, Outcome
from icn.application.errors import BatchRefused
from icn.application.ports import Accepted, ConcurrentAppend, ForkEvidence, StoreError
from icn.domain.events.envelope import Event, inspect, sign_event
from icn.domain.identity.did import did_from_public_key
from icn.domain.log import merkle
from icn.infrastructure.store import schema
from icn.infrastructure.store.database import Database
from icn.infrastructure.store.event_store import SqlEventStore
from icn.infrastructure.store.log_rows import LogRowWriter
from icn.infrastructure.store.reads import stored_events

FOOD = "food-coop"
ENTRY = "ledger.EntryRecorded"

# -- helpers ------------------------------------------------------------------


def did_of(key: SigningKey) -> str:
    return did_from_public_key(bytes(key.verify_key))


class Chain:
    """One author's chain in one coop: signs its next event on demand."""

    def __init__(self, key: SigningKey, coop: str, seq: int = 0, prev: str | None = None) -> None:
        self.key, self.coop, self.seq, self.prev = key, coop, seq, prev
        self.did = did_of(key)
        self.ts = 1_763_800_000_000

    @classmethod
    def resume(cls, store: SqlEventStore, key: SigningKey, coop: str) -> Chain:
        """The chain as the store has it, ready for the next event."""
        head = store.head(coop, did_of(key))
        chain = cls(key, coop, head.seq if head else 0, head.id if head else None)
        if head:
            chain.ts = head.ts
        return chain

    def sign(
        self, to: str, amount: int, *, seq: int | None = None, prev: str | None = None
    ) -> Event:
        """An entry at ``seq`` (default: the next one) without moving the chain."""
        seq = self.seq + 1 if seq is None else seq
        prev = self.prev if seq == self.seq + 1 else prev
        body = {
            "transactions": [
                {"from": self.did, "to": to, "amount": amount, "currency": "hours", "memo": None}
            ]
        }
        return sign_event(
            self.key, coop=self.coop, seq=seq, prev=prev, ts=self.ts + seq, type=ENTRY, body=body
        )

    def next(self, to: str, amount: int = 1) -> Event:
        """Sign the next entry and move the chain past it."""
        event = self.sign(to, amount)
        self.seq, self.prev = event.seq, event.id
        return event


def fork_of_head(store: SqlEventStore, key: SigningKey, coop: str, to: str) -> Event:
    """A different event at the seq of the author's last stored event in ``coop``."""
    head = store.head(coop, did_of(key))
    assert head is not None
    entry = store.find(head.id)
    assert entry is not None
    return Chain(key, coop, head.seq - 1, json.loads(entry.wire)["prev"]).sign(to, 4321)


def wires(events: Iterable[Event]) -> list[bytes]:
    return [e.wire_bytes() for e in events]


def vector_lines(vectors_dir: Path, name: str) -> list[bytes]:
    return (vectors_dir / name).read_bytes().splitlines()


def import_ok(store: SqlEventStore, clock: Callable[[], int], vectors_dir: Path) -> list[bytes]:
    lines = vector_lines(vectors_dir, "ok.jsonl")
    outcomes = AppendEvents(store, clock).append(lines)
    assert [o.verdict for o in outcomes] == ["ok"] * len(lines)
    return lines


def coop_of(line: bytes) -> str:
    return str(json.loads(line)["coop"])


def count(store: SqlEventStore, table: Any) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def everything(store: SqlEventStore) -> dict[str, list[str]]:
    """Every row of every table the store writes: equal dumps mean nothing changed."""
    dump = {}
    with store.engine.connect() as conn:
        for table in [stored_events, *schema.metadata.sorted_tables]:
            dump[table.name] = sorted(repr(tuple(r)) for r in conn.execute(select(table)))
    return dump


def visible(store: SqlEventStore, coops: Sequence[str]) -> dict[str, Any]:
    """What the store's own API shows for ``coops``."""
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
    }


def tree_of(store: SqlEventStore, coop: str) -> merkle.MemoryTree:
    """The coop's tree recomputed from its entries."""
    tree = merkle.MemoryTree()
    for entry in store.entries(coop):
        tree.append(merkle.leaf_hash(bytes.fromhex(entry.event_id)))
    return tree


def write_sql(database: Database, *statements: str) -> None:
    """Run DDL on the test database through a plain writer connection."""
    engine = create_engine(database.url)
    try:
        with engine.begin() as conn:
            for sql in statements:
                conn.exec_driver_sql(sql)
    finally:
        engine.dispose()


# -- the spec's vectors ---------------------------------------------------------


def test_importing_the_ok_vectors_stores_every_line_at_its_place_in_its_coop(
    store: SqlEventStore, clock: Callable[[], int], vectors_dir: Path
) -> None:
    lines = vector_lines(vectors_dir, "ok.jsonl")
    expected = json.loads((vectors_dir / "expected.json").read_text())["ok.jsonl"]["verdicts"]

    outcomes = AppendEvents(store, clock).append(lines)

    assert [o.verdict for o in outcomes] == expected == ["ok"] * len(lines)
    next_leaf: dict[str, int] = {}
    for line, outcome in zip(lines, outcomes, strict=True):
        coop = coop_of(line)
        assert outcome.position == next_leaf.get(coop, 0)
        assert outcome.id == json.loads(line)["id"]
        next_leaf[coop] = next_leaf.get(coop, 0) + 1
    assert store.coops() == sorted(next_leaf) == ["bike-coop", FOOD]
    assert {c: store.tree_size(c) for c in next_leaf} == {FOOD: 29, "bike-coop": 1}
    assert count(store, stored_events) == len(lines)


def test_importing_the_fault_vectors_gives_exactly_the_expected_verdict_for_every_line(
    store: SqlEventStore, clock: Callable[[], int], vectors_dir: Path
) -> None:
    lines = vector_lines(vectors_dir, "faults.jsonl")
    expected = json.loads((vectors_dir / "expected.json").read_text())["faults.jsonl"]["verdicts"]

    outcomes = AppendEvents(store, clock).append(lines)

    assert len(outcomes) == len(expected) == len(lines)
    for number, (outcome, verdict) in enumerate(zip(outcomes, expected, strict=True), start=1):
        assert outcome.verdict == verdict, f"line {number}: {outcome}"
    stored = [json.loads(line)["id"] for line, o in zip(lines, outcomes, strict=True) if o.stored]
    assert sum(store.tree_size(c) for c in store.coops()) == len(stored)
    assert sorted(e.event_id for c in store.coops() for e in store.entries(c)) == sorted(stored)

    first_at = {}
    for line, outcome in zip(lines, outcomes, strict=True):
        if outcome.stored:
            d = json.loads(line)
            first_at[(d["coop"], d["author"], d["seq"])] = d["id"]
    forks = [json.loads(line) for line, v in zip(lines, expected, strict=True) if v == "fork"]
    held = [f for c in store.coops() for f in store.quarantined(c)]
    assert [(f.event.id, f.conflicts_with) for f in held] == [
        (d["id"], first_at[(d["coop"], d["author"], d["seq"])]) for d in forks
    ]


def test_importing_the_vectors_one_line_at_a_time_gives_the_same_log_as_one_batch(
    store: SqlEventStore,
    open_store: Callable[[], SqlEventStore],
    clock: Callable[[], int],
    vectors_dir: Path,
) -> None:
    lines = vector_lines(vectors_dir, "ok.jsonl")
    append = AppendEvents(store, clock)

    verdicts = [v for line in lines for v in (o.verdict for o in append.append([line]))]

    assert verdicts == ["ok"] * len(lines)
    vectors = json.loads((vectors_dir / "merkle.json").read_text())
    assert store.root(FOOD, 29).hex() == vectors["checkpoint"]["root"]
    assert [e.wire for e in store.entries(FOOD)] == [ln for ln in lines if coop_of(ln) == FOOD]


def test_importing_the_same_log_twice_changes_nothing_the_second_time(
    store: SqlEventStore, clock: Callable[[], int], vectors_dir: Path
) -> None:
    lines = import_ok(store, clock, vectors_dir)
    before = everything(store)

    again = AppendEvents(store, clock).append(lines)

    assert {o.verdict for o in again} == {"duplicate"}
    assert everything(store) == before


def test_the_food_coop_root_equals_the_vector_root_at_every_size_and_at_the_checkpoint(
    store: SqlEventStore, clock: Callable[[], int], vectors_dir: Path
) -> None:
    import_ok(store, clock, vectors_dir)
    vectors = json.loads((vectors_dir / "merkle.json").read_text())

    assert [e.event_id for e in store.entries(FOOD)] == vectors["leaves"]
    checkpoint = vectors["checkpoint"]
    assert store.tree_size(FOOD) == checkpoint["size"] == 29
    assert store.root(FOOD, checkpoint["size"]).hex() == checkpoint["root"]
    for size, root in vectors["roots"].items():
        assert store.root(FOOD, int(size)).hex() == root, f"size {size}"


def test_every_vector_inclusion_proof_equals_the_one_the_store_returns(
    store: SqlEventStore, clock: Callable[[], int], vectors_dir: Path
) -> None:
    import_ok(store, clock, vectors_dir)
    vectors = json.loads((vectors_dir / "merkle.json").read_text())

    assert vectors["inclusion"]
    for case in vectors["inclusion"]:
        index, size = case["index"], case["size"]
        assert vectors["leaves"][index] == case["leaf"]
        proof = store.inclusion_proof(FOOD, index, size)
        assert [p.hex() for p in proof] == case["proof"], case
        leaf = merkle.leaf_hash(bytes.fromhex(case["leaf"]))
        merkle.verify_inclusion(leaf, index, size, proof, store.root(FOOD, size))


def test_every_vector_consistency_proof_equals_the_one_the_store_returns(
    store: SqlEventStore, clock: Callable[[], int], vectors_dir: Path
) -> None:
    import_ok(store, clock, vectors_dir)
    vectors = json.loads((vectors_dir / "merkle.json").read_text())

    assert vectors["consistency"]
    for case in vectors["consistency"]:
        size1, size2 = case["size1"], case["size2"]
        proof = store.consistency_proof(FOOD, size1, size2)
        assert [p.hex() for p in proof] == case["proof"], case
        merkle.verify_consistency(
            size1, size2, proof, store.root(FOOD, size1), store.root(FOOD, size2)
        )


def test_proofs_beyond_the_log_are_refused(
    store: SqlEventStore, clock: Callable[[], int], vectors_dir: Path
) -> None:
    import_ok(store, clock, vectors_dir)

    with pytest.raises(ValueError):
        store.root(FOOD, 30)
    with pytest.raises(ValueError):
        store.inclusion_proof(FOOD, 3, 30)
    with pytest.raises(ValueError):
        store.consistency_proof(FOOD, 3, 30)


# -- the log's bytes --------------------------------------------------------------


def test_entries_are_the_input_lines_in_log_order_when_the_input_is_canonical(
    store: SqlEventStore, clock: Callable[[], int], vectors_dir: Path
) -> None:
    lines = import_ok(store, clock, vectors_dir)
    assert all(msgspec.json.encode(json.loads(line), order="sorted") == line for line in lines)

    for coop in (FOOD, "bike-coop"):
        entries = list(store.entries(coop))
        assert [e.wire for e in entries] == [line for line in lines if coop_of(line) == coop]
        assert [e.leaf_index for e in entries] == list(range(len(entries)))
        assert all(e.coop == coop for e in entries)
    tail = list(store.entries(FOOD, start=20))
    assert [e.leaf_index for e in tail] == list(range(20, 29))
    some = tail[3]
    assert store.find(some.event_id) == some
    assert store.find("0" * 64) is None


def test_entries_stream_a_log_longer_than_one_read_page_completely_and_in_order(
    store: SqlEventStore, clock: Callable[[], int], vector_keys: dict[str, SigningKey]
) -> None:
    chains = [Chain(vector_keys[n], "big-coop") for n in ("alice", "bob", "carol")]
    sink = did_of(vector_keys["dave"])
    events = [chains[i % 3].next(sink, 1 + i % 97) for i in range(2300)]
    for start in range(0, len(events), 250):  # small batches: see the large-batch test below
        AppendEvents(store, clock).append(wires(events[start : start + 250]))

    assert [e.event_id for e in store.entries("big-coop")] == [e.id for e in events]
    assert [e.leaf_index for e in store.entries("big-coop", start=1999)] == list(range(1999, 2300))
    assert store.root("big-coop", 2300) == tree_of(store, "big-coop").root()


def test_a_batch_of_the_size_an_import_sends_is_stored_in_one_append(
    store: SqlEventStore, clock: Callable[[], int], vector_keys: dict[str, SigningKey]
) -> None:
    """About 3.5 MB: 60 events near the 64 KiB limit (the CLI sends up to 500 lines at once)."""
    alice = Chain(vector_keys["alice"], "bulk-coop")
    sink = did_of(vector_keys["bob"])
    events = []
    for n in range(60):
        event = alice.next(sink)
        body = {
            "transactions": [
                {
                    "from": alice.did,
                    "to": sink,
                    "amount": k + 1,
                    "currency": "hours",
                    "memo": f"{n}/{k} " + "x" * 1000,
                }
                for k in range(50)
            ]
        }
        event = sign_event(
            alice.key,
            coop=alice.coop,
            seq=event.seq,
            prev=event.prev,
            ts=event.ts,
            type=ENTRY,
            body=body,
        )
        alice.prev = event.id
        events.append(event)
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
    assert [e.wire for e in store.entries("bulk-coop")] == lines


def test_entries_are_canonical_wire_bytes_even_when_the_input_was_not(
    store: SqlEventStore, clock: Callable[[], int], vectors_dir: Path
) -> None:
    lines = vector_lines(vectors_dir, "ok.jsonl")
    scrambled = [
        json.dumps(dict(reversed(json.loads(line).items())), indent=1).encode() for line in lines
    ]
    assert all(s != line for s, line in zip(scrambled, lines, strict=True))

    outcomes = AppendEvents(store, clock).append(scrambled)

    assert {o.verdict for o in outcomes} == {"ok"}
    assert [e.wire for e in store.entries(FOOD)] == [ln for ln in lines if coop_of(ln) == FOOD]


def test_a_reopened_store_serves_the_same_log(
    store: SqlEventStore,
    open_store: Callable[[], SqlEventStore],
    clock: Callable[[], int],
    vectors_dir: Path,
) -> None:
    import_ok(store, clock, vectors_dir)
    before = visible(store, [FOOD, "bike-coop"])
    store.close()

    again = open_store()

    assert visible(again, [FOOD, "bike-coop"]) == before
    assert again.root(FOOD, 29) == tree_of(again, FOOD).root()


# -- forks ------------------------------------------------------------------------


def test_a_second_event_at_an_occupied_seq_is_kept_as_evidence_and_never_stored(
    store: SqlEventStore, clock: Callable[[], int], vector_keys: dict[str, SigningKey]
) -> None:
    append = AppendEvents(store, clock)
    alice = Chain(vector_keys["alice"], "fork-coop")
    bob = did_of(vector_keys["bob"])
    first, second = alice.next(bob), alice.next(bob, 2)
    assert [o.verdict for o in append.append(wires([first, second]))] == ["ok", "ok"]
    rival = alice.sign(bob, 999, seq=2, prev=first.id)
    assert rival.id != second.id
    stored_before = count(store, stored_events)
    entries_before = list(store.entries("fork-coop"))

    [outcome] = append.append(wires([rival]))

    assert (outcome.verdict, outcome.id) == ("fork", rival.id)
    [evidence] = store.quarantined("fork-coop")
    assert (evidence.event, evidence.wire, evidence.conflicts_with) == (
        rival,
        rival.wire_bytes(),
        second.id,
    )
    assert store.find(second.id) is not None and store.find(rival.id) is None
    assert store.head("fork-coop", alice.did).id == second.id  # type: ignore[union-attr]
    assert list(store.entries("fork-coop")) == entries_before
    assert count(store, stored_events) == stored_before

    # Sending the evidence again keeps one copy of it.
    assert [o.verdict for o in append.append(wires([rival]))] == ["fork"]
    assert len(store.quarantined("fork-coop")) == 1


def test_the_store_itself_refuses_a_second_event_at_an_occupied_seq(
    store: SqlEventStore, clock: Callable[[], int], vector_keys: dict[str, SigningKey]
) -> None:
    alice = Chain(vector_keys["alice"], "fork-coop")
    bob = did_of(vector_keys["bob"])
    first = alice.next(bob)
    AppendEvents(store, clock).append(wires([first]))
    rival = alice.sign(bob, 7, seq=1)
    before = everything(store)

    with pytest.raises(ConcurrentAppend):
        store.append([Accepted(rival, rival.wire_bytes())], [], clock())

    assert everything(store) == before


def test_a_forked_author_gets_nothing_more_applied_in_that_coop(
    store: SqlEventStore, clock: Callable[[], int], vector_keys: dict[str, SigningKey]
) -> None:
    append = AppendEvents(store, clock)
    alice = Chain(vector_keys["alice"], "fork-coop")
    carol = Chain(vector_keys["carol"], "fork-coop")
    elsewhere = Chain(vector_keys["alice"], "other-coop")
    bob = did_of(vector_keys["bob"])
    append.append(wires([alice.next(bob), alice.next(bob), carol.next(bob)]))
    append.append(wires([alice.sign(bob, 50, seq=2, prev=alice.prev)]))
    head = store.head("fork-coop", alice.did)
    size = store.tree_size("fork-coop")

    later = alice.next(bob)
    outcomes = append.append(wires([later, carol.next(bob), elsewhere.next(bob)]))

    assert [(o.verdict, o.code) for o in outcomes] == [
        ("refused", "author-flagged"),
        ("ok", ""),
        ("ok", ""),
    ]
    assert outcomes[0].id == later.id and outcomes[0].position is None
    assert store.find(later.id) is None
    assert store.head("fork-coop", alice.did) == head
    assert store.tree_size("fork-coop") == size + 1


# -- atomicity --------------------------------------------------------------------


BAD_LINES = ["bad-signature", "fork", "gap", "malformed"]


@pytest.mark.parametrize("bad", BAD_LINES)
def test_an_atomic_batch_with_one_bad_line_is_refused_whole_and_changes_nothing(
    bad: str,
    store: SqlEventStore,
    clock: Callable[[], int],
    vectors_dir: Path,
    vector_keys: dict[str, SigningKey],
) -> None:
    import_ok(store, clock, vectors_dir)
    alice = Chain.resume(store, vector_keys["alice"], FOOD)
    bob = Chain.resume(store, vector_keys["bob"], FOOD)
    dave = did_of(vector_keys["dave"])
    good1, good2 = alice.next(dave), bob.next(dave)
    wrong = {
        "bad-signature": lambda: msgspec.structs.replace(
            bob.next(dave), sig=good1.sig
        ).wire_bytes(),
        "fork": lambda: fork_of_head(store, vector_keys["alice"], FOOD, dave).wire_bytes(),
        "gap": lambda: bob.sign(dave, 3, seq=bob.seq + 2, prev=bob.prev).wire_bytes(),
        "malformed": lambda: b'{"v": 1, "coop": "food-coop"}',
    }[bad]()
    duplicate = vector_lines(vectors_dir, "ok.jsonl")[4]
    batch = [good1.wire_bytes(), wrong, duplicate, good2.wire_bytes()]
    heads = {d: store.head(FOOD, d) for d in (alice.did, bob.did)}
    before = everything(store)

    with pytest.raises(BatchRefused) as refused:
        AppendEvents(store, clock).append(batch, atomic=True)

    assert (refused.value.line, refused.value.verdict) == (2, bad)
    assert everything(store) == before
    assert store.tree_size(FOOD) == 29
    assert {d: store.head(FOOD, d) for d in heads} == heads
    assert store.quarantined(FOOD) == []

    # Without the bad line the batch goes through, duplicates and all.
    outcomes = AppendEvents(store, clock).append([batch[0], batch[2], batch[3]], atomic=True)
    assert [(o.verdict, o.position) for o in outcomes] == [
        ("ok", 29),
        ("duplicate", None),
        ("ok", 30),
    ]


CRASHES = (RuntimeError, StoreError, PersistenceError)


def _writer_fails_after_its_rows(
    monkeypatch: pytest.MonkeyPatch, database: Database, last: Event
) -> Callable[[], None]:
    original = LogRowWriter.write

    def write_then_crash(self: LogRowWriter, c: Any, batch: Any) -> None:
        original(self, c, batch)
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
                f" WHEN NEW.originator_id = '{last.coop}/{last.author}'"
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


@pytest.mark.parametrize(
    "crash",
    [_writer_fails_after_its_rows, _database_fails_on_the_stored_events],
    ids=["writer-fails-after-its-rows", "database-fails-on-the-stored-events"],
)
def test_a_batch_that_crashes_before_commit_leaves_no_trace(
    crash: Callable[..., Callable[[], None]],
    monkeypatch: pytest.MonkeyPatch,
    store: SqlEventStore,
    clock: Callable[[], int],
    vectors_dir: Path,
    vector_keys: dict[str, SigningKey],
) -> None:
    import_ok(store, clock, vectors_dir)
    carol = did_of(vector_keys["carol"])
    alice = Chain.resume(store, vector_keys["alice"], FOOD)
    dave = Chain.resume(store, vector_keys["dave"], FOOD)
    newcomer = Chain(vector_keys["mallory"], "crash-coop")
    fork_of_dave = fork_of_head(store, vector_keys["dave"], FOOD, carol)
    batch = [
        alice.next(carol),
        dave.next(carol),
        newcomer.next(carol),
        alice.next(carol, 2),
        newcomer.next(carol, 3),
    ]
    lines = [*wires(batch[:2]), fork_of_dave.wire_bytes(), *wires(batch[2:])]
    coops = [FOOD, "bike-coop", "crash-coop"]
    before_rows, before_api = everything(store), visible(store, coops)
    heads = {d: store.head(FOOD, d) for d in (alice.did, dave.did)}

    # The batch as AppendEvents would hand it over once judged.
    accepted = [Accepted(e, e.wire_bytes()) for e in batch]
    forks = [ForkEvidence(fork_of_dave, fork_of_dave.wire_bytes(), heads[dave.did].id)]  # type: ignore[union-attr]

    recover = crash(monkeypatch, store.database, batch[-1])
    with pytest.raises(CRASHES, match="simulated crash"):
        store.append(accepted, forks, clock())

    assert everything(store) == before_rows
    assert visible(store, coops) == before_api
    assert store.tree_size(FOOD) == 29 and store.tree_size("crash-coop") == 0
    assert {d: store.head(FOOD, d) for d in heads} == heads
    assert store.head("crash-coop", newcomer.did) is None
    assert count(store, stored_events) == 30

    recover()
    outcomes = AppendEvents(store, clock).append(lines)
    assert [(o.verdict, o.position) for o in outcomes] == [
        ("ok", 29),
        ("ok", 30),
        ("fork", None),
        ("ok", 0),
        ("ok", 31),
        ("ok", 1),
    ]
    assert store.stored_nodes(FOOD) == tree_of(store, FOOD).nodes
    assert store.root(FOOD, 32) == tree_of(store, FOOD).root()


# -- concurrent writers -------------------------------------------------------------


def test_two_stores_appending_the_same_judged_event_store_it_exactly_once(
    store: SqlEventStore,
    open_store: Callable[[], SqlEventStore],
    clock: Callable[[], int],
    vectors_dir: Path,
    vector_keys: dict[str, SigningKey],
) -> None:
    import_ok(store, clock, vectors_dir)
    other = open_store()
    event = Chain.resume(store, vector_keys["bob"], FOOD).next(did_of(vector_keys["carol"]))
    inspection = inspect(event.wire_bytes())
    assert inspection.verdict is None and inspection.event is not None
    accepted = Accepted(inspection.event, inspection.wire)

    assert store.append([accepted], [], clock()) == [29]
    with pytest.raises(ConcurrentAppend):
        other.append([accepted], [], clock())

    assert store.tree_size(FOOD) == other.tree_size(FOOD) == 30
    assert [e.event_id for e in other.entries(FOOD, start=29)] == [event.id]
    assert count(store, stored_events) == 31


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
    vectors_dir: Path,
    vector_keys: dict[str, SigningKey],
) -> None:
    import_ok(store, clock, vectors_dir)
    bob = Chain.resume(store, vector_keys["bob"], FOOD)
    carol = did_of(vector_keys["carol"])
    winner = bob.sign(carol, 10)
    loser_event = winner if same_event else bob.sign(carol, 11)
    results: list[list[Outcome]] = []
    rival = AppendEvents(store, clock)
    loser = LosesTheRace(open_store(), lambda: results.append(rival.append(wires([winner]))))

    [outcome] = AppendEvents(loser, clock).append(wires([loser_event]))  # type: ignore[arg-type]

    assert [[o.verdict for o in r] for r in results] == [["ok"]]
    assert loser.conflicts == 0
    assert store.tree_size(FOOD) == 30
    assert [e.event_id for e in store.entries(FOOD, start=29)] == [winner.id]
    if same_event:
        assert (outcome.verdict, outcome.id) == ("duplicate", winner.id)
        assert store.quarantined(FOOD) == []
    else:
        assert (outcome.verdict, outcome.id) == ("fork", loser_event.id)
        [evidence] = store.quarantined(FOOD)
        assert (evidence.event.id, evidence.conflicts_with) == (loser_event.id, winner.id)


def test_writers_racing_in_threads_store_each_event_exactly_once(
    open_store: Callable[[], SqlEventStore],
    clock: Callable[[], int],
    vector_keys: dict[str, SigningKey],
) -> None:
    stores = [open_store() for _ in range(3)]
    dave = did_of(vector_keys["dave"])
    chains = [Chain(vector_keys[n], "race-coop") for n in ("alice", "bob", "carol")]
    rng = random.Random(7)
    lines = [rng.choice(chains).next(dave, rng.randint(1, 9)).wire_bytes() for _ in range(30)]
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
    assert reader.stored_nodes("race-coop") == tree_of(reader, "race-coop").nodes


def test_writers_appending_different_chains_at_once_get_distinct_consecutive_leaves(
    open_store: Callable[[], SqlEventStore],
    clock: Callable[[], int],
    vector_keys: dict[str, SigningKey],
) -> None:
    stores = [open_store() for _ in range(4)]
    sink = did_of(vector_keys["node1"])
    chains = [Chain(vector_keys[n], "busy-coop") for n in ("alice", "bob", "carol", "dave")]
    per_writer = [[c.next(sink, k + 1) for k in range(15)] for c in chains]
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
    assert positions == list(range(60))
    reader = stores[0]
    by_leaf = {e.leaf_index: e.event_id for e in reader.entries("busy-coop")}
    for n, outcomes in results.items():
        assert [by_leaf[o.position] for o in outcomes] == [e.id for e in per_writer[n]]  # type: ignore[index]
    assert reader.stored_nodes("busy-coop") == tree_of(reader, "busy-coop").nodes


# -- the stored tree ------------------------------------------------------------------


def test_the_stored_tree_equals_a_recomputed_tree_after_batches_of_random_sizes(
    store: SqlEventStore, clock: Callable[[], int], vector_keys: dict[str, SigningKey]
) -> None:
    rng = random.Random(20251122)
    coops = ["tree-coop", "other-coop"]
    names = ["alice", "bob", "carol", "dave"]
    chains = [Chain(vector_keys[n], c) for n in names for c in coops]
    sink = did_of(vector_keys["node1"])
    events = [rng.choice(chains).next(sink, rng.randint(1, 500)) for _ in range(150)]
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
