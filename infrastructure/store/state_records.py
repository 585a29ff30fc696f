"""The rules' own records (``coop_state``) as the read side asks for them.

Trust and governance documents compose read-model rows with records the rules
keep (standings, proposals, ballots, the coop's policy); both read those
records the same way, from here.
"""

from __future__ import annotations

from sqlalchemy import Engine, select

from icn.infrastructure.store import schema


class CoopStateRecords:
    """Records of ``coop_state`` by key, or by key prefix in key order."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def record(self, coop: str, kind: str, key: str) -> bytes | None:
        t = schema.coop_state
        with self._engine.connect() as conn:
            value = conn.execute(
                select(t.c.value).where(t.c.coop == coop, t.c.kind == kind, t.c.key == key)
            ).scalar()
        return bytes(value) if value is not None else None

    def records(self, coop: str, kind: str, prefix: str) -> list[bytes]:
        t = schema.coop_state
        # The prefix is tested here, not with a key range: PostgreSQL may compare text
        # by locale.
        query = select(t.c.key, t.c.value).where(t.c.coop == coop, t.c.kind == kind)
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        return [bytes(v) for k, v in sorted(rows) if k.startswith(prefix)]
