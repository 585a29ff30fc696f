"""A Python client of the node's HTTP API, used by the CLI's remote commands.

The names below are loaded on first use (PEP 562), so importing the errors
(as the CLI's error handler does on every run) does not import httpx.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from icn.interfaces.client.api import IcnClient
    from icn.interfaces.client.errors import ApiError, ClientError, InputError, SessionError
    from icn.interfaces.client.models import (
        ChainHead,
        EventPage,
        LogEntry,
        Placed,
        Session,
        StreamEvent,
    )
    from icn.interfaces.client.sessions import SessionStore, StoredSession
    from icn.interfaces.client.websocket import ws_subprotocols

_WHERE = {
    "IcnClient": "api",
    "ApiError": "errors",
    "ClientError": "errors",
    "InputError": "errors",
    "SessionError": "errors",
    "ChainHead": "models",
    "EventPage": "models",
    "LogEntry": "models",
    "Placed": "models",
    "Session": "models",
    "StreamEvent": "models",
    "SessionStore": "sessions",
    "StoredSession": "sessions",
    "ws_subprotocols": "websocket",
}
__all__ = [
    "ApiError",
    "ChainHead",
    "ClientError",
    "EventPage",
    "IcnClient",
    "InputError",
    "LogEntry",
    "Placed",
    "Session",
    "SessionError",
    "SessionStore",
    "StoredSession",
    "StreamEvent",
    "ws_subprotocols",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)
