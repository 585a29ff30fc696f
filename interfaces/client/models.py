"""Typed results of the client: msgspec Structs, decoded straight from the node's JSON.

Events stay ``msgspec.Raw``/``bytes``: their bytes are what was signed, so the
client hands them on untouched instead of re-encoding a parsed copy.
"""

from __future__ import annotations

import msgspec


class Session(msgspec.Struct, frozen=True):
    """A bearer token of one DID for one coop, valid until ``expires_at`` (ms since the epoch)."""

    token: str
    expires_at: int
    did: str
    coop: str

    def __repr__(self) -> str:
        # The token is a credential: reprs end up in logs and bug reports.
        return f"Session(did={self.did!r}, coop={self.coop!r}, expires_at={self.expires_at})"


class Placed(msgspec.Struct, frozen=True):
    """Where an event sits in the coop's log (``position`` = leaf index)."""

    id: str
    position: int


class ChainHead(msgspec.Struct, frozen=True):
    """What an author's next event must carry."""

    next_seq: int
    prev: str | None


class LogEntry(msgspec.Struct, frozen=True):
    """An event (its exact wire bytes) and its position in the log."""

    position: int
    event: msgspec.Raw

    @property
    def wire(self) -> bytes:
        """The event as signed."""
        return bytes(self.event)


class EventPage(msgspec.Struct, frozen=True):
    """A page of the log; ``next`` is the ``after`` of the following page (None: the end)."""

    events: list[LogEntry]
    next: int | None


class StreamEvent(msgspec.Struct, frozen=True):
    """One event from the live stream."""

    position: int
    type: str
    wire: bytes


class Problem(msgspec.Struct):
    """An RFC 9457 problem document as the node sends it."""

    status: int = 0
    code: str = "http-error"
    detail: str = ""
    title: str = ""
    line: int | None = None


class _Challenge(msgspec.Struct):
    nonce: str
    expires_at: int


class _Token(msgspec.Struct):
    token: str
    expires_at: int
    scopes: list[str]


class _Batch(msgspec.Struct):
    events: list[Placed]
