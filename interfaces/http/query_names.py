"""Query parameters a route does not take are refused, not ignored.

Litestar reads the parameters a handler declares and drops the rest, so a
client that misspells one (``?descending=true`` on a history page, ``?limt=5``)
gets an answer that looks right and is not what it asked for: a treasurer's
export of "the last 5" that is really the first 100. Every ``/v1`` route
answers ``400 unknown-parameter`` instead, naming what it does take. A
parameter given twice that takes one value is ``400 invalid-request``: the
handler would have read one of them, and which one is not the client's choice.
A ``token`` in the URL is ``400 token-in-url``, as on the WebSocket route: URLs
end up in logs and browser histories.

The names come from the routes' own signatures (Litestar's kwargs models,
dependencies included), so a parameter added to a handler is allowed without
touching this module. The WebSocket route checks its query itself, after the
handshake (see :mod:`.streams`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from litestar import Litestar
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.routes import HTTPRoute

from icn.interfaces.http.problems import ApiProblem

API_PREFIX = "/v1"


@dataclass(frozen=True)
class QueryNames:
    """What each handler takes: every name, and those it takes more than once."""

    names: frozenset[str]
    repeatable: frozenset[str]

    def problem(self, given: Iterable[tuple[str, object]]) -> ApiProblem | None:
        """Why the query ``given`` (its pairs in order) does not fit, or ``None``."""
        seen: set[str] = set()
        for name, _ in given:
            if name == "token" and name not in self.names:
                why = "send the token in the Authorization header, not in the URL"
                return ApiProblem(400, "token-in-url", why)
            if name not in self.names:
                takes = ", ".join(sorted(self.names)) or "no query parameters"
                why = f"unknown query parameter {name[:64]!r}; takes: {takes}"
                return ApiProblem(400, "unknown-parameter", why)
            if name in seen and name not in self.repeatable:
                return ApiProblem(400, "invalid-request", f"query parameter {name!r} given twice")
            seen.add(name)
        return None


@dataclass
class QueryGuard:
    """A Litestar guard: refuses a ``/v1`` request whose query names what its route lacks.

    Built empty, because guards are given to the app before it exists; :meth:`learn`
    reads the finished app's routes. A handler it has not learned (the dashboard's
    files, the API schema) passes unchecked.
    """

    by_handler: dict[object, QueryNames] = field(default_factory=dict)
    """Keyed by the handler's function: Litestar hands guards a copy of the handler object
    its routes hold, and the function is what the two share."""

    def learn(self, app: Litestar) -> None:
        for route in app.routes:
            if not isinstance(route, HTTPRoute) or not route.path.startswith(API_PREFIX):
                continue
            for method, (handler, kwargs_model) in route.route_handler_map.items():
                if method == "OPTIONS":  # a CORS preflight carries the real request's query
                    continue
                params = kwargs_model.expected_query_params
                self.by_handler[handler.fn] = QueryNames(
                    names=frozenset(p.field_alias for p in params),
                    repeatable=frozenset(p.field_alias for p in params if p.is_sequence),
                )

    def __call__(
        self, connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
    ) -> None:
        if not connection.scope.get("query_string"):
            return
        takes = self.by_handler.get(handler.fn)
        if takes is None:
            return
        problem = takes.problem(connection.query_params.multi_items())
        if problem is not None:
            raise problem
