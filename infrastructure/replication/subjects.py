"""Names on the wire: one stream per coop, one subject per (coop, type, author).

``icn.<coop>.<type>.<author key>`` lets any NATS client pick what it wants
with ordinary wildcards (ARCHITECTURE section 4): a whole coop
(``icn.<coop>.>``), one event type (``icn.<coop>.ledger.EntryRecorded.*``) or
one author (``icn.<coop>.*.*.<key>``). The type name ``ledger.EntryRecorded``
is two tokens, so every event subject has exactly five.

Every part is checked before it reaches NATS, against the same rules the
event envelope uses, so a name can never smuggle in a ``.``, ``*`` or ``>``.
Stream names may not contain ``.``, ``*``, ``>``, whitespace or path
separators; ``-`` and ``_`` are allowed (checked against nats-server 2.15),
so ``ICN_<coop>`` needs no mapping and :func:`coop_of_stream` reverses it.
"""

from __future__ import annotations

import functools
import re

import msgspec

from icn.domain.events.envelope import CoopName, TypeName
from icn.domain.identity.did import InvalidDid, did_key_part

SUBJECT_ROOT = "icn"
STREAM_PREFIX = "ICN_"
TRUSTED_TIME_HEADER = "Icn-Trusted-Ms"
"""Header of a sequenced message: the trusted time (ms) its node judged the write at; every
consumer judges the message at the same time (icn.domain.events.timing)."""
# Consumer names follow the stream-name rules; keep them short and plain.
_NODE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


class InvalidName(ValueError):
    """A coop, type, author or node name that cannot become a NATS name."""


def _checked(value: str, kind: type, what: str) -> str:
    try:
        return str(msgspec.convert(value, kind))
    except msgspec.ValidationError:
        raise InvalidName(f"{value!r} is not a valid {what}") from None


def check_coop(coop: str) -> str:
    """``coop`` itself, if it matches ``^[a-z0-9][a-z0-9-]{0,63}$`` (the envelope's rule)."""
    return _checked(coop, CoopName, "coop name (lowercase letters, digits, '-')")


def author_key(author: str) -> str:
    """The ``z…`` part of an author's DID: the subject token that names the author."""
    try:
        return did_key_part(author)
    except InvalidDid as exc:
        raise InvalidName(f"{author!r} is not an author DID: {exc}") from None


def stream_name(coop: str) -> str:
    """``ICN_<coop>``: the JetStream stream holding every event of one coop."""
    return STREAM_PREFIX + check_coop(coop)


def coop_of_stream(name: str) -> str:
    """The coop a stream name belongs to (the inverse of :func:`stream_name`)."""
    if not name.startswith(STREAM_PREFIX):
        raise InvalidName(f"{name!r} is not an ICN stream name")
    return check_coop(name[len(STREAM_PREFIX) :])


@functools.lru_cache(maxsize=65536)
def event_subject(coop: str, event_type: str, author: str) -> str:
    """``icn.<coop>.<type>.<author key>``, where the event is published.

    Cached: a coop's subjects repeat (members × types), and checking the three
    names showed up per message in the publisher's profile.
    """
    kind = _checked(event_type, TypeName, "event type (like 'ledger.EntryRecorded')")
    return f"{SUBJECT_ROOT}.{check_coop(coop)}.{kind}.{author_key(author)}"


def coop_filter(coop: str) -> str:
    """Every event of one coop; also the stream's only subject."""
    return f"{SUBJECT_ROOT}.{check_coop(coop)}.>"


def type_filter(coop: str, event_type: str) -> str:
    """Every event of one type in one coop, by any author."""
    kind = _checked(event_type, TypeName, "event type (like 'ledger.EntryRecorded')")
    return f"{SUBJECT_ROOT}.{check_coop(coop)}.{kind}.*"


def author_filter(coop: str, author: str) -> str:
    """Every event one author wrote in one coop, of any type."""
    return f"{SUBJECT_ROOT}.{check_coop(coop)}.*.*.{author_key(author)}"


def durable_name(node: str) -> str:
    """The durable consumer name of one node on a coop's stream.

    The stream already names the coop, so the node name alone makes the
    consumer unique per (node, coop) and survives the node's restarts.
    """
    if not _NODE_RE.fullmatch(node):
        raise InvalidName(f"{node!r} is not a valid node name (letters, digits, '-', '_')")
    return node
