"""Contract queries on the read models' tables and the rules' records
(icn.projections.contract_views)."""

from __future__ import annotations

from sqlalchemy import select

from icn.infrastructure.store import contract_schema as cs
from icn.infrastructure.store import governance_schema as gs
from icn.infrastructure.store.state_records import CoopStateRecords
from icn.projections.contract_views import InvocationRow, OpenedRow, VersionRow


class SqlContractReads(CoopStateRecords):
    """:class:`~icn.projections.contract_views.ContractReads` on the node's database."""

    def versions(self, coop: str, name: str | None) -> list[VersionRow]:
        v = cs.contract_versions
        query = select(
            v.c.name, v.c.version, v.c.leaf, v.c.event_id, v.c.proposal, v.c.capabilities,
            v.c.fuel_limit, v.c.code, v.c.ts,
        ).where(v.c.coop == coop)  # fmt: skip
        if name is not None:
            query = query.where(v.c.name == name)
        with self._engine.connect() as conn:
            rows = conn.execute(query.order_by(v.c.name, v.c.version)).all()
        return [
            VersionRow(
                name=r[0], version=int(r[1]), leaf=int(r[2]), event_id=r[3], proposal=r[4],
                capabilities=r[5].split(), fuel_limit=int(r[6]), code=r[7], ts=int(r[8]),
            )
            for r in rows
        ]  # fmt: skip

    def counts(self, coop: str) -> dict[str, int]:
        c = cs.contract_counts
        with self._engine.connect() as conn:
            rows = conn.execute(select(c.c.name, c.c.invocations).where(c.c.coop == coop)).all()
        return {r[0]: int(r[1]) for r in rows}

    def invocations(self, coop: str, name: str, limit: int) -> list[InvocationRow]:
        i, x = cs.contract_invocations, cs.contract_executions
        query = (
            select(
                i.c.invocation,
                i.c.leaf,
                i.c.contract,
                i.c.rule,
                i.c.caller,
                i.c.args,
                i.c.schedule,
                i.c.ts,
                x.c.event_id,
                x.c.effects,
                x.c.fuel,
                x.c.failed,
            )
            .select_from(
                i.outerjoin(x, (x.c.coop == i.c.coop) & (x.c.invocation == i.c.invocation))
            )
            .where(i.c.coop == coop, i.c.contract == name)
            .order_by(i.c.leaf.desc())
            .limit(limit)
        )
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            InvocationRow(
                id=r[0], leaf=int(r[1]), contract=r[2], rule=r[3], caller=r[4], args=r[5],
                schedule=None if r[6] is None else int(r[6]), ts=int(r[7]), executed_event=r[8],
                effects=r[9].split() if r[9] else [], fuel=None if r[10] is None else int(r[10]),
                failed=r[11],
            )
            for r in rows
        ]  # fmt: skip

    def opened(self, coop: str, invocations: list[str]) -> list[OpenedRow]:
        o, p = cs.contract_proposals, gs.governance_proposals
        e, x = gs.governance_proposal_ends, gs.governance_executions
        if not invocations:
            return []
        query = (
            select(o.c.invocation, o.c.proposal, p.c.title, p.c.closes_at, e.c.state,
                   x.c.event_id, x.c.failed)
            .select_from(
                o.join(p, (p.c.coop == o.c.coop) & (p.c.proposal == o.c.proposal))
                .outerjoin(e, (e.c.coop == o.c.coop) & (e.c.proposal == o.c.proposal))
                .outerjoin(x, (x.c.coop == o.c.coop) & (x.c.proposal == o.c.proposal))
            )
            .where(o.c.coop == coop, o.c.invocation.in_(invocations))
            .order_by(o.c.leaf)
        )  # fmt: skip
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            OpenedRow(
                invocation=r[0], proposal=r[1], title=r[2], closes_at=int(r[3]),
                state=r[4] or "open", executed_event=r[5], failed=r[6],
            )
            for r in rows
        ]  # fmt: skip
