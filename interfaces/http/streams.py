"""Live streams of a coop's log: Server-Sent Events and WebSocket, same filters, same cursor.

Every message carries the event's position (its leaf index), so a client
resumes with ``Last-Event-ID`` / ``?after=`` and sees gaps only where a filter
skipped events. Events reach open streams as soon as they are committed here
(the POST handler pokes the :class:`LogFeed`) or within a poll when another
process appended them. A subscriber whose connection stays blocked for
``ICN_STREAM_SEND_TIMEOUT_S`` (5 s) is dropped with a stated reason rather
than served from a growing buffer; heartbeats every ``ICN_STREAM_HEARTBEAT_S``
(15 s) keep idle connections and proxies honest.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
from collections.abc import AsyncIterator, Awaitable
from typing import Annotated, Any, Protocol

import anyio
from litestar import Controller, WebSocket, get, websocket
from litestar.di import NamedDependency
from litestar.params import FromPath, HeaderParameter, QueryParameter
from litestar.response import Stream

from icn.interfaces.http import ws_auth
from icn.interfaces.http.coop_paths import COOP_ROUTES, CoopPath
from icn.interfaces.http.dependencies import FeedDep, StoreDep
from icn.interfaces.http.gate import Gate, needs
from icn.interfaces.http.problems import ApiProblem
from icn.interfaces.http.query_names import QueryNames
from icn.interfaces.http.stream_source import Delivery, Filters, Heartbeat, follow

log = logging.getLogger("icn.http.streams")
HEARTBEAT_S = 15.0
SEND_TIMEOUT_S = 5.0
CLOSE_TIMEOUT_S = 10.0
SSE_CHUNK_BYTES = 64 * 1024
MAX_POSITION = 2**53 - 1
TYPE_PATTERN = r"^[a-z]+(\.[A-Za-z]*)?$"
WS_QUERY = QueryNames(names=frozenset({"after", "type", "author"}), repeatable=frozenset())
"""What the WebSocket route takes; it checks its query itself (see :mod:`.query_names`)."""
TOO_SLOW_SSE = b'event: error\ndata: {"code":"too-slow"}\n\n'
WS_TOO_SLOW = (4008, "too slow")
WS_SHUTDOWN = (1001, "server shutting down")

WS_DESCRIPTION = """Events after `after` (or `Last-Event-ID`, which wins), then live, as
`id: <position>`, `event: <type>`, `data: <wire event>`; `: heartbeat <ms>` comments.
Too many open streams: 429 `too-many-streams` (this DID) or 503 `streams-full` (the node).

The same stream over WebSocket (OpenAPI has no WebSocket operations; see also
`x-websockets`): `WS /v1/coops/{coop}/ws?after=&type=&author=`, offering the subprotocols
`icn.v1` and `icn.bearer.<token>` (the node answers `icn.v1`; a token in the URL is refused,
close 4400 `token-in-url`). Frames `{"position": n, "event": {…}}` and `{"heartbeat": ms}`.
Close codes: 4401 unauthorized/invalid-token, 4403 token-coop-mismatch/missing-scope/
member-suspended/not-a-member, 4008 too slow, 1001 shutdown."""

After = Annotated[int, QueryParameter(ge=-1, le=MAX_POSITION)]
TypePrefix = Annotated[str | None, QueryParameter(pattern=TYPE_PATTERN, max_length=64)]
Author = Annotated[str | None, QueryParameter(max_length=128)]


def _seconds(name: str, default: float) -> float:
    """A positive duration from the environment, read per connection so tests can shorten it."""
    try:
        value = float(os.environ.get(name, default))
    except ValueError:
        return default
    return value if value > 0 else default


def heartbeat_s() -> float:
    """Seconds between heartbeats (``ICN_STREAM_HEARTBEAT_S``, default 15)."""
    return _seconds("ICN_STREAM_HEARTBEAT_S", HEARTBEAT_S)


def send_timeout_s() -> float:
    """How long a send may block before dropping the subscriber (``ICN_STREAM_SEND_TIMEOUT_S``)."""
    return _seconds("ICN_STREAM_SEND_TIMEOUT_S", SEND_TIMEOUT_S)


# -- Server-Sent Events -------------------------------------------------------


def sse_message(d: Delivery) -> bytes:
    """``id``/``event``/``data``; a wire event is one line, but any newline still splits safely."""
    data = b"".join(b"data: " + line + b"\n" for line in d.wire.split(b"\n"))
    return b"id: %d\nevent: %s\n%s\n" % (d.position, d.type.encode(), data)


def _sse_chunks(item: list[Delivery] | Heartbeat) -> list[bytes]:
    if isinstance(item, Heartbeat):
        return [b": heartbeat %d\n\n" % item.at_ms]
    chunks: list[bytes] = []
    pending = b""
    for d in item:
        pending += sse_message(d)
        if len(pending) >= SSE_CHUNK_BYTES:
            chunks.append(pending)
            pending = b""
    return [*chunks, pending] if pending else chunks


async def sse_body(
    source: AsyncIterator[list[Delivery] | Heartbeat], send_timeout: float
) -> AsyncIterator[bytes]:
    """The response body; a chunk whose send took longer than ``send_timeout`` ends the stream."""
    async with contextlib.aclosing(source):  # type: ignore[type-var]
        async for item in source:
            chunks = _sse_chunks(item)
            del item  # nothing of a page is kept while the stream idles
            chunks.reverse()
            while chunks:
                started = time.monotonic()
                yield chunks.pop()  # the server sends it before asking for the next one
                if time.monotonic() - started > send_timeout:
                    log.info("dropping a slow SSE subscriber")
                    yield TOO_SLOW_SSE
                    return


class StreamsController(Controller):
    """The coop's log, live, over Server-Sent Events (the WebSocket twin is :func:`ws_stream`)."""

    path = COOP_ROUTES
    tags = ("streams",)
    opt = needs("log:read")

    @get(
        "/stream",
        media_type="text/event-stream",
        summary="Live stream of the coop's log (Server-Sent Events)",
        description=WS_DESCRIPTION,
    )
    async def sse_stream(
        self,
        feed: FeedDep,
        store: StoreDep,
        coop: CoopPath,
        after: After = -1,
        type: TypePrefix = None,
        author: Author = None,
        last_event_id: Annotated[
            int | None, HeaderParameter(name="Last-Event-ID", ge=-1, le=MAX_POSITION)
        ] = None,
    ) -> Stream:
        """Events after ``after`` (or ``Last-Event-ID``, which wins), then live, with heartbeats."""
        start = last_event_id if last_event_id is not None else after
        source = follow(feed, store, coop, Filters(start, type, author), heartbeat_s())
        return Stream(
            sse_body(source, send_timeout_s()),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )


# -- WebSocket ----------------------------------------------------------------


class WsLike(Protocol):
    """The part of a WebSocket the sender uses (a fake in unit tests)."""

    async def send_text(self, data: str) -> None: ...

    def receive(self) -> Awaitable[Any]: ...


def ws_frame(d: Delivery) -> str:
    """``{"position": n, "event": <wire>}``, the wire bytes spliced in unchanged."""
    return (b'{"position":%d,"event":%s}' % (d.position, d.wire)).decode()


async def _send_all(
    socket: WsLike, source: AsyncIterator[list[Delivery] | Heartbeat], send_timeout: float
) -> tuple[int, str]:
    async with contextlib.aclosing(source):  # type: ignore[type-var]
        async for item in source:
            if isinstance(item, Heartbeat):
                frames = [f'{{"heartbeat":{item.at_ms}}}']
            else:
                frames = [ws_frame(d) for d in item]
            for frame in frames:
                try:
                    with anyio.fail_after(send_timeout):
                        await socket.send_text(frame)
                except TimeoutError:
                    return WS_TOO_SLOW
    return WS_SHUTDOWN


async def pump_ws(
    socket: WsLike, source: AsyncIterator[list[Delivery] | Heartbeat], send_timeout: float
) -> tuple[int, str] | None:
    """Send until shutdown (1001), a blocked send (4008), or the client leaving (None)."""
    outcome: tuple[int, str] | None = None
    async with anyio.create_task_group() as tg:

        async def sender() -> None:
            nonlocal outcome
            try:
                outcome = await _send_all(socket, source, send_timeout)
            except Exception:  # the client went away mid-send
                log.debug("websocket send failed", exc_info=True)
            tg.cancel_scope.cancel()

        tg.start_soon(sender)
        with contextlib.suppress(Exception):
            while (await socket.receive())["type"] != "websocket.disconnect":
                pass  # clients have nothing to say; reading notices their leaving
        tg.cancel_scope.cancel()
    return outcome


def _ws_filters(socket: WebSocket[Any, Any, Any]) -> tuple[Filters, str]:
    """The query (``after``, ``type``, ``author``), checked like the SSE route's, and the
    ``Authorization`` to check (from the header or the ``icn.bearer.`` subprotocol)."""
    q = socket.query_params
    if "token" in q:
        raise ApiProblem(400, "token-in-url", "send the token as a subprotocol, not in the URL")
    if problem := WS_QUERY.problem(q.multi_items()):
        raise problem
    try:
        after = int(q.get("after", "-1"))
    except ValueError:
        raise ApiProblem(400, "invalid-request", "after must be an integer") from None
    prefix, author = q.get("type") or None, q.get("author") or None
    if not -1 <= after <= MAX_POSITION:
        raise ApiProblem(400, "invalid-request", "after must be -1 or a position")
    if prefix is not None and (len(prefix) > 64 or not re.match(TYPE_PATTERN, prefix)):
        raise ApiProblem(400, "invalid-request", "type must be a type prefix like ledger.")
    if author is not None and len(author) > 128:
        raise ApiProblem(400, "invalid-request", "author is too long")
    return Filters(after, prefix, author), ws_auth.authorization(socket.headers)


@websocket(f"{COOP_ROUTES}/ws")
async def ws_stream(
    socket: WebSocket[Any, Any, Any],
    coop: FromPath[str],  # not CoopPath: every refusal comes after the handshake
    gate: NamedDependency[Gate],
    feed: FeedDep,
    store: StoreDep,
) -> None:
    """Frames ``{"position", "event"}`` and ``{"heartbeat"}``.

    The token comes as the subprotocol ``icn.bearer.<token>`` beside ``icn.v1``
    (or an ``Authorization`` header), never in the URL (see ``ws_auth``).
    Refusals come after the handshake as close codes (browsers see no HTTP
    status), which is why this route is not behind the coop router's guard and
    asks the gate itself: 4400 token-in-url, 4401 unauthorized/invalid-token,
    4403 token-coop-mismatch/missing-scope/member-suspended/not-a-member.
    """
    await socket.accept(subprotocols=ws_auth.chosen(ws_auth.offered(socket.headers)))
    try:
        filters, auth = _ws_filters(socket)
        gate.admit(auth, coop, "log:read")
    except ApiProblem as problem:
        await socket.close(code=4000 + problem.status, reason=problem.code)
        return
    source = follow(feed, store, coop, filters, heartbeat_s())
    outcome = await pump_ws(socket, source, send_timeout_s())
    if outcome is None:
        return
    if outcome == WS_TOO_SLOW:
        log.info("dropping a slow websocket subscriber")
    with anyio.move_on_after(CLOSE_TIMEOUT_S), contextlib.suppress(Exception):
        await socket.close(code=outcome[0], reason=outcome[1])
