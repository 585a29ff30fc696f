"""Problem documents sent straight from ASGI middleware, before any route runs.

Middleware that refuses a request (a JSON body of the wrong shape, too many
open streams) answers in the same RFC 9457 shape as the routes do. A
WebSocket handshake is refused with an HTTP response where the server
supports it (the ``websocket.http.response`` extension), else closed with
1013 ("try again later") or 1008 ("policy violation").
"""

from __future__ import annotations

from typing import Any

from litestar.enums import ScopeType
from litestar.types import Receive, Scope, Send

from icn.interfaces.http.problems import PROBLEM_JSON, problem_bytes


async def send_problem(
    scope: Scope,
    receive: Receive,
    send: Send,
    status: int,
    code: str,
    detail: str,
    *,
    headers: dict[str, str] | None = None,
) -> None:
    """Answer the request (or refuse the WebSocket handshake) with a problem document."""
    body = problem_bytes(status, code, detail)
    raw_headers = [
        (b"content-type", PROBLEM_JSON.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"x-content-type-options", b"nosniff"),
        *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()),
    ]
    if scope["type"] == ScopeType.HTTP:
        await send({"type": "http.response.start", "status": status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})
        return
    message: Any = await receive()
    if message.get("type") != "websocket.connect":
        return
    if "websocket.http.response" in (scope.get("extensions") or {}):
        start: Any = {"type": "websocket.http.response.start", "status": status}
        done: Any = {"type": "websocket.http.response.body", "body": body, "more_body": False}
        start["headers"] = raw_headers
        await send(start)
        await send(done)
    else:
        close: Any = {"type": "websocket.close", "code": 1013 if status >= 429 else 1008}
        await send(close)
