"""Reading the ledger: members, balances, history, credit limits, disputes, the coop itself.

Every route needs a token of the path's coop with the ``ledger:read`` scope
(any member). Balances, history and totals come from the projections, which
are first brought up to the log (``catch_up``: two point reads when nothing is
new), so a member who just paid reads a balance that includes the payment.
Members, limits and disputes come from the coop rules' records, which the
write path keeps in the same transaction as the events, so they are current
by construction.
"""

from __future__ import annotations

import threading
from typing import Annotated, Any

from litestar import Request, get
from litestar.datastructures import State
from litestar.params import Parameter

from icn.domain.events.canonical import MAX_SAFE_INT
from icn.domain.identity.did import is_valid_did
from icn.infrastructure.store.read_models import ReadSide
from icn.interfaces.bootstrap import Node, clock_ms
from icn.interfaces.http.auth import principal_of
from icn.interfaces.http.events import CoopPath
from icn.interfaces.http.problems import ApiProblem, problem_responses
from icn.projections import ledger_views as views

SCOPE = "ledger:read"
Currency = Annotated[str | None, Parameter(pattern="^[a-z0-9_-]{1,16}$", max_length=16)]
DidParam = Annotated[str | None, Parameter(min_length=1, max_length=128)]
Millis = Annotated[int | None, Parameter(ge=0, le=MAX_SAFE_INT)]
Limit = Annotated[int, Parameter(ge=1, le=views.MAX_PAGE)]

_lock = threading.Lock()


def _read_side(state: State) -> ReadSide:
    """The app's one read side (made on first use; its runner serialises catch-ups)."""
    side: ReadSide | None = state.get("ledger_read_side")
    if side is None:
        with _lock:
            side = state.get("ledger_read_side")
            if side is None:
                node: Node = state.node
                side = ReadSide(node.store)
                state["ledger_read_side"] = side
    return side


def _did(value: str | None, name: str) -> str | None:
    if value is not None and not is_valid_did(value):
        raise ApiProblem(400, "invalid-did", f"{name} is not a valid DID (did:icn:z…)")
    return value


def _reads(state: State, coop: str, *, fresh: bool) -> ReadSide:
    """The read side, with the projections brought up to the log first when ``fresh``."""
    side = _read_side(state)
    if fresh:
        side.catch_up(coop)
    return side


@get(
    "/v1/coops/{coop:str}",
    sync_to_thread=True,
    tags=["ledger"],
    responses=problem_responses(401, 403, 404),
)
def get_coop(request: Request[Any, Any, Any], state: State, coop: CoopPath) -> views.CoopSummary:
    """The coop: name, DID (its treasury account), currencies, policy, totals per currency.

    ``totals[c].balance_sum`` is the sum of every balance in ``c``, computed
    when asked: 0 whenever the books balance.
    """
    principal_of(request, state, coop, SCOPE)
    return views.coop_summary(_reads(state, coop, fresh=True).models, coop)


@get(
    "/v1/coops/{coop:str}/members",
    sync_to_thread=True,
    tags=["ledger"],
    responses=problem_responses(401, 403, 404),
)
def list_members(
    request: Request[Any, Any, Any],
    state: State,
    coop: CoopPath,
    after: DidParam = None,
    limit: Limit = 100,
) -> views.MemberPage:
    """Members in DID order; pass ``next`` as ``after`` for the following page."""
    principal_of(request, state, coop, SCOPE)
    side = _reads(state, coop, fresh=False)
    return views.members(
        side.models, coop, after=_did(after, "after"), limit=limit, now_ms=clock_ms()
    )


@get(
    "/v1/coops/{coop:str}/members/{did:str}",
    sync_to_thread=True,
    tags=["ledger"],
    responses=problem_responses(401, 403, 404),
)
def get_member(
    request: Request[Any, Any, Any], state: State, coop: CoopPath, did: str
) -> views.MemberView:
    """One member: status, roles, when they joined, freeze."""
    principal_of(request, state, coop, SCOPE)
    side = _reads(state, coop, fresh=False)
    _did(did, "did")
    return views.member(side.models, coop, did, clock_ms())


@get(
    "/v1/coops/{coop:str}/accounts/{did:str}/balances",
    sync_to_thread=True,
    tags=["ledger"],
    responses=problem_responses(401, 403, 404),
)
def get_balances(
    request: Request[Any, Any, Any], state: State, coop: CoopPath, did: str
) -> views.AccountBalances:
    """Balances in every currency of the coop (0 when never moved), in smallest units
    (``balances``) and with the currency's decimals (``display``), and per currency the
    cleared and debited volume, entries, credit used, limit and what is left."""
    principal_of(request, state, coop, SCOPE)
    _did(did, "did")
    side = _reads(state, coop, fresh=True)
    return views.account_balances(side.models, coop, did, clock_ms())


@get(
    "/v1/coops/{coop:str}/accounts/{did:str}/history",
    sync_to_thread=True,
    tags=["ledger"],
    responses=problem_responses(401, 403, 404),
)
def get_history(
    request: Request[Any, Any, Any],
    state: State,
    coop: CoopPath,
    did: str,
    currency: Currency = None,
    counterparty: DidParam = None,
    since: Millis = None,
    until: Millis = None,
    after: Annotated[int | None, Parameter(ge=0, le=MAX_SAFE_INT)] = None,
    limit: Limit = 50,
    order: Annotated[str, Parameter(pattern="^(asc|desc)$")] = "asc",
) -> views.HistoryPage:
    """The account's transactions in log order (``order=desc``: newest first), each signed
    from its side. ``since`` (inclusive) and ``until`` (exclusive) bound the entry's
    ``ts``; pass ``next`` as ``after`` for the following page (null: the end)."""
    principal_of(request, state, coop, SCOPE)
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
    side = _reads(state, coop, fresh=True)
    return views.account_history(side.models, coop, did, query)


@get(
    "/v1/coops/{coop:str}/accounts/{did:str}/limit",
    sync_to_thread=True,
    tags=["ledger"],
    responses=problem_responses(401, 403, 404),
)
def get_limit(
    request: Request[Any, Any, Any],
    state: State,
    coop: CoopPath,
    did: str,
    currency: Currency = None,
) -> views.LimitView:
    """The credit limit right now, term by term (baseline, trust bonus, history bonus, cap,
    new-member ramp), with what is used and available. ``currency`` may be left out when
    the coop has only one."""
    principal_of(request, state, coop, SCOPE)
    _did(did, "did")
    side = _reads(state, coop, fresh=False)
    return views.account_limit(side.models, coop, did, currency, clock_ms())


@get(
    "/v1/coops/{coop:str}/disputes",
    sync_to_thread=True,
    tags=["ledger"],
    responses=problem_responses(401, 403, 404),
)
def list_disputes(
    request: Request[Any, Any, Any],
    state: State,
    coop: CoopPath,
    status: Annotated[str | None, Parameter(pattern="^(filed|answered|resolved|settled)$")] = None,
    after: Annotated[str | None, Parameter(pattern="^[0-9a-f]{64}$")] = None,
    limit: Limit = 100,
) -> views.DisputePage:
    """Disputes in id order, optionally only those in one ``status``."""
    principal_of(request, state, coop, SCOPE)
    side = _reads(state, coop, fresh=False)
    return views.disputes(side.models, coop, status=status, after=after, limit=limit)


ROUTES = [get_coop, list_members, get_member, get_balances, get_history, get_limit, list_disputes]
