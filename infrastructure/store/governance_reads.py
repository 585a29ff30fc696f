"""Governance queries on the read models' tables and the rules' records
(icn.projections.governance_views).

A proposal's state is asked of the append-only tables: its end row (closed,
withdrawn, vetoed) if any, else ``open``; its execution row and its summed
vote events are joined in. The live delegations naming a member are the
latest row per (domain, member), found like trust's live attestations (no
later row of the same pair). Ballots and domains are the rules' own records
(``coop_state``), read by key.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.sql import Select

from icn.domain.governance.bodies import Counts
from icn.domain.governance.records import BallotRecord
from icn.infrastructure.store import governance_schema as gs
from icn.infrastructure.store import schema
from icn.infrastructure.store.state_records import CoopStateRecords
from icn.projections.governance_views import (
    CharterRow,
    DelegationRow,
    DomainRow,
    ProposalRow,
    VoteRow,
)

_COUNTS = (
    "yes", "no", "abstain", "block", "yes_weight", "no_weight", "abstain_weight", "block_weight",
)  # fmt: skip


def _proposal_query() -> Select[Any]:
    p, e = gs.governance_proposals, gs.governance_proposal_ends
    x, v = gs.governance_executions, gs.governance_vote_counts
    return select(
        p.c.proposal, p.c.leaf, p.c.domain, p.c.author, p.c.title, p.c.text, p.c.action_kind,
        p.c.opens_at, p.c.closes_at, p.c.appeal, p.c.ts,
        e.c.state, e.c.leaf, e.c.event_id, e.c.ts, e.c.reason,
        *[e.c[c] for c in _COUNTS], e.c.eligible, e.c.counted, e.c.ballots_digest,
        x.c.event_id, x.c.effects, x.c.failed,
        v.c.casts, v.c.commitments, v.c.reveals,
    ).select_from(
        p.outerjoin(e, (e.c.coop == p.c.coop) & (e.c.proposal == p.c.proposal))
        .outerjoin(x, (x.c.coop == p.c.coop) & (x.c.proposal == p.c.proposal))
        .outerjoin(v, (v.c.coop == p.c.coop) & (v.c.proposal == p.c.proposal))
    )  # fmt: skip


def _proposal_row(r: Any) -> ProposalRow:
    counts = None
    if r[11] is not None and r[16] is not None:  # closed: the close's tally
        counts = Counts(**{c: int(r[16 + i]) for i, c in enumerate(_COUNTS)})
    return ProposalRow(
        id=r[0], leaf=int(r[1]), domain=r[2], author=r[3], title=r[4], text=r[5],
        action_kind=r[6], opens_at=None if r[7] is None else int(r[7]), closes_at=int(r[8]),
        appeal=r[9], submitted_ts=int(r[10]), state=r[11] or "open",
        ended_leaf=None if r[12] is None else int(r[12]), ended_event=r[13],
        ended_ts=None if r[14] is None else int(r[14]), reason=r[15], counts=counts,
        eligible=None if r[24] is None else int(r[24]),
        counted=None if r[25] is None else int(r[25]), ballots_digest=r[26],
        executed_event=r[27], effects=r[28].split() if r[28] else [], failed=r[29],
        casts=int(r[30] or 0), commitments=int(r[31] or 0), reveals=int(r[32] or 0),
    )  # fmt: skip


def _delegation(r: Any) -> DelegationRow:
    return DelegationRow(
        leaf=int(r[0]), event_id=r[1], domain=r[2], member=r[3], to=r[4], ts=int(r[5])
    )


class SqlGovernanceReads(CoopStateRecords):
    """:class:`~icn.projections.governance_views.GovernanceReads` on the node's database."""

    def proposals(
        self, coop: str, *, state: str | None, domain: str | None, after: int | None, limit: int
    ) -> list[ProposalRow]:
        p, e = gs.governance_proposals, gs.governance_proposal_ends
        query = _proposal_query().where(p.c.coop == coop)
        if state == "open":
            query = query.where(e.c.state.is_(None))
        elif state is not None:
            query = query.where(e.c.state == state)
        if domain is not None:
            query = query.where(p.c.domain == domain)
        if after is not None:
            query = query.where(p.c.leaf > after)
        with self._engine.connect() as conn:
            rows = conn.execute(query.order_by(p.c.leaf).limit(limit)).all()
        return [_proposal_row(r) for r in rows]

    def proposal(self, coop: str, proposal_id: str) -> ProposalRow | None:
        p = gs.governance_proposals
        query = _proposal_query().where(p.c.coop == coop, p.c.proposal == proposal_id)
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else _proposal_row(row)

    def votes_of(self, coop: str, voter: str) -> list[VoteRow]:
        v = gs.governance_votes
        query = select(
            v.c.leaf, v.c.proposal, v.c.event_id, v.c.voter, v.c.kind, v.c.choice, v.c.credits,
            v.c.commitment, v.c.reason, v.c.ts,
        ).where(v.c.coop == coop, v.c.voter == voter)  # fmt: skip
        with self._engine.connect() as conn:
            rows = conn.execute(query.order_by(v.c.leaf)).all()
        return [
            VoteRow(
                leaf=int(r[0]),
                proposal=r[1],
                event_id=r[2],
                voter=r[3],
                kind=r[4],
                choice=r[5],
                credits=None if r[6] is None else int(r[6]),
                commitment=r[7],
                reason=r[8],
                ts=int(r[9]),
            )
            for r in rows
        ]

    def _delegation_query(self) -> Select[Any]:
        d = gs.governance_delegations
        return select(d.c.leaf, d.c.event_id, d.c.domain, d.c.member, d.c.delegate, d.c.ts)

    def delegations_of(self, coop: str, did: str) -> list[DelegationRow]:
        d = gs.governance_delegations
        query = self._delegation_query().where(d.c.coop == coop, d.c.member == did)
        with self._engine.connect() as conn:
            return [_delegation(r) for r in conn.execute(query.order_by(d.c.leaf))]

    def delegators(self, coop: str, did: str) -> list[DelegationRow]:
        d = gs.governance_delegations
        later = gs.governance_delegations.alias("later")
        replaced = exists().where(
            later.c.coop == d.c.coop,
            later.c.domain == d.c.domain,
            later.c.member == d.c.member,
            later.c.leaf > d.c.leaf,
        )
        query = self._delegation_query().where(d.c.coop == coop, d.c.delegate == did, ~replaced)
        with self._engine.connect() as conn:
            return [_delegation(r) for r in conn.execute(query.order_by(d.c.leaf))]

    def charter(self, coop: str) -> list[CharterRow]:
        c = gs.governance_charter
        query = select(
            c.c.section, c.c.leaf, c.c.event_id, c.c.proposal, c.c.text, c.c.rationale, c.c.ts
        ).where(c.c.coop == coop)
        with self._engine.connect() as conn:
            rows = conn.execute(query.order_by(c.c.leaf)).all()
        found = [
            CharterRow(
                section=r[0],
                leaf=int(r[1]),
                event_id=r[2],
                proposal=r[3],
                text=r[4],
                rationale=r[5],
                ts=int(r[6]),
            )
            for r in rows
        ]
        return sorted(found, key=lambda r: (r.section, r.leaf))

    def domain_versions(self, coop: str, domain: str | None) -> list[DomainRow]:
        d = gs.governance_domains
        query = select(
            d.c.domain, d.c.leaf, d.c.event_id, d.c.kind, d.c.proposal, d.c.rules, d.c.ts
        ).where(d.c.coop == coop)
        if domain is not None:
            query = query.where(d.c.domain == domain)
        with self._engine.connect() as conn:
            rows = conn.execute(query.order_by(d.c.domain, d.c.leaf)).all()
        return [
            DomainRow(
                domain=r[0], leaf=int(r[1]), event_id=r[2], kind=r[3], proposal=r[4],
                rules=r[5], ts=int(r[6]),
            )
            for r in rows
        ]  # fmt: skip

    def ballots(self, coop: str, proposal_id: str, after: str | None, limit: int) -> list[bytes]:
        t = schema.coop_state
        # Keys are "<proposal>/<voter>": the page is the range (proposal/after, proposal0)
        # ('0' follows '/'), compared by code point (PostgreSQL's C collation; its default
        # follows the locale).
        key = t.c.key.collate("C") if self._engine.dialect.name == "postgresql" else t.c.key
        start = f"{proposal_id}/{after or ''}"
        query = (
            select(t.c.value)
            .where(t.c.coop == coop, t.c.kind == BallotRecord.kind)
            .where(key > start if after else key >= start, key < f"{proposal_id}0")
            .order_by(key)
            .limit(limit)
        )
        with self._engine.connect() as conn:
            return [bytes(v) for v in conn.execute(query).scalars()]
