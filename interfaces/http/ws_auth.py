"""How a WebSocket client hands over its token: never in the URL.

Browsers cannot set an ``Authorization`` header on a WebSocket, and a token
in the query string (``?token=``) ends up in every log that prints URLs: the
server's own access line, proxies, browser history. The one header a browser
*can* set is ``Sec-WebSocket-Protocol``, so a client offers two subprotocols:

* ``icn.v1``: the frame format of this API, which the node chooses;
* ``icn.bearer.<token>``: the token (a JWT's characters are all legal there).

The node answers ``Sec-WebSocket-Protocol: icn.v1``, so the token is not even
echoed. Clients that can set headers may send ``Authorization: Bearer`` instead.
"""

from __future__ import annotations

from collections.abc import Mapping

PROTOCOL = "icn.v1"
BEARER_PREFIX = "icn.bearer."


def offered(headers: Mapping[str, str]) -> list[str]:
    """The subprotocols the client offered, in its order."""
    raw = headers.get("sec-websocket-protocol", "")
    return [p.strip() for p in raw.split(",") if p.strip()]


def bearer_token(protocols: list[str]) -> str | None:
    """The token carried as ``icn.bearer.<token>``, if one was offered."""
    for protocol in protocols:
        if protocol.startswith(BEARER_PREFIX) and len(protocol) > len(BEARER_PREFIX):
            return protocol[len(BEARER_PREFIX) :]
    return None


def chosen(protocols: list[str]) -> str | None:
    """The subprotocol to answer with: ``icn.v1``, else the bearer one (a browser whose
    offer is not answered fails the handshake), else none."""
    if PROTOCOL in protocols:
        return PROTOCOL
    return next((p for p in protocols if p.startswith(BEARER_PREFIX)), None)


def authorization(headers: Mapping[str, str]) -> str:
    """An ``Authorization`` value for the route's usual token check: the header itself when
    sent, else ``Bearer <token>`` from the subprotocol, else empty (401)."""
    header = headers.get("authorization", "")
    if header:
        return header
    token = bearer_token(offered(headers))
    return f"Bearer {token}" if token else ""
