"""The rows an append writes beside the stored events, in the same transaction.

Runs on the recorder's own DB-API cursor (SQLite or psycopg), after the
table lock or write lock is held, so the tree size it reads cannot move
under it. Appending reads one row (the tree's size and right edge, O(log n)
bytes) and writes about two node rows per event.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from icn.application.ports import Accepted, ForkEvidence
from icn.domain.events.bodies import CHECKPOINT_ISSUED, COOP_FOUNDED
from icn.domain.log.merkle import Frontier, leaf_hash


class Cursor(Protocol):
    """The DB-API subset used here (eventsourcing's SQLite wrapper and psycopg agree)."""

    def execute(self, sql: Any, params: Any = ...) -> Any: ...
    def executemany(self, sql: Any, params: Any) -> Any: ...
    def fetchall(self) -> Any: ...


class LogBatch:
    """What one append hands to the recorder, and the leaf indexes it gets back."""

    def __init__(
        self, accepted: Sequence[Accepted], forks: Sequence[ForkEvidence], received_ms: int
    ) -> None:
        self.accepted = accepted
        self.forks = forks
        self.received_ms = received_ms
        self.positions: list[int] = []


class LogRowWriter:
    """Writes a :class:`LogBatch`'s rows with one database's placeholder style."""

    def __init__(self, placeholder: str) -> None:
        def q(sql: str) -> str:
            return sql.replace("?", placeholder)

        self.select_tree = q("SELECT size, edge FROM log_trees WHERE coop = ?")
        self.insert_entry = q(
            "INSERT INTO log_entries (coop, leaf_index, event_id, author, seq, type, ts)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)"
        )
        self.insert_node = q(
            "INSERT INTO merkle_nodes (coop, level, idx, hash) VALUES (?, ?, ?, ?)"
        )
        self.upsert_head = q(
            "INSERT INTO chain_heads (coop, author, seq, event_id, ts) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (coop, author) DO UPDATE SET seq = excluded.seq,"
            " event_id = excluded.event_id, ts = excluded.ts"
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
        self._placeholder = placeholder

    def _frontier(self, c: Cursor, coop: str) -> Frontier:
        c.execute(self.select_tree, (coop,))
        rows = c.fetchall()
        if not rows:
            return Frontier()
        edge = bytes(rows[0]["edge"])
        return Frontier(rows[0]["size"], [edge[i : i + 32] for i in range(0, len(edge), 32)])

    def write(self, c: Cursor, batch: LogBatch) -> None:
        """Write every row of ``batch``; fill ``batch.positions``."""
        by_coop: dict[str, list[int]] = {}
        for i, item in enumerate(batch.accepted):
            by_coop.setdefault(item.event.coop, []).append(i)
        positions = [0] * len(batch.accepted)
        entries, nodes, heads, sizes, founded, cps = [], [], [], [], [], []
        for coop, indexes in by_coop.items():
            frontier = self._frontier(c, coop)
            for i in indexes:
                e = batch.accepted[i].event
                leaf = frontier.size
                positions[i] = leaf
                nodes += [
                    (coop, lvl, idx, h)
                    for lvl, idx, h in frontier.append(leaf_hash(bytes.fromhex(e.id)))
                ]
                entries.append((coop, leaf, e.id, e.author, e.seq, e.type, e.ts))
                heads.append((coop, e.author, e.seq, e.id, e.ts))
                if e.type == COOP_FOUNDED:
                    founded.append((coop, e.author, e.id))
                elif e.type == CHECKPOINT_ISSUED:
                    b = e.body
                    cps.append((e.id, coop, e.author, b["size"], b["root"], b["note"], leaf))
            sizes.append((coop, frontier.size, b"".join(frontier.edge())))
        if entries:
            c.executemany(self.insert_entry, entries)
            c.executemany(self.insert_node, nodes)
            c.executemany(self.upsert_head, heads)
            c.executemany(self.upsert_tree, sizes)
        for row in founded:
            c.execute(self.insert_coop, row)
        if cps:
            c.executemany(self.insert_checkpoint, cps)
        if batch.forks:
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
                        batch.received_ms,
                    )
                    for f in batch.forks
                ],
            )
        batch.positions = positions
