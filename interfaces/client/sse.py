"""A Server-Sent Events parser (WHATWG HTML, "event stream interpretation").

Hand-written rather than a dependency: the format is a dozen lines of rules,
and the client needs the comments too (heartbeats prove a quiet stream alive).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import msgspec


class SseMessage(msgspec.Struct, frozen=True):
    """A dispatched message; ``id`` is the stream's last event id when it was dispatched."""

    event: str
    data: str
    id: str | None


class SseComment(msgspec.Struct, frozen=True):
    """A ``:`` line (the node's heartbeats)."""

    text: str


def parse(lines: Iterable[str]) -> Iterator[SseMessage | SseComment]:
    """Messages and comments of an event stream, given its lines without line endings."""
    event, last_id = "", None
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield SseMessage(event or "message", "\n".join(data), last_id)
            event, data = "", []
            continue
        if line.startswith(":"):
            yield SseComment(line[1:].removeprefix(" "))
            continue
        name, colon, value = line.partition(":")
        if colon:
            value = value.removeprefix(" ")
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
        elif name == "id" and "\0" not in value:
            last_id = value
        # "retry" and unknown fields: ignored; the client keeps its own backoff.
    # A message not closed by a blank line is incomplete and is dropped (per the spec).
