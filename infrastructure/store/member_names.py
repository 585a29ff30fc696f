"""The names read model's table (:mod:`icn.projections.member_names`) and its query.

Column names match the projection's table shape; the SQL side checks that at start.
"""

from __future__ import annotations

from sqlalchemy import Column, Connection, String, Table, Text, func, select

from icn.infrastructure.store.schema import BigInt, metadata

member_names = Table(
    "member_names",
    metadata,
    Column("coop", String(64), primary_key=True),
    Column("did", Text, primary_key=True),
    Column("leaf", BigInt, primary_key=True, autoincrement=False),
    Column("name", Text, nullable=False),
    Column("ts", BigInt, nullable=False),
    sqlite_with_rowid=False,
)
"""Every ``coop.ProfileUpdated``: a member's names in log order (the last is current)."""

NAMES_TABLES = (member_names,)
LOOKUP_CHUNK = 500
"""DIDs per query (SQLite binds at most 32,766 parameters; a page holds at most 1,000)."""


def current_names(conn: Connection, coop: str, dids: list[str]) -> dict[str, str]:
    """DID -> the name in each member's row with the highest leaf, for those among ``dids``
    who gave one (one indexed range per member: the table's key leads with (coop, did))."""
    t = member_names
    found: dict[str, str] = {}
    wanted = sorted(set(dids))
    for i in range(0, len(wanted), LOOKUP_CHUNK):
        chunk = wanted[i : i + LOOKUP_CHUNK]
        last = (
            select(t.c.did, func.max(t.c.leaf).label("leaf"))
            .where(t.c.coop == coop, t.c.did.in_(chunk))
            .group_by(t.c.did)
            .subquery()
        )
        query = (
            select(t.c.did, t.c.name)
            .join(last, (t.c.did == last.c.did) & (t.c.leaf == last.c.leaf))
            .where(t.c.coop == coop)
        )
        found.update((str(d), str(n)) for d, n in conn.execute(query))
    return found
