"""Reading trust: standings, paths, the graph, epochs, and each member's attestations.

Every route needs a token of the path's coop with the ``ledger:read`` scope
(any member: trust is read by the same people who read the books). The
attestations and epochs come from the trust projections, current with every
answered write (``ReadSide.fresh``); standings from the rules' records, current
by construction. Bad query values get problem documents with stable codes: ``invalid-context``,
``invalid-score``, ``invalid-did``. Attestations and revocations are written
through ``POST /v1/coops/{coop}/events`` like every other event; epochs by the
node's duty, or on request (``POST …/trust/epochs``, scope ``events:write``).
"""

from __future__ import annotations

import os
from typing import Annotated

import msgspec
from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter

from icn.application.errors import did_of
from icn.domain.events.canonical import MAX_SAFE_INT
from icn.infrastructure.passphrase import ENV_PASSPHRASE, ENV_PASSPHRASE_FILE, resolve_passphrase
from icn.infrastructure.store.event_store import SqlEventStore
from icn.infrastructure.store.read_models import ReadSide
from icn.infrastructure.store.standing_history import StandingHistoryReads
from icn.infrastructure.store.trust_reads import SqlTrustReads
from icn.interfaces.bootstrap import clock_ms
from icn.interfaces.http.coop_paths import COOP_ROUTES, CoopPath
from icn.interfaces.http.dependencies import FeedDep, NodeDep, ReadsDep, StoreDep
from icn.interfaces.http.gate import needs
from icn.interfaces.http.problems import ApiProblem, problem_responses
from icn.projections import trust_views as views
from icn.projections.trust_book import TrustBook

ContextParam = Annotated[
    str | None,
    QueryParameter(
        max_length=32,
        description="general, ledger, governance or compute (default general)",
    ),
]
READ_ERRORS = (401, 403, 404)
"""What every trust read may answer besides 200 (problem documents)."""


class StandingAt(msgspec.Struct):
    """A member's standing at one epoch."""

    epoch: int
    standing_ppm: int
    normalised_ppm: int
    trust_class: str = msgspec.field(name="class")


class StandingHistory(msgspec.Struct):
    """One page of a member's standings over epochs in one context."""

    coop: str
    did: str
    context: str
    standings: list[StandingAt]
    next: int | None


def _reads(reads: ReadSide, store: SqlEventStore, coop: str) -> SqlTrustReads:
    """The trust queries, current with every answered write (``ReadSide.fresh``)."""
    reads.fresh(coop)
    return SqlTrustReads(store.engine)


class TrustController(Controller):
    """Standing, paths, the graph, epochs and attestations (scope ``ledger:read``)."""

    path = COOP_ROUTES
    tags = ("trust",)
    opt = needs("ledger:read")

    @get("/trust/standing", sync_to_thread=True, responses=problem_responses(*READ_ERRORS))
    def get_standing(
        self, reads: ReadsDep, store: StoreDep, coop: CoopPath, context: ContextParam = None
    ) -> views.StandingPage:
        """Every member's standing at the last epoch of ``context`` (``epoch`` null before the
        first): ``standing_ppm`` (share of the whole), ``normalised_ppm`` (against a typical
        member's) and the class it falls in."""
        ctx = views.context_of(context)
        return views.standing(_reads(reads, store, coop), coop, ctx)

    @get(
        "/trust/standing/{did:str}", sync_to_thread=True, responses=problem_responses(*READ_ERRORS)
    )
    def get_member_standing(
        self,
        trust: NamedDependency[TrustBook],
        coop: CoopPath,
        did: FromPath[str],
        context: ContextParam = None,
    ) -> views.MemberStandings:
        """One member's standing in ``context``, or in every context that has an epoch
        (answered from memory, read again when this node commits an epoch)."""
        ctx = views.context_of(context) if context is not None else None
        return trust.member(coop, did_of(did), ctx)

    @get(
        "/trust/standing/{did:str}/history",
        sync_to_thread=True,
        responses=problem_responses(*READ_ERRORS),
    )
    def get_standing_history(
        self,
        store: StoreDep,
        coop: CoopPath,
        did: FromPath[str],
        context: ContextParam = None,
        after: Annotated[int, QueryParameter(ge=0, le=MAX_SAFE_INT)] = 0,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
    ) -> StandingHistory:
        """One member's standing and class in ``context`` at every epoch after ``after``,
        oldest first, ``limit`` at a time (``next``: the ``after`` of the next page, null at
        the end). Epochs at which the member was not active have no row. The class is the one
        under the coop's policy at that epoch. Kept by the write path as each epoch is
        accepted; ``icn replay`` rebuilds and compares it."""
        ctx = views.context_of(context)
        member = did_of(did)
        views.founded(SqlTrustReads(store.engine), coop)
        rows = StandingHistoryReads(store.engine).page(
            coop, member, ctx, after=after, limit=limit + 1
        )
        page = [StandingAt(e, s, n, c) for e, s, n, c in rows[:limit]]
        more = len(rows) > limit
        return StandingHistory(coop, member, ctx, page, page[-1].epoch if more else None)

    @get(
        "/trust/path/{source:str}/{target:str}",
        sync_to_thread=True,
        responses=problem_responses(*READ_ERRORS),
    )
    def get_path(
        self,
        reads: ReadsDep,
        trust: NamedDependency[TrustBook],
        coop: CoopPath,
        source: FromPath[str],
        target: FromPath[str],
        context: ContextParam = None,
    ) -> views.PathView:
        """The best product of edge weights from ``source`` to ``target`` within the coop's
        ``max_hops``, with each attestation on the way ("how do I know them?"). For people
        only: a ring of Sybils has full path scores, so no permission reads this. The graph
        is kept in memory and read again when this node commits an attestation or a
        revocation (or after a few seconds)."""
        ctx = views.context_of(context)
        a, b = did_of(source), did_of(target)
        reads.fresh(coop)
        return trust.path(coop, a, b, ctx)

    @get("/trust/graph", sync_to_thread=True, responses=problem_responses(*READ_ERRORS))
    def get_graph(
        self,
        reads: ReadsDep,
        store: StoreDep,
        coop: CoopPath,
        context: ContextParam = None,
        min_score_ppm: Annotated[int, QueryParameter(ge=-MAX_SAFE_INT, le=MAX_SAFE_INT)] = 0,
    ) -> views.GraphView:
        """The live attestations of ``context`` scoring at least ``min_score_ppm``, and the
        members on them or with a standing (their standing and class): for a picture."""
        ctx, floor = views.context_of(context), views.score_of(min_score_ppm)
        return views.graph(_reads(reads, store, coop), coop, ctx, floor, clock_ms())

    @get("/trust/epochs", sync_to_thread=True, responses=problem_responses(*READ_ERRORS))
    def get_epochs(self, reads: ReadsDep, store: StoreDep, coop: CoopPath) -> views.EpochList:
        """Every published standing epoch of every context, in log order."""
        return views.epochs(_reads(reads, store, coop), coop)

    @get(
        "/members/{did:str}/attestations",
        sync_to_thread=True,
        responses=problem_responses(*READ_ERRORS),
    )
    def get_attestations(
        self, reads: ReadsDep, store: StoreDep, coop: CoopPath, did: FromPath[str]
    ) -> views.MemberAttestations:
        """What the member vouched for (``given``) and who vouched for them (``received``):
        each current statement, revoked ones flagged, replaced ones left out."""
        return views.member_attestations(_reads(reads, store, coop), coop, did_of(did))


class PublishedEpochs(msgspec.Struct):
    """The epochs one request published."""

    coop: str
    published: list[views.EpochView]


class TrustDutyController(Controller):
    """Publishing standing on demand (scope ``events:write``): the node signs with the coop's
    key, which it keeps (its passphrase in ICN_PASSPHRASE or ICN_PASSPHRASE_FILE)."""

    path = COOP_ROUTES
    tags = ("trust",)
    opt = needs("events:write")

    @post(
        "/trust/epochs",
        sync_to_thread=True,
        status_code=201,
        responses=problem_responses(*READ_ERRORS, 409, 503),
    )
    def publish_epochs(
        self, node: NodeDep, feed: FeedDep, coop: CoopPath, context: ContextParam = None
    ) -> PublishedEpochs:
        """Publish the next standing epoch of ``context`` now, or of every context that has
        had an attestation (``icn trust publish``). An epoch is what every node recomputes,
        so anyone may ask for one; ``coop-key-not-held`` when this node does not keep the
        coop's key, ``epoch-out-of-order`` or ``standing-mismatch`` when the log moved."""
        ctx = views.context_of(context) if context is not None else None
        if not (os.environ.get(ENV_PASSPHRASE) or os.environ.get(ENV_PASSPHRASE_FILE)):
            raise ApiProblem(503, "coop-key-locked", "this node has no passphrase to sign with")
        key = node.coop_key(coop, resolve_passphrase())
        if key is None:
            raise ApiProblem(409, "coop-key-not-held", f"this node does not keep {coop}'s key")
        events = node.epochs.publish_now(coop, key, ctx)
        if events:
            feed.notify(coop)
        return PublishedEpochs(
            coop,
            [
                views.EpochView(
                    e.body["context"], e.body["epoch"], e.body["as_of"], e.body["count"],
                    e.body["digest"], e.id,
                )
                for e in events
            ],
        )  # fmt: skip
