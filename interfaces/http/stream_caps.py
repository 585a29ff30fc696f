"""Caps on open live streams (SSE and WebSocket): per DID, and for the node in all.

A live stream holds a socket, a task and its buffers for as long as the
client likes, so without a cap one member (or a few) could open streams until
the node runs out of file descriptors or memory. A DID over its share gets
``429 too-many-streams`` (it can close one of its own); a node at its total
gets ``503 streams-full``; both with ``Retry-After``.

Counted in ASGI middleware rather than in the routes, because only the
middleware sees the whole life of a stream: an SSE route returns at once and
its body is sent afterwards, while the middleware's call to the app lasts
until the response is over, however it ends (finished, client gone,
shutdown), so the slot is always given back. A request whose token does not
verify takes no slot: its route refuses it at once.
"""

from __future__ import annotations

import re
from collections import Counter

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send

from icn.interfaces.http import ws_auth
from icn.interfaces.http.asgi_problem import send_problem
from icn.interfaces.http.auth import Tokens
from icn.interfaces.http.heap_trim import HeapTrim

STREAM_PATH = re.compile(r"^/v1/coops/[^/]+/(stream|ws)$")
PER_DID_RETRY_S = 5
TOTAL_RETRY_S = 10


class StreamSlots:
    """How many streams are open, per DID and in all. Used on the event loop only."""

    def __init__(self, per_did: int, total: int) -> None:
        self.per_did = per_did
        self.total = total
        self.by_did: Counter[str] = Counter()
        self.open = 0
        self.by_kind: Counter[str] = Counter()
        """Open streams by kind (``stream``: server-sent events, ``ws``: WebSocket)."""
        self.trim = HeapTrim()

    def take(self, did: str, kind: str = "stream") -> tuple[int, str, str, int] | None:
        """A slot for ``did``: ``None`` if granted, else ``(status, code, detail, retry_s)``."""
        if self.by_did[did] >= self.per_did:
            detail = f"this DID has {self.per_did} live streams open already: close one first"
            return 429, "too-many-streams", detail, PER_DID_RETRY_S
        if self.open >= self.total:
            return 503, "streams-full", "the node serves all the live streams it can", TOTAL_RETRY_S
        self.by_did[did] += 1
        self.open += 1
        self.by_kind[kind] += 1
        return None

    def give_back(self, did: str, kind: str = "stream") -> None:
        """The stream of ``did`` is over."""
        self.open -= 1
        self.by_kind[kind] -= 1
        self.by_did[did] -= 1
        if self.by_did[did] <= 0:
            del self.by_did[did]  # no key left behind per DID that ever streamed
        self.trim.soon()  # what the stream's buffers took goes back to the system


class StreamCaps:
    """ASGI middleware holding a slot for as long as a stream request lasts."""

    def __init__(self, app: ASGIApp, slots: StreamSlots, tokens: Tokens) -> None:
        self.app = app
        self.slots = slots
        self.tokens = tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        did = None
        kind = "stream"
        if scope["type"] in (ScopeType.HTTP, ScopeType.WEBSOCKET) and (
            match := STREAM_PATH.match(scope["path"])
        ):
            did = _did_of(scope, self.tokens)
            kind = match.group(1)
        if did is None:
            await self.app(scope, receive, send)
            return
        refusal = self.slots.take(did, kind)
        if refusal is not None:
            status, code, detail, retry_s = refusal
            headers = {"Retry-After": str(retry_s)}
            await send_problem(scope, receive, send, status, code, detail, headers=headers)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self.slots.give_back(did, kind)


def _did_of(scope: Scope, tokens: Tokens) -> str | None:
    """The DID of the request's token (header, or WebSocket subprotocol), if it verifies."""
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", ())}
    scheme, _, token = ws_auth.authorization(headers).partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    try:
        return tokens.read(token.strip()).did
    except Exception:  # invalid or expired: the route refuses it with the right code
        return None
