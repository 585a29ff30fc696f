"""Filling ``log_upper_nodes`` in a store made before it (see the table's docstring).

New leaves write their upper hashes in their own transaction (``LogRowWriter``); a store
made before the table has none for its existing log. Proofs stay right without them (the
reads fall back to ``log_entries``), only slower, so the copy is made once at open, with
one statement: the upper hashes are the tail of ``log_entries.nodes``.
"""

from __future__ import annotations

from sqlalchemy import Engine, func, select
from sqlalchemy.dialects import postgresql, sqlite

from icn.infrastructure.store import schema

UPPER_META = "log-upper-nodes"
"""``node_meta`` key: :data:`FILLED` once every leaf before the table has its row."""
FILLED = "v1"


def backfill(engine: Engine) -> int:
    """Copy the upper hashes of every leaf that completes a subtree of
    :data:`~icn.infrastructure.store.schema.UPPER_LEVEL` or above, once; returns the rows
    written. "On conflict do nothing": two processes opening one store write the same rows.

    It reads ``log_entries`` whole (a few seconds at a million events), then notes it in
    ``node_meta``, so later opens skip it with one point read.
    """
    meta, e, u = schema.node_meta, schema.log_entries, schema.log_upper_nodes
    with engine.connect() as conn:
        if conn.execute(select(meta.c.value).where(meta.c.key == UPPER_META)).scalar() == FILLED:
            return 0
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    offset = 32 * schema.UPPER_LEVEL
    copy = (
        dialect.insert(u)
        .from_select(
            ["coop", "leaf_index", "nodes"],
            select(e.c.coop, e.c.leaf_index, func.substr(e.c.nodes, offset + 1)).where(
                func.length(e.c.nodes) > offset
            ),
        )
        .on_conflict_do_nothing()
    )
    with engine.begin() as conn:
        written = conn.execute(copy).rowcount
        conn.execute(
            dialect.insert(meta)
            .values(key=UPPER_META, value=FILLED)
            .on_conflict_do_update(index_elements=["key"], set_={"value": FILLED})
        )
    return max(written, 0)
