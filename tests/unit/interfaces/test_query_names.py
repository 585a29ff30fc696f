"""Query parameters a route does not take are refused by name (see ``query_names``)."""

from __future__ import annotations

from typing import Annotated

from litestar import Litestar, get
from litestar.params import QueryParameter
from litestar.testing import TestClient

from icn.interfaces.http.problems import EXCEPTION_HANDLERS
from icn.interfaces.http.query_names import QueryGuard, QueryNames

TAKES = QueryNames(names=frozenset({"after", "limit", "tag"}), repeatable=frozenset({"tag"}))


def code_of(given: list[tuple[str, object]]) -> str | None:
    problem = TAKES.problem(given)
    return None if problem is None else problem.code


def test_known_names_pass_and_a_repeatable_one_may_repeat():
    assert code_of([]) is None
    assert code_of([("after", "3"), ("limit", "5"), ("tag", "a"), ("tag", "b")]) is None


def test_an_unknown_name_a_repeated_one_and_a_token_are_each_refused():
    assert code_of([("limit", "5"), ("limt", "5")]) == "unknown-parameter"
    assert code_of([("limit", "5"), ("limit", "500")]) == "invalid-request"
    assert code_of([("token", "eyJ.secret")]) == "token-in-url"
    problem = TAKES.problem([("x" * 10_000, "")])
    assert problem is not None and len(problem.detail) < 200  # a long name is not echoed whole


def test_the_guard_learns_each_routes_names_from_the_app_itself():
    @get("/v1/items", sync_to_thread=False)
    def items(limit: Annotated[int, QueryParameter(ge=1)] = 10) -> int:
        return limit

    @get("/v1/tags", sync_to_thread=False)
    def tags(tag: Annotated[list[str] | None, QueryParameter()] = None) -> int:
        return len(tag or [])

    @get("/elsewhere", sync_to_thread=False)
    def elsewhere() -> str:
        return "not under /v1: not checked"

    guard = QueryGuard()
    app = Litestar([items, tags, elsewhere], guards=[guard], exception_handlers=EXCEPTION_HANDLERS)
    guard.learn(app)
    with TestClient(app) as client:
        assert client.get("/v1/items?limit=3").json() == 3
        refused = client.get("/v1/items?limit=3&descending=true")
        assert refused.status_code == 400
        assert refused.json()["code"] == "unknown-parameter"
        assert "'descending'; takes: limit" in refused.json()["detail"]
        assert client.get("/v1/tags?tag=a&tag=b").json() == 2
        assert client.get("/elsewhere?anything=1").status_code == 200
        assert client.options("/v1/items?limit=3&x=1").status_code == 204  # a CORS preflight
