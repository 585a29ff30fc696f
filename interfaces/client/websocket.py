"""What a WebSocket client of the node offers, so its token never goes into a URL.

The node reads the token from the subprotocol ``icn.bearer.<token>`` and
answers with ``icn.v1`` (docs/api.md, "Live streams"); a token in the query
string is refused, since every URL log would keep it.
"""

from __future__ import annotations

PROTOCOL = "icn.v1"
BEARER_PREFIX = "icn.bearer."


def ws_subprotocols(token: str) -> list[str]:
    """The ``Sec-WebSocket-Protocol`` offer for ``token``: pass it as ``subprotocols=``."""
    return [PROTOCOL, BEARER_PREFIX + token]
