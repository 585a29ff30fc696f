"""The rows an append writes beside the stored events, in the same transaction.

Runs on the recorder's own DB-API cursor (SQLite or psycopg), after the
table lock or write lock is held, so the tree size it reads cannot move
under it. Appending reads one row (the tree's size and right edge, O(log n)
bytes) and writes one log row per event, carrying the subtree hashes that
event completes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import msgspec
from eventsourcing.persistence import StoredEvent

from icn.application.ports import Decide, Decision
from icn.domain.events.bodies import CHECKPOINT_ISSUED, COOP_FOUNDED
from icn.domain.events.chain import ChainHead
from icn.domain.log.merkle import Frontier, leaf_hash
from icn.infrastructure.store import standing_history
from icn.infrastructure.store.schema import UPPER_LEVEL, id_bytes
from icn.infrastructure.store.wire_packing import unpack


class Cursor(Protocol):
    """The DB-API subset used here (eventsourcing's SQLite wrapper and psycopg agree)."""

    def execute(self, sql: Any, params: Any = ...) -> Any: ...
    def executemany(self, sql: Any, params: Any) -> Any: ...
    def fetchall(self) -> Any: ...


HEADS_SQL = (
    "WITH n(name, did) AS (SELECT coop || '/' || id, did FROM log_authors"
    " WHERE coop = ? AND did IN ({marks}))"
    " SELECT 'h' AS k, n.did AS name, s.originator_version AS seq, s.state"
    " FROM n JOIN stored_events s ON s.originator_id = n.name AND s.originator_version ="
    " (SELECT MAX(m.originator_version) FROM stored_events m WHERE m.originator_id = n.name)"
    " UNION ALL SELECT 'a', did, id, NULL FROM log_authors WHERE coop = ? AND did IN ({marks})"
    " UNION ALL SELECT 'c', did, 0, NULL FROM coops WHERE coop = ?"
    " UNION ALL SELECT 'q', author, 0, NULL FROM quarantine WHERE coop = ? AND author IN ({marks})"
)
"""Heads, author numbers, coop DID and fork flags of some chains of one coop, in one
statement (parameters: coop, the DIDs; coop, the DIDs; coop; coop, the DIDs).

Each head is one scalar ``MAX`` per named originator, which SQLite and PostgreSQL
answer by one descent of the primary key (PostgreSQL: an index-only backward scan
with ``LIMIT 1``). ``MAX(...) GROUP BY originator_id`` over ``IN (...)`` did not:
both engines read the author's whole chain, so a single append at chain length
59,500 cost 13x one at 500 (PostgreSQL even chose a sequential scan of the table).
An author without a number (``log_authors``) has no chain yet.
"""


def heads_params(coop: str, names: Sequence[str]) -> list[Any]:
    """:data:`HEADS_SQL`'s parameters for ``names`` (author DIDs) of ``coop``."""
    return [coop, *names, coop, *names, coop, coop, *names]


class CursorView:
    """The chain state as the write transaction sees it (a ``StoreView``).

    Built after the write lock is taken: heads, the coop's DID and fork flags
    of the named chains are read in one statement per coop; anything else
    asked (an id deep in a chain, a chain not named) is read on demand.
    """

    def __init__(self, c: Cursor, placeholder: str, chains: Iterable[tuple[str, str]]) -> None:
        self._c = c
        self._p = placeholder
        self._heads: dict[tuple[str, str], ChainHead | None] = {}
        self._dids: dict[str, str | None] = {}
        self._flagged: set[tuple[str, str]] = set()
        self.numbers: dict[tuple[str, str], int] = {}
        """Author numbers (``log_authors``) of the chains read so far."""
        by_coop: dict[str, set[str]] = {}
        for coop, author in chains:
            by_coop.setdefault(coop, set()).add(author)
        for coop, authors in by_coop.items():
            self._prefetch(coop, sorted(authors))

    def _rows(self, sql: str, params: Sequence[Any]) -> list[Any]:
        self._c.execute(sql.replace("?", self._p), params)
        return list(self._c.fetchall())

    def _prefetch(self, coop: str, names: list[str]) -> None:
        sql = HEADS_SQL.format(marks=",".join("?" * len(names)))
        rows = self._rows(sql, heads_params(coop, names))
        self._dids[coop] = None
        for name in names:
            self._heads[(coop, name)] = None
        for r in rows:
            if r["k"] == "h":
                head = head_of(bytes(r["state"]))
                self._heads[(coop, r["name"])] = ChainHead(r["seq"], head.id, head.ts)
            elif r["k"] == "a":
                self.numbers[(coop, r["name"])] = int(r["seq"])
            elif r["k"] == "c":
                self._dids[coop] = r["name"]
            else:
                self._flagged.add((coop, r["name"]))

    def head(self, coop: str, author: str) -> ChainHead | None:
        key = (coop, author)
        if key not in self._heads:
            self._prefetch(coop, [author])
        return self._heads[key]

    def id_at(self, coop: str, author: str, seq: int) -> str | None:
        # Rare (duplicates and forks only): read the stored event by the
        # library's primary key rather than keep an index for it.
        self.head(coop, author)  # prefetches the author's number with the head
        number = self.numbers.get((coop, author))
        if number is None:
            return None
        rows = self._rows(
            "SELECT state FROM stored_events WHERE originator_id = ? AND originator_version = ?",
            [originator_id(coop, number), seq],
        )
        return id_of(bytes(rows[0]["state"])) if rows else None

    def coop_did(self, coop: str) -> str | None:
        if coop not in self._dids:
            rows = self._rows("SELECT did FROM coops WHERE coop = ?", [coop])
            self._dids[coop] = rows[0]["did"] if rows else None
        return self._dids[coop]

    def is_flagged(self, coop: str, author: str) -> bool:
        self.head(coop, author)  # prefetches the flag with the head
        return (coop, author) in self._flagged

    def state_get(self, coop: str, kind: str, key: str) -> bytes | None:
        rows = self._rows(
            "SELECT value FROM coop_state WHERE coop = ? AND kind = ? AND key = ?",
            [coop, kind, key],
        )
        return bytes(rows[0]["value"]) if rows else None

    def state_get_many(
        self, keys: Sequence[tuple[str, str, str]]
    ) -> dict[tuple[str, str, str], bytes]:
        # One statement for everything a batch's rules will read (row-value IN works
        # on SQLite >= 3.15 and PostgreSQL), instead of one round trip per record.
        found: dict[tuple[str, str, str], bytes] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), 300):
            chunk = unique[start : start + 300]
            values = ",".join(["(?, ?, ?)"] * len(chunk))
            rows = self._rows(
                "SELECT coop, kind, key, value FROM coop_state"
                f" WHERE (coop, kind, key) IN (VALUES {values})",
                [part for k in chunk for part in k],
            )
            for r in rows:
                found[(r["coop"], r["kind"], r["key"])] = bytes(r["value"])
        return found

    def state_scan(self, coop: str, kind: str, prefix: str) -> list[tuple[str, bytes]]:
        # The (coop, kind) part of the primary key bounds the read; the prefix is
        # tested here, not with a key range, since PostgreSQL may compare text by
        # locale. Only standing epochs ask this (rare: once per epoch).
        rows = self._rows(
            "SELECT key, value FROM coop_state WHERE coop = ? AND kind = ?", [coop, kind]
        )
        return sorted((r["key"], bytes(r["value"])) for r in rows if r["key"].startswith(prefix))

    def log_size(self, coop: str) -> int:
        rows = self._rows("SELECT size FROM log_trees WHERE coop = ?", [coop])
        return int(rows[0]["size"]) if rows else 0

    def event_wire(self, coop: str, event_id: str) -> bytes | None:
        rows = self._rows(
            "SELECT s.state FROM log_entries e JOIN stored_events s"
            " ON s.originator_id = e.coop || '/' || e.author AND s.originator_version = e.seq"
            " WHERE e.event_id = ? AND e.coop = ?",
            [id_bytes(event_id), coop],
        )
        return unpack(bytes(rows[0]["state"])) if rows else None


class LogUnit:
    """One write: the chains it touches, how to decide, and what came of it."""

    def __init__(self, chains: Iterable[tuple[str, str]], decide: Decide) -> None:
        self.chains = list(chains)
        self.decide = decide
        self.decision = Decision((), (), 0)
        self.positions: list[int] = []
        self.numbers: dict[tuple[str, str], int] = {}
        """The author number of every chain the decision appends to."""

    def run_decision(self, c: Cursor, placeholder: str) -> list[StoredEvent]:
        """Decide against the transaction's view; return the stored events to insert.

        An author's first event gives the author a number (``log_authors``), in this
        transaction. ``topic`` is left empty: the event's type is in its bytes and in
        ``log_entries``, and nothing reads the library's copy.
        """
        view = CursorView(c, placeholder, self.chains)
        self.decision = self.decide(view)
        numbers = self.numbers = view.numbers
        insert = "INSERT INTO log_authors (coop, did) VALUES (?, ?) RETURNING id"
        for a in self.decision.accepted:
            key = (a.event.coop, a.event.author)
            if key not in numbers:
                c.execute(insert.replace("?", placeholder), key)
                numbers[key] = int(c.fetchall()[0]["id"])
        return [
            StoredEvent(
                originator_id=originator_id(a.event.coop, numbers[(a.event.coop, a.event.author)]),
                originator_version=a.event.seq,
                topic="",
                state=a.wire,
            )
            for a in self.decision.accepted
        ]


class HeadFields(msgspec.Struct):
    """The members of a stored event a chain check needs (the rest is not decoded)."""

    id: str
    ts: int


_head_decoder = msgspec.json.Decoder(HeadFields)


def head_of(state: bytes) -> HeadFields:
    """``id`` and ``ts`` of a stored event's state (packed or not, see ``wire_packing``)."""
    return _head_decoder.decode(unpack(state))


def id_of(state: bytes) -> str:
    """The ``id`` member of a stored event's state."""
    return head_of(state).id


def originator_id(coop: str, number: int) -> str:
    """eventsourcing's originator for one author's chain in one coop: the coop and the
    author's number in ``log_authors`` (not the ~56-byte DID, see there)."""
    return f"{coop}/{number}"


class LogRowWriter:
    """Writes a :class:`LogBatch`'s rows with one database's placeholder style."""

    def __init__(self, placeholder: str) -> None:
        def q(sql: str) -> str:
            return sql.replace("?", placeholder)

        self.select_tree = q("SELECT size, edge FROM log_trees WHERE coop = ?")
        self.insert_entry = q(
            "INSERT INTO log_entries"
            " (coop, leaf_index, event_id, author, seq, type, ts, nodes, trusted_ms)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )
        self.insert_upper = q(
            "INSERT INTO log_upper_nodes (coop, leaf_index, nodes) VALUES (?, ?, ?)"
        )
        self.upsert_tree = q(
            "INSERT INTO log_trees (coop, size, edge) VALUES (?, ?, ?)"
            " ON CONFLICT (coop) DO UPDATE SET size = excluded.size, edge = excluded.edge"
        )
        self.insert_coop = q(
            "INSERT INTO coops (coop, did, founded_event_id) VALUES (?, ?, ?)"
            " ON CONFLICT (coop) DO NOTHING"
        )
        self.insert_checkpoint = q(
            "INSERT INTO checkpoints (event_id, coop, author, size, root, note, leaf_index)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)"
        )
        self.insert_fork = q(
            "INSERT INTO quarantine"
            " (coop, author, seq, event_id, conflicts_with, wire, received_ms)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (coop, event_id) DO NOTHING"
        )
        self.upsert_state = q(
            "INSERT INTO coop_state (coop, kind, key, value) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (coop, kind, key) DO UPDATE SET value = excluded.value"
        )
        self.insert_history = q(standing_history.INSERT)
        self._placeholder = placeholder

    def _frontier(self, c: Cursor, coop: str) -> Frontier:
        c.execute(self.select_tree, (coop,))
        rows = c.fetchall()
        if not rows:
            return Frontier()
        edge = bytes(rows[0]["edge"])
        return Frontier(rows[0]["size"], [edge[i : i + 32] for i in range(0, len(edge), 32)])

    def write(self, c: Cursor, batch: LogUnit) -> None:
        """Write every row of the unit's decision; fill ``batch.positions``."""
        decision = batch.decision
        by_coop: dict[str, list[int]] = {}
        for i, item in enumerate(decision.accepted):
            by_coop.setdefault(item.event.coop, []).append(i)
        positions = [0] * len(decision.accepted)
        entries, uppers, sizes, founded, cps = [], [], [], [], []
        for coop, indexes in by_coop.items():
            frontier = self._frontier(c, coop)
            for i in indexes:
                a = decision.accepted[i]
                e = a.event
                leaf = frontier.size
                positions[i] = leaf
                completed = frontier.append(leaf_hash(bytes.fromhex(e.id)))
                nodes = b"".join(h for _, _, h in completed)  # level 0 first
                if len(completed) > UPPER_LEVEL:
                    uppers.append((coop, leaf, nodes[32 * UPPER_LEVEL :]))
                author = batch.numbers[(coop, e.author)]
                entries.append(
                    (coop, leaf, id_bytes(e.id), author, e.seq, e.type, e.ts, nodes, a.trusted_ms)
                )
                if e.type == COOP_FOUNDED:
                    founded.append((coop, e.author, e.id))
                elif e.type == CHECKPOINT_ISSUED:
                    b = e.body
                    cps.append((e.id, coop, e.author, b["size"], b["root"], b["note"], leaf))
            sizes.append((coop, frontier.size, b"".join(frontier.edge())))
        if entries:
            c.executemany(self.insert_entry, entries)
            if uppers:
                c.executemany(self.insert_upper, uppers)
            c.executemany(self.upsert_tree, sizes)
        for row in founded:
            c.execute(self.insert_coop, row)
        if cps:
            c.executemany(self.insert_checkpoint, cps)
        if decision.forks:
            c.executemany(
                self.insert_fork,
                [
                    (
                        f.event.coop,
                        f.event.author,
                        f.event.seq,
                        f.event.id,
                        f.conflicts_with,
                        f.wire,
                        decision.received_ms,
                    )
                    for f in decision.forks
                ],
            )
        state, history = standing_history.split(decision.records)
        if state:
            c.executemany(self.upsert_state, [(r.coop, r.kind, r.key, r.value) for r in state])
        if history:
            c.executemany(self.insert_history, history)
        batch.positions = positions
