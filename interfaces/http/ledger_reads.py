"""Reading the ledger: members, balances, history, credit limits, disputes, the coop itself.

Every route needs a token of the path's coop with the ``ledger:read`` scope
(any member). Balances, history and totals come from the projections, which a
running node's writer brings up to each commit before it answers the writes in
it, so a member who just paid reads a balance that includes the payment and a
read never writes (``ReadSide.fresh``; an app around a bare store catches up
first instead).
Members, limits and disputes come from the coop rules' records, which the
write path keeps in the same transaction as the events, so they are current
by construction.
"""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.params import FromPath, QueryParameter

from icn.domain.events.canonical import MAX_SAFE_INT
from icn.domain.identity.did import is_valid_did
from icn.infrastructure.store.read_models import ReadSide
from icn.interfaces.bootstrap import clock_ms
from icn.interfaces.http.coop_paths import COOP_ROUTES, CoopPath
from icn.interfaces.http.dependencies import ReadsDep
from icn.interfaces.http.gate import needs
from icn.interfaces.http.problems import ApiProblem, problem_responses
from icn.projections import ledger_views as views
from icn.projections.member_names import named_member, named_page

Currency = Annotated[str | None, QueryParameter(pattern="^[a-z0-9_-]{1,16}$", max_length=16)]
DidParam = Annotated[str | None, QueryParameter(min_length=1, max_length=128)]
Millis = Annotated[int | None, QueryParameter(ge=0, le=MAX_SAFE_INT)]
Limit = Annotated[int, QueryParameter(ge=1, le=views.MAX_PAGE)]
READ_ERRORS = (401, 403, 404)
"""What every ledger read may answer besides 200 (problem documents)."""


def _did(value: str | None, name: str) -> str | None:
    if value is not None and not is_valid_did(value):
        raise ApiProblem(400, "invalid-did", f"{name} is not a valid DID (did:icn:z…)")
    return value


def _fresh(reads: ReadSide, coop: str) -> ReadSide:
    """The read side current with every answered write (``ReadSide.fresh``)."""
    return reads.fresh(coop)


class LedgerController(Controller):
    """The coop, its members, their accounts, and disputes (scope ``ledger:read``)."""

    path = COOP_ROUTES
    tags = ("ledger",)
    opt = needs("ledger:read")

    @get("/", sync_to_thread=True, responses=problem_responses(*READ_ERRORS))
    def get_coop(self, reads: ReadsDep, coop: CoopPath) -> views.CoopSummary:
        """The coop: name, DID (its treasury account), currencies, policy, totals per currency.

        ``totals[c].balance_sum`` is the sum of every balance in ``c``, computed
        when asked: 0 whenever the books balance.
        """
        return views.coop_summary(_fresh(reads, coop).models, coop)

    @get("/members", sync_to_thread=True, responses=problem_responses(*READ_ERRORS))
    def list_members(
        self, reads: ReadsDep, coop: CoopPath, after: DidParam = None, limit: Limit = 100
    ) -> views.MemberPage:
        """Members in DID order; pass ``next`` as ``after`` for the following page. ``name``
        is what each member calls themselves (null if nothing): not unique, so show it beside
        the DID."""
        after = _did(after, "after")
        page = views.members(reads.models, coop, after=after, limit=limit, now_ms=clock_ms())
        return named_page(_fresh(reads, coop).models, coop, page)

    @get("/members/{did:str}", sync_to_thread=True, responses=problem_responses(*READ_ERRORS))
    def get_member(self, reads: ReadsDep, coop: CoopPath, did: FromPath[str]) -> views.MemberView:
        """One member: status, roles, when they joined, freeze, the name they gave."""
        _did(did, "did")
        view = views.member(reads.models, coop, did, clock_ms())
        return named_member(_fresh(reads, coop).models, coop, view)

    @get(
        "/accounts/{did:str}/balances",
        sync_to_thread=True,
        responses=problem_responses(*READ_ERRORS),
    )
    def get_balances(
        self, reads: ReadsDep, coop: CoopPath, did: FromPath[str]
    ) -> views.AccountBalances:
        """Balances in every currency of the coop (0 when never moved), in smallest units
        (``balances``) and with the currency's decimals (``display``), and per currency the
        cleared and debited volume, entries, credit used, limit and what is left."""
        _did(did, "did")
        return views.account_balances(_fresh(reads, coop).models, coop, did, clock_ms())

    @get(
        "/accounts/{did:str}/history",
        sync_to_thread=True,
        responses=problem_responses(*READ_ERRORS),
    )
    def get_history(
        self,
        reads: ReadsDep,
        coop: CoopPath,
        did: FromPath[str],
        currency: Currency = None,
        counterparty: DidParam = None,
        since: Millis = None,
        until: Millis = None,
        after: Annotated[int | None, QueryParameter(ge=0, le=MAX_SAFE_INT)] = None,
        limit: Limit = 50,
        order: Annotated[str, QueryParameter(pattern="^(asc|desc)$")] = "asc",
    ) -> views.HistoryPage:
        """The account's transactions in log order (``order=desc``: newest first), each signed
        from its side. ``since`` (inclusive) and ``until`` (exclusive) bound the entry's
        ``ts``; pass ``next`` as ``after`` for the following page (null: the end)."""
        _did(did, "did")
        query = views.HistoryQuery(
            currency=currency,
            counterparty=_did(counterparty, "counterparty"),
            since=since,
            until=until,
            after=after,
            limit=limit,
            descending=order == "desc",
        )
        return views.account_history(_fresh(reads, coop).models, coop, did, query)

    @get(
        "/accounts/{did:str}/limit", sync_to_thread=True, responses=problem_responses(*READ_ERRORS)
    )
    def get_limit(
        self, reads: ReadsDep, coop: CoopPath, did: FromPath[str], currency: Currency = None
    ) -> views.LimitView:
        """The credit limit right now, term by term (baseline, trust bonus, history bonus, cap,
        new-member ramp), with what is used and available. ``currency`` may be left out when
        the coop has only one."""
        _did(did, "did")
        return views.account_limit(reads.models, coop, did, currency, clock_ms())

    @get("/disputes", sync_to_thread=True, responses=problem_responses(*READ_ERRORS))
    def list_disputes(
        self,
        reads: ReadsDep,
        coop: CoopPath,
        status: Annotated[
            str | None, QueryParameter(pattern="^(filed|answered|resolved|settled)$")
        ] = None,
        after: Annotated[str | None, QueryParameter(pattern="^[0-9a-f]{64}$")] = None,
        limit: Limit = 100,
    ) -> views.DisputePage:
        """Disputes in id order, optionally only those in one ``status``."""
        return views.disputes(reads.models, coop, status=status, after=after, limit=limit)
