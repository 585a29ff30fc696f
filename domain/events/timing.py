"""Trusted time: what a node's rules judge time by, instead of the author's ``ts``.

An event's ``ts`` is the author's claim. Judged by it, a new member could pay
past a 30-day credit ramp by dating the payment 31 days ahead, and a frozen
member could pay by dating past the freeze's ``until``; a ``ts`` far in the
future would also lock the author's chain (``ts`` never decreases along it).

So every rule judges by *trusted time* instead, and no event is stored whose
``ts`` lies more than the allowed skew ahead of it (``clock-skew``).
Trusted time must be the same for every node judging the same stream
position, or replicas would decide differently: for an event that comes from
a coop's stream it is the time the stream carries for that message (the
judging node's clock, stamped in a header when it sequenced the write, or
else JetStream's own timestamp); for a node without replication it is the
node's clock when it accepted the event. It is stored beside each event, so
``icn replay`` judges with the same time again.
"""

from __future__ import annotations

DEFAULT_MAX_CLOCK_SKEW_S = 300


def clock_skew_reason(ts: int, trusted_ms: int, max_skew_ms: int) -> str | None:
    """Why an event dated ``ts`` may not be stored at ``trusted_ms``, or ``None``."""
    ahead = ts - trusted_ms
    if ahead <= max_skew_ms:
        return None
    return (
        f"ts is {_span(ahead)} ahead of this node's trusted time"
        f" (at most {_span(max_skew_ms)} is allowed): check the signing device's clock"
    )


def stream_time(stamped_ms: int | None, stream_ms: int, max_skew_ms: int) -> int:
    """The trusted time of a stream message.

    ``stamped_ms``: what the sequencing node stamped (its clock when it judged
    the write); ``stream_ms``: JetStream's own timestamp of the message. Both
    are stored in the stream, so every consumer computes the same value. A
    stamp missing, or further ahead of the stream's own time than the skew
    allows (a node with a broken clock), gives way to the stream's time.
    """
    if stamped_ms is None or stamped_ms - stream_ms > max_skew_ms:
        return stream_ms
    return stamped_ms


def _span(ms: int) -> str:
    seconds = ms // 1000
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 2 * 3600:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} days"
