"""Who may use a coop's routes: a bearer token of that coop, with the route's scope, whose
holder still stands in the coop.

One check for every protected route. HTTP routes get it as the guard of the
``/v1/coops/{coop}`` router, before any handler runs; the handler then receives
the caller as its ``principal`` dependency. The WebSocket route asks
:meth:`Gate.admit` itself, after the handshake: a browser sees no HTTP status on
a refused upgrade, only a close code (4401, 4403), so its refusals come later.

A route names the scope it needs in its ``opt`` (``opt=needs("log:read")``, or a
controller's ``opt`` for all its routes); a guarded route without one is
refused, never let through.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import anyio
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler

from icn.interfaces.http.auth import Principal, Tokens
from icn.interfaces.http.problems import ApiProblem
from icn.interfaces.http.standing import MemberStanding

SCOPE = "scope"
"""The ``opt`` key naming the scope a route needs."""

COOP_PARAM = "coop"
"""The path parameter naming the coop a route acts on."""


def needs(scope: str) -> Mapping[str, str]:
    """The ``opt`` of a route or controller whose callers must hold ``scope``."""
    return {SCOPE: scope}


class Gate:
    """Admits a caller to a coop's routes: token, coop, scope, standing, in that order."""

    def __init__(self, tokens: Tokens, standing: MemberStanding) -> None:
        self._tokens = tokens
        self._standing = standing

    def __deepcopy__(self, memo: dict[int, object]) -> Gate:
        """Itself: Litestar deep-copies a router (and so its guards) when registering it, and
        every copy must share the one token cache and standing cache of the app."""
        return self

    def admit(self, authorization: str, coop: str, scope: str) -> Principal:
        """The caller of an ``Authorization`` value, checked for ``scope``, for ``coop``,
        and that it still stands there (may read the store: call it off the event loop
        where that matters)."""
        who = self._verified(authorization, coop, scope)
        self._standing.check(coop, who.did)  # suspended or gone since the token was issued
        return who

    async def guard(
        self, connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
    ) -> None:
        """The router's guard: admit the caller, and hand it to the route as ``user``.

        Standing is mostly answered from its cache; only a miss reads the store,
        and that read runs in a worker thread so the event loop never waits on it.
        """
        scope = handler.opt.get(SCOPE)
        if not isinstance(scope, str):  # a route that forgot its scope is closed, not open
            raise ApiProblem(403, "missing-scope", "this route names no scope")
        coop = str(connection.path_params[COOP_PARAM])
        who = self._verified(connection.headers.get("authorization", ""), coop, scope)
        if self._standing.remembered(coop, who.did):
            self._standing.check(coop, who.did)
        else:
            await anyio.to_thread.run_sync(self._standing.check, coop, who.did)
        connection.scope["user"] = who

    def _verified(self, authorization: str, coop: str, scope: str) -> Principal:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise ApiProblem(
                401, "unauthorized", "send Authorization: Bearer <token>",
                headers={"WWW-Authenticate": "Bearer"},
            )  # fmt: skip
        who = self._tokens.read(token.strip())
        if who.coop != coop:
            raise ApiProblem(
                403, "token-coop-mismatch", f"the token is for coop {who.coop!r}, not {coop!r}"
            )
        if scope not in who.scopes:
            raise ApiProblem(403, "missing-scope", f"the token lacks the scope {scope!r}")
        return who


def provide_principal(request: Request[Principal, Any, Any]) -> Principal:
    """The ``principal`` dependency: the caller the guard admitted."""
    return request.user
