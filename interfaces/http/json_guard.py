"""I-JSON shape of every request body, checked once for all routes before any route decodes it.

Routes decode their bodies in different ways (typed structs for login, raw
bytes for events), and a body nested 10,000 deep made the framework's decoder
raise ``RecursionError``: a 500 before any handler ran. So the rule of spec
section 2 (no nesting deeper than 64, no repeated member name: RFC 7493)
is applied here, in front of every route, to every request body that is
JSON: the whole body, so a batch of events is judged as a whole too. A body
that is not JSON at all passes through: its route says why it is wrong.

The body is read into memory only up to the node's body limit; a longer one
is passed on unchecked, and the framework refuses it with 413.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, ReceiveMessage, Scope, Send

from icn.domain.events.ijson import TOO_DEEP, value_shape_problem
from icn.interfaces.http.asgi_problem import send_problem

BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def body_shape_problem(body: bytes) -> str | None:
    """Why ``body`` breaks the I-JSON rules, or ``None`` (also when it is not JSON at all)."""
    if not body.strip():
        return None
    try:
        decoded = msgspec.json.decode(body)
    except RecursionError:  # msgspec stops deep input itself, long before the C stack is at risk
        return TOO_DEEP
    except (msgspec.DecodeError, UnicodeDecodeError):
        return None
    return value_shape_problem(body, decoded)


class JsonShapeGuard:
    """ASGI middleware: refuse (400 ``malformed``) a JSON body of the wrong shape."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        messages, body, complete = await read_body(receive, self.max_bytes)
        if complete and (problem := body_shape_problem(body)):
            await send_problem(scope, receive, send, 400, "malformed", f"request body: {problem}")
            return
        await self.app(scope, replay_read(messages, receive), send)


async def read_body(receive: Receive, limit: int) -> tuple[list[ReceiveMessage], bytes, bool]:
    """The body's messages as received (for :func:`replay_read`), the body read, and
    whether it was read whole within ``limit``.

    Reading stops at the first chunk past ``limit`` or when the client leaves; the body is
    then what came so far, so a middleware can judge a body without holding more of it.
    """
    messages: list[ReceiveMessage] = []
    chunks: list[bytes] = []
    size = 0
    while True:
        message: Any = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, b"".join(chunks), False  # the client left
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return messages, b"".join(chunks), False  # over the limit
        if not message.get("more_body", False):
            return messages, b"".join(chunks), True


def replay_read(messages: list[ReceiveMessage], receive: Receive) -> Receive:
    """A ``receive`` that hands out what was already read, then reads on."""
    pending = list(messages)

    async def replay() -> ReceiveMessage:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay
