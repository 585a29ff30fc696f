"""Trust queries on the read models' tables and the rules' records (icn.projections.trust_views).

The live graph is asked of two append-only tables: the latest statement per
(context, truster, subject), from the pair index, unless a revocation names
it. Standings and the coop's policy are the rules' own records
(``coop_state``), read by key range.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, exists, select
from sqlalchemy.sql import Select

from icn.infrastructure.store import read_schema as rs
from icn.infrastructure.store import schema
from icn.infrastructure.store.state_records import CoopStateRecords
from icn.projections.trust_views import AttestationRow, EpochRow


class SqlTrustReads(CoopStateRecords):
    """:class:`~icn.projections.trust_views.TrustReads` on the node's database."""

    def attestations(
        self,
        coop: str,
        *,
        context: str | None = None,
        truster: str | None = None,
        subject: str | None = None,
    ) -> list[AttestationRow]:
        a = rs.trust_attestations
        later = rs.trust_attestations.alias("later")
        r = rs.trust_revocations
        replaced = exists().where(
            later.c.coop == a.c.coop,
            later.c.context == a.c.context,
            later.c.truster == a.c.truster,
            later.c.subject == a.c.subject,
            later.c.leaf > a.c.leaf,
        )
        revoked = exists().where(and_(r.c.coop == a.c.coop, r.c.attestation == a.c.event_id))
        log = schema.log_entries
        trusted = (
            select(log.c.trusted_ms)
            .where(log.c.coop == a.c.coop, log.c.leaf_index == a.c.leaf)
            .scalar_subquery()
        )
        query: Select[Any] = select(
            a.c.event_id,
            a.c.leaf,
            a.c.context,
            a.c.truster,
            a.c.subject,
            a.c.score_ppm,
            a.c.ts,
            a.c.expires_ts,
            a.c.note,
            revoked,
            trusted,
        ).where(a.c.coop == coop, ~replaced)
        if context is not None:
            query = query.where(a.c.context == context)
        if truster is not None:
            query = query.where(a.c.truster == truster)
        if subject is not None:
            query = query.where(a.c.subject == subject)
        with self._engine.connect() as conn:
            rows = conn.execute(query.order_by(a.c.leaf)).all()
        return [
            AttestationRow(
                id=row[0],
                leaf=int(row[1]),
                context=row[2],
                truster=row[3],
                subject=row[4],
                score_ppm=int(row[5]),
                ts=int(row[6]),
                recorded_ms=int(row[6] if row[10] is None else row[10]),
                expires_ts=None if row[7] is None else int(row[7]),
                note=row[8],
                revoked=bool(row[9]),
            )
            for row in rows
        ]

    def epochs(self, coop: str) -> list[EpochRow]:
        e = rs.trust_epochs
        query = select(
            e.c.context, e.c.epoch, e.c.leaf, e.c.event_id, e.c.as_of, e.c.count, e.c.digest, e.c.ts
        ).where(e.c.coop == coop)
        with self._engine.connect() as conn:
            rows = conn.execute(query.order_by(e.c.leaf)).all()
        return [
            EpochRow(
                context=r[0],
                epoch=int(r[1]),
                leaf=int(r[2]),
                event_id=r[3],
                as_of=int(r[4]),
                count=int(r[5]),
                digest=r[6],
                ts=int(r[7]),
            )
            for r in rows
        ]
