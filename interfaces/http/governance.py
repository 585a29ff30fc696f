"""Reading governance: domains (each with every version of its rules), proposals, live
tallies, ballots, a member's votes, the charter (each section with every version).

Every route needs a token of the path's coop with the ``ledger:read`` scope
(any member: the people who vote read the votes). Proposal lists, votes,
delegations and the charter come from the governance projections, brought up
to the log first; domains, ballots and proposals' rules from the rules'
records, current by construction; an open proposal's tally from memory
(:class:`~icn.projections.governance_book.GovernanceBook`, moved by every
vote this node commits), a closed one's from its ``governance.ProposalClosed``.
Bad input gets problem documents with stable codes: ``invalid-state``,
``invalid-domain`` and ``unknown-domain`` (400; ``unknown-domain`` is 404 for
``/domains/{domain}``, a resource that is not there), ``invalid-did`` (400),
``unknown-proposal`` and ``unknown-section`` (404). Proposals, votes and delegations are written as
signed events through ``POST /v1/coops/{coop}/events``.
"""

from __future__ import annotations

from typing import Annotated

import anyio
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter

from icn.application.errors import did_of
from icn.domain.events.canonical import MAX_SAFE_INT
from icn.domain.governance.records import ProposalState
from icn.infrastructure.store.event_store import SqlEventStore
from icn.infrastructure.store.governance_reads import SqlGovernanceReads
from icn.infrastructure.store.read_models import ReadSide
from icn.interfaces.bootstrap import clock_ms
from icn.interfaces.http.coop_paths import COOP_ROUTES, CoopPath
from icn.interfaces.http.dependencies import ReadsDep, StoreDep
from icn.interfaces.http.gate import needs
from icn.interfaces.http.problems import problem_responses
from icn.projections import governance_views as views
from icn.projections.governance_book import GovernanceBook

Limit = Annotated[int, QueryParameter(ge=1, le=views.MAX_PAGE)]
READ_ERRORS = (401, 403, 404)
"""What every governance read may answer besides 200 (problem documents)."""


def _sql(store: SqlEventStore) -> SqlGovernanceReads:
    return SqlGovernanceReads(store.engine)


def _fresh(reads: ReadSide, store: SqlEventStore, coop: str) -> SqlGovernanceReads:
    """The governance queries, current with every answered write (``ReadSide.fresh``)."""
    reads.fresh(coop)
    return _sql(store)


def _tally(
    reads: ReadSide, store: SqlEventStore, book: GovernanceBook, coop: str, proposal_id: str
) -> views.TallyView:
    """The tally asked of the store: the records, the live count, the close's row if closed."""
    views.founded(_sql(store), coop)
    found = book.read(coop, proposal_id, clock_ms())
    if found is None:
        raise views.UnknownProposalError(f"no proposal {proposal_id} in {coop}")
    p, live = found
    row = None
    if p.state != ProposalState.OPEN:
        row = _fresh(reads, store, coop).proposal(coop, p.id)
    return views.tally_view(coop, p, row, live)


class GovernanceController(Controller):
    """Domains, proposals, tallies, ballots, votes and the charter (scope ``ledger:read``)."""

    path = COOP_ROUTES
    tags = ("governance",)
    opt = needs("ledger:read")

    @get("/domains", sync_to_thread=True, responses=problem_responses(*READ_ERRORS))
    def list_domains(self, store: StoreDep, coop: CoopPath) -> views.DomainList:
        """Every governance domain with its rules as they stand: voting method, threshold,
        quorum, periods, who may propose and vote, sealed ballots (``root`` always, with its
        founding defaults until changed, ``version`` 0)."""
        return views.domains(_sql(store), coop)

    @get("/domains/{domain:str}", sync_to_thread=True, responses=problem_responses(*READ_ERRORS))
    def get_domain(
        self, reads: ReadsDep, store: StoreDep, coop: CoopPath, domain: FromPath[str]
    ) -> views.DomainHistory:
        """One domain: its rules as they stand (``current``) and every version they had,
        oldest first (``versions``): ``root``'s version 0 is the founding defaults; each later
        one the ``governance.DomainDefined`` or ``DomainChanged`` that set it, with the
        proposal it carried out. ``404 unknown-domain`` when the coop has no such domain."""
        return views.domain_history(_fresh(reads, store, coop), coop, domain)

    @get("/proposals", sync_to_thread=True, responses=problem_responses(*READ_ERRORS))
    def list_proposals(
        self,
        reads: ReadsDep,
        store: StoreDep,
        coop: CoopPath,
        state_: Annotated[
            str | None,
            QueryParameter(
                name="state",
                max_length=32,
                description="open, accepted, rejected, no-quorum, withdrawn or vetoed",
            ),
        ] = None,
        domain: Annotated[str | None, QueryParameter(max_length=64)] = None,
        after: Annotated[int | None, QueryParameter(ge=0, le=MAX_SAFE_INT)] = None,
        limit: Limit = 100,
    ) -> views.ProposalPage:
        """Proposals in submission order, optionally of one ``state`` and one ``domain``, each
        with its action's kind, dates, vote events so far, and once closed its outcome and
        counts, once executed its effects. Pass ``next`` as ``after`` for the next page."""
        return views.proposals(
            _fresh(reads, store, coop), coop, state=state_, domain=domain, after=after, limit=limit
        )

    @get(
        "/proposals/{proposal_id:str}",
        sync_to_thread=True,
        responses=problem_responses(*READ_ERRORS),
    )
    def get_proposal(
        self, reads: ReadsDep, store: StoreDep, coop: CoopPath, proposal_id: FromPath[str]
    ) -> views.ProposalDetail:
        """One proposal in full: text, action, the rules it is counted by (its domain's when
        it was submitted), when it opens, closes and may be tallied, how it ended, what its
        execution did, appeals against it. ``404 unknown-proposal`` when there is none."""
        return views.proposal(_fresh(reads, store, coop), coop, proposal_id)

    @get("/proposals/{proposal_id:str}/tally", responses=problem_responses(*READ_ERRORS))
    async def get_tally(
        self,
        reads: ReadsDep,
        store: StoreDep,
        governance: NamedDependency[GovernanceBook],
        coop: CoopPath,
        proposal_id: FromPath[str],
    ) -> views.TallyView:
        """The tally: for a closed proposal its close's numbers (``final``); for an open one
        the live count by the close's own functions (delegations followed, weights by the
        method), heads and weights per choice, ``eligible``, ``counted``, the quorum it needs
        and the outcome it projects. A sealed proposal shows only how many ballots were
        committed and revealed until it is closed. Answered from memory while open."""
        kept = governance.cached(coop, proposal_id, clock_ms())
        if kept is not None:  # memory only: answered on the event loop, no thread hop
            return views.tally_view(coop, kept[0], None, kept[1])
        return await anyio.to_thread.run_sync(_tally, reads, store, governance, coop, proposal_id)

    @get(
        "/proposals/{proposal_id:str}/ballots",
        sync_to_thread=True,
        responses=problem_responses(*READ_ERRORS),
    )
    def list_ballots(
        self,
        store: StoreDep,
        coop: CoopPath,
        proposal_id: FromPath[str],
        after: Annotated[str | None, QueryParameter(min_length=1, max_length=128)] = None,
        limit: Limit = 100,
    ) -> views.BallotPage:
        """Each voter's current ballot in voter order: the vote event it comes from, the
        choice and credits; for a sealed proposal the commitment, and the choice only once
        that voter revealed it. Pass ``next`` as ``after`` for the next page."""
        after = did_of(after) if after is not None else None
        return views.ballots(_sql(store), coop, proposal_id, after=after, limit=limit)

    @get("/members/{did:str}/votes", sync_to_thread=True, responses=problem_responses(*READ_ERRORS))
    def get_member_votes(
        self, reads: ReadsDep, store: StoreDep, coop: CoopPath, did: FromPath[str]
    ) -> views.MemberVotes:
        """The member's vote events (cast, committed, revealed) in log order, their live
        delegation per domain, every delegation and revocation they made, and the members
        whose live delegation names them."""
        return views.member_votes(_fresh(reads, store, coop), coop, did_of(did))

    @get("/charter", sync_to_thread=True, responses=problem_responses(*READ_ERRORS))
    def get_charter(self, reads: ReadsDep, store: StoreDep, coop: CoopPath) -> views.CharterView:
        """The charter: every section's current text (``sections``) and every version of every
        section, oldest first (``history``), each with the proposal that made it."""
        return views.charter(_fresh(reads, store, coop), coop)

    @get("/charter/{section:str}", sync_to_thread=True, responses=problem_responses(*READ_ERRORS))
    def get_charter_section(
        self, reads: ReadsDep, store: StoreDep, coop: CoopPath, section: FromPath[str]
    ) -> views.CharterSection:
        """One charter section: its current text (``current``) and every version, oldest
        first (``versions``), each with the proposal that made it. ``404 unknown-section``
        when no amendment has written it."""
        return views.charter_section(_fresh(reads, store, coop), coop, section)
