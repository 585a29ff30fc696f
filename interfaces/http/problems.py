"""RFC 9457 problem details: every error the API gives, in one shape, with a stable ``code``.

Controllers raise :class:`ApiProblem` (or let an application error through);
the handlers here turn everything, framework errors and unexpected crashes
included, into ``application/problem+json``. No traceback reaches a client.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.types import ExceptionHandlersMap

from icn.application.errors import (
    ApplicationError,
    BatchRefused,
    InvalidRequest,
    NotFound,
    StoreBusy,
)
from icn.domain.refusals import Kind, lookup

log = logging.getLogger("icn.http")
PROBLEM_JSON = "application/problem+json"


class ProblemDocument(msgspec.Struct, omit_defaults=True):
    """The body of every error response (RFC 9457, plus ``code``)."""

    type: str
    title: str
    status: int
    code: str
    detail: str = ""
    line: int | None = None


class ApiProblem(Exception):
    """An error meant for the client: status, stable code, one-line detail."""

    def __init__(
        self, status: int, code: str, detail: str, *, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers or {}
        self.line: int | None = None

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        """Pickled as its fields (the writer process checks posted lines and answers this)."""
        return (_problem, (self.status, self.code, self.detail, self.headers, self.line))


def _problem(
    status: int, code: str, detail: str, headers: dict[str, str], line: int | None
) -> ApiProblem:
    problem = ApiProblem(status, code, detail, headers=headers)
    problem.line = line
    return problem


KIND_STATUS = {Kind.INVALID: 422, Kind.FORBIDDEN: 403, Kind.CONFLICT: 409, Kind.UNAVAILABLE: 503}
"""A refused event's HTTP status follows from its code's kind (:mod:`icn.domain.refusals`)."""


def status_for(code: str) -> int:
    """The HTTP status of a refusal ``code``; 422 for a string that is no refusal code."""
    found = lookup(code)
    return KIND_STATUS[found.kind] if found is not None else 422


TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Request too large",
    415: "Unsupported media type",
    422: "Unprocessable event",
    429: "Too many requests",
    500: "Internal error",
    503: "Unavailable",
}


def problem_bytes(status: int, code: str, detail: str, line: int | None = None) -> bytes:
    """The encoded problem document: one shape for routes and middleware alike."""
    doc = ProblemDocument(
        type=f"https://icn.coop/problems/{code}",
        title=TITLES.get(status, "Error"),
        status=status,
        code=code,
        detail=detail,
        line=line,
    )
    return msgspec.json.encode(doc)


def _respond(status: int, code: str, detail: str, **extra: object) -> Response[bytes]:
    headers = extra.get("headers") or {}
    return Response(
        content=problem_bytes(status, code, detail, extra.get("line")),  # type: ignore[arg-type]
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,  # type: ignore[arg-type]
    )


def from_problem(_: Request[Any, Any, Any], exc: ApiProblem) -> Response[bytes]:
    """Our own problems, as raised."""
    return _respond(exc.status, exc.code, exc.detail, line=exc.line, headers=exc.headers)


def from_application(_: Request[Any, Any, Any], exc: ApplicationError) -> Response[bytes]:
    """Errors from the use cases, mapped once."""
    if isinstance(exc, BatchRefused):
        status = status_for(exc.code)
        return _respond(status, exc.code, str(exc), line=exc.line)
    if isinstance(exc, NotFound):
        return _respond(404, exc.code, str(exc))
    if isinstance(exc, InvalidRequest):
        return _respond(400, exc.code, str(exc))
    if isinstance(exc, StoreBusy):
        return _respond(503, exc.code, str(exc), headers={"Retry-After": "1"})
    return _respond(400, exc.code, str(exc))


def from_http(_: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    """Framework errors (validation, 404, 405, 413 …) in the same shape."""
    status = exc.status_code
    if isinstance(exc, ValidationException):
        extra = exc.extra if isinstance(exc.extra, list) else []
        where = "; ".join(
            f"{e.get('key', '')}: {e.get('message', '')}" for e in extra if isinstance(e, dict)
        )
        return _respond(400, "invalid-request", where or exc.detail)
    code = {
        404: "not-found",
        405: "method-not-allowed",
        413: "too-large",
        401: "unauthorized",
        403: "forbidden",
        429: "rate-limited",
    }.get(status, "http-error")
    headers = dict(exc.headers or {})
    return _respond(status, code, exc.detail, headers=headers)


def from_crash(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    """Anything unexpected: logged with its traceback here, never sent."""
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return _respond(500, "internal", "the node could not complete the request")


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    ApiProblem: from_problem,
    ApplicationError: from_application,
    HTTPException: from_http,
    Exception: from_crash,
}


def problem_responses(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the errors a route can give: all of them problem documents.

    Every route also answers 400 (bad input), 413 (body over the limit), 429
    (rate limit) and 500, so those are always listed.
    """
    codes = sorted({400, 413, 429, 500, *statuses})
    return {
        status: ResponseSpec(
            data_container=ProblemDocument,
            description=TITLES.get(status, "Error"),
            media_type=PROBLEM_JSON,
        )
        for status in codes
    }
