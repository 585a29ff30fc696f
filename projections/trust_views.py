"""What members read about trust: standings, paths, the graph, epochs, attestations.

One place composes the trust read models' rows with the rules' records
(standings at the last epoch, the coop's trust policy) into the documents the
HTTP API answers and ``icn trust … --json`` prints, so the two never disagree.
"Now" (for expiry and decay of path weights) is passed in, never read here.

Path weights decay from the attestation's ``ts`` (the truster's date), since
the read model keeps what the event says; standing decays from the trusted
time the rules recorded. A path is for people and decides nothing, so the
difference (the clock skew a node allows) never reaches a decision.
"""

from __future__ import annotations

from typing import Protocol

import msgspec

from icn.application.coop_view import decode_record
from icn.application.errors import InvalidRequest, NotFound
from icn.domain.coop.records import PPM, CoopRecord
from icn.domain.trust import bodies as b
from icn.domain.trust.classes import classify
from icn.domain.trust.paths import best_path
from icn.domain.trust.records import EpochRecord, StandingRecord
from icn.domain.trust.standing import edge_weight


class InvalidContextError(InvalidRequest):
    """A context that is not one of ``general``, ``ledger``, ``governance``, ``compute``."""

    code = "invalid-context"


class InvalidScoreError(InvalidRequest):
    """A score outside 0..1,000,000 ppm."""

    code = "invalid-score"


# -- rows, as the read models hold them ------------------------------------------------


class AttestationRow(msgspec.Struct, frozen=True, kw_only=True):
    """The current statement of one truster about one subject in one context (revoked
    ones too, flagged): a row of the read model, and what the API shows of it."""

    id: str
    leaf: int
    """Its position in the coop's log."""
    context: str
    truster: str
    subject: str
    score_ppm: int
    ts: int
    recorded_ms: int
    """Trusted time of its event (the author's ``ts`` in stores older than that column):
    where its decay starts, as in standing, so a path decays exactly as standing does."""
    expires_ts: int | None
    note: str | None
    revoked: bool

    def live_at(self, now_ms: int) -> bool:
        """Counts in the graph at ``now_ms``: not revoked, not expired."""
        return not self.revoked and (self.expires_ts is None or now_ms < self.expires_ts)


class EpochRow(msgspec.Struct, frozen=True, kw_only=True):
    """One published epoch."""

    context: str
    epoch: int
    leaf: int
    event_id: str
    as_of: int
    count: int
    digest: str
    ts: int


class TrustReads(Protocol):
    """What the trust documents are made of."""

    def attestations(
        self,
        coop: str,
        *,
        context: str | None = None,
        truster: str | None = None,
        subject: str | None = None,
    ) -> list[AttestationRow]:
        """Current statements (not replaced by a later one), revoked ones flagged, log order."""
        ...

    def epochs(self, coop: str) -> list[EpochRow]:
        """Every published epoch in log order."""
        ...

    def record(self, coop: str, kind: str, key: str) -> bytes | None:
        """One record of the coop rules' state."""
        ...

    def records(self, coop: str, kind: str, prefix: str) -> list[bytes]:
        """Every record of ``kind`` whose key starts with ``prefix``, in key order."""
        ...


# -- documents ----------------------------------------------------------------------------


class EpochView(msgspec.Struct):
    """An epoch as published."""

    context: str
    epoch: int
    as_of: int
    count: int
    digest: str
    event_id: str | None = None


class MemberStandingView(msgspec.Struct):
    """One member's standing at the last epoch of one context."""

    did: str
    context: str
    epoch: int
    standing_ppm: int
    """Share of the coop's whole standing."""
    normalised_ppm: int
    """Against a typical member's, capped at 1,000,000: what the class reads."""
    trust_class: str = msgspec.field(name="class")


class StandingPage(msgspec.Struct):
    """Every member's standing in one context, at its last epoch (``epoch`` null: none yet)."""

    coop: str
    context: str
    epoch: EpochView | None
    members: list[MemberStandingView]


class MemberStandings(msgspec.Struct):
    """One member's standing in every context that has an epoch."""

    coop: str
    did: str
    standings: list[MemberStandingView]


class EdgeView(msgspec.Struct):
    """One live attestation as the graph and paths show it."""

    truster: str
    subject: str
    context: str
    score_ppm: int
    weight_ppm: int
    """The score after decay, now: what a path multiplies."""
    ts: int
    """When it was recorded: its event's trusted time, where its decay starts."""
    expires_ts: int | None
    attestation: str


class PathView(msgspec.Struct):
    """The best path from one member to another within ``max_hops``; for people only."""

    coop: str
    context: str
    source: str = msgspec.field(name="from")
    target: str = msgspec.field(name="to")
    max_hops: int = 3
    found: bool = False
    score_ppm: int = 0
    path: list[EdgeView] = msgspec.field(default_factory=list)


class NodeView(msgspec.Struct):
    """A member in the graph, with their standing at the last epoch (0 when none)."""

    did: str
    standing_ppm: int
    trust_class: str = msgspec.field(name="class")


class GraphView(msgspec.Struct):
    """The live graph of one context: for a picture."""

    coop: str
    context: str
    min_score_ppm: int
    nodes: list[NodeView]
    edges: list[EdgeView]


class EpochList(msgspec.Struct):
    """Every epoch of the coop, in log order."""

    coop: str
    epochs: list[EpochView]


class MemberAttestations(msgspec.Struct):
    """What a member said about others, and what others said about them."""

    coop: str
    did: str
    given: list[AttestationRow]
    received: list[AttestationRow]


# -- checks -------------------------------------------------------------------------------


def context_of(value: str | None) -> str:
    """A context as asked for (``general`` when not given), or ``invalid-context``."""
    if value is None:
        return "general"
    if value not in b.CONTEXTS:
        raise InvalidContextError(f"{value!r} is not a context (one of {', '.join(b.CONTEXTS)})")
    return value


def score_of(value: int) -> int:
    """A score in ppm, or ``invalid-score``."""
    if not 0 <= value <= PPM:
        raise InvalidScoreError(f"{value} is outside 0..{PPM} ppm")
    return value


def founded(reads: TrustReads, coop: str) -> CoopRecord:
    """The coop's record, or not found."""
    raw = reads.record(coop, CoopRecord.kind, "")
    record = decode_record(CoopRecord.kind, raw) if raw is not None else None
    if not isinstance(record, CoopRecord):
        raise NotFound(f"coop {coop} has not been founded on this node")
    return record


# -- views --------------------------------------------------------------------------------


def _epoch_view(r: EpochRecord) -> EpochView:
    return EpochView(r.context, r.epoch, r.as_of, r.count, r.digest)


def _standings(reads: TrustReads, coop: str, prefix: str) -> list[StandingRecord]:
    found = [decode_record(StandingRecord.kind, v) for v in reads.records(coop, "standing", prefix)]
    return [r for r in found if isinstance(r, StandingRecord)]


def _member_view(record: CoopRecord, s: StandingRecord) -> MemberStandingView:
    cls = classify(s.normalised_ppm, record.policy.trust)
    return MemberStandingView(s.did, s.context, s.epoch, s.standing_ppm, s.normalised_ppm, cls)


def standing(reads: TrustReads, coop: str, context: str) -> StandingPage:
    """Every member's standing at the last epoch of ``context``, by DID."""
    record = founded(reads, coop)
    raw = reads.record(coop, EpochRecord.kind, context)
    last = decode_record(EpochRecord.kind, raw) if raw is not None else None
    epoch = _epoch_view(last) if isinstance(last, EpochRecord) and last.epoch > 0 else None
    members = [_member_view(record, s) for s in _standings(reads, coop, f"{context}/")]
    return StandingPage(coop, context, epoch, members)


def member_standing(reads: TrustReads, coop: str, did: str, context: str | None) -> MemberStandings:
    """One member's standing in ``context``, or in every context that has an epoch."""
    record = founded(reads, coop)
    found: list[MemberStandingView] = []
    for ctx in [context] if context else b.CONTEXTS:
        raw = reads.record(coop, StandingRecord.kind, f"{ctx}/{did}")
        s = decode_record(StandingRecord.kind, raw) if raw is not None else None
        if isinstance(s, StandingRecord):
            found.append(_member_view(record, s))
    return MemberStandings(coop, did, found)


def _edges(reads: TrustReads, record: CoopRecord, context: str, now_ms: int) -> list[EdgeView]:
    half_life = record.policy.trust.half_life_days
    rows = reads.attestations(record.coop, context=context)
    return [
        EdgeView(
            a.truster,
            a.subject,
            a.context,
            a.score_ppm,
            edge_weight(a.score_ppm, a.recorded_ms, now_ms, half_life),
            a.recorded_ms,
            a.expires_ts,
            a.id,
        )
        for a in rows
        if a.live_at(now_ms)
    ]


class LiveGraph(msgspec.Struct):
    """The live attestations of one context as the path score reads them."""

    max_hops: int
    edges: dict[tuple[str, str], EdgeView]
    out_edges: dict[str, dict[str, int]]
    """truster → {subject → weight}: positive weights only."""
    in_edges: dict[str, dict[str, int]]


def live_graph(reads: TrustReads, coop: str, context: str, now_ms: int) -> LiveGraph:
    """The live graph of ``context`` with weights decayed to ``now_ms``."""
    record = founded(reads, coop)
    edges = {(e.truster, e.subject): e for e in _edges(reads, record, context, now_ms)}
    out_edges: dict[str, dict[str, int]] = {}
    in_edges: dict[str, dict[str, int]] = {}
    for (a, z), e in edges.items():
        if e.weight_ppm > 0:
            out_edges.setdefault(a, {})[z] = e.weight_ppm
            in_edges.setdefault(z, {})[a] = e.weight_ppm
    return LiveGraph(record.policy.trust.max_hops, edges, out_edges, in_edges)


def path_in(graph: LiveGraph, coop: str, source: str, target: str, context: str) -> PathView:
    """The best path from ``source`` to ``target`` in ``graph``."""
    best = best_path(graph.out_edges, graph.in_edges, source, target, graph.max_hops)
    view = PathView(coop, context, source, target, graph.max_hops)
    if best is not None:
        view.found, view.score_ppm = True, best.score_ppm
        view.path = [graph.edges[(p.truster, p.subject)] for p in best.path]
    return view


def path(
    reads: TrustReads, coop: str, source: str, target: str, context: str, now_ms: int
) -> PathView:
    """The best path from ``source`` to ``target`` over the live graph (weights decayed now)."""
    return path_in(live_graph(reads, coop, context, now_ms), coop, source, target, context)


def graph(reads: TrustReads, coop: str, context: str, min_score_ppm: int, now_ms: int) -> GraphView:
    """Live edges of ``context`` scoring at least ``min_score_ppm``, and every member on them
    or with a standing."""
    record = founded(reads, coop)
    edges = [e for e in _edges(reads, record, context, now_ms) if e.score_ppm >= min_score_ppm]
    standings = {s.did: s for s in _standings(reads, coop, f"{context}/")}
    dids = sorted(set(standings) | {e.truster for e in edges} | {e.subject for e in edges})
    nodes = []
    for did in dids:
        s = standings.get(did)
        ppm, normalised = (s.standing_ppm, s.normalised_ppm) if s else (0, 0)
        nodes.append(NodeView(did, ppm, classify(normalised, record.policy.trust)))
    return GraphView(coop, context, min_score_ppm, nodes, edges)


def epochs(reads: TrustReads, coop: str) -> EpochList:
    """Every published epoch, in log order."""
    founded(reads, coop)
    return EpochList(
        coop,
        [
            EpochView(e.context, e.epoch, e.as_of, e.count, e.digest, e.event_id)
            for e in reads.epochs(coop)
        ],
    )


def member_attestations(reads: TrustReads, coop: str, did: str) -> MemberAttestations:
    """Every current statement ``did`` made, and every one made about them."""
    founded(reads, coop)
    given = reads.attestations(coop, truster=did)
    return MemberAttestations(coop, did, given, reads.attestations(coop, subject=did))
