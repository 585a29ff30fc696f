"""The signed event (spec section 3) and the checks that need no other event.

``inspect`` turns one line of bytes into an :class:`Inspection`: the decoded
event (when it decodes) and the first stateless verdict that applies:
``malformed``, ``bad-id`` or ``bad-signature``. Chain verdicts need the state
of other events and live in :mod:`icn.domain.events.chain`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from blake3 import blake3
from nacl.bindings import crypto_sign_open
from nacl.exceptions import BadSignatureError, CryptoError
from nacl.signing import SigningKey

from icn.domain.events.canonical import MAX_SAFE_INT, canonical_bytes, json_model_problem
from icn.domain.events.ijson import TOO_DEEP, depth_and_members, shape_problem
from icn.domain.events.verdicts import Verdict
from icn.domain.identity.did import InvalidDid, did_from_public_key, public_key_from_did
from icn.domain.refusals import Code, Refusal
from icn.domain.registry import known

MAX_EVENT_BYTES = 64 * 1024
# Lines longer than this are refused before parsing, to bound the work an
# attacker can make a verifier do; the precise 64 KiB rule is applied to the
# canonical form once decoded.
MAX_LINE_BYTES = 4 * MAX_EVENT_BYTES
SIGNING_CONTEXT = b"icn-event-v1:"

Hex64 = Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{64}$")]
Hex128 = Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{128}$")]
CoopName = Annotated[str, msgspec.Meta(pattern="^[a-z0-9][a-z0-9-]{0,63}$")]
TypeName = Annotated[str, msgspec.Meta(pattern=r"^[a-z]+\.[A-Za-z]+$")]
Seq = Annotated[int, msgspec.Meta(ge=1, le=MAX_SAFE_INT)]
Millis = Annotated[int, msgspec.Meta(ge=0, le=MAX_SAFE_INT)]


class UnsignedEvent(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What the author signs: the event without ``id`` and ``sig``."""

    v: Literal[1]
    coop: CoopName
    author: str
    seq: Seq
    prev: Hex64 | None
    ts: Millis
    type: TypeName
    body: dict[str, Any]


class Event(UnsignedEvent, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The wire form: the unsigned members plus ``id`` and ``sig``."""

    id: Hex64
    sig: Hex128

    def unsigned(self) -> UnsignedEvent:
        """The signed-over part of this event."""
        return UnsignedEvent(
            v=self.v,
            coop=self.coop,
            author=self.author,
            seq=self.seq,
            prev=self.prev,
            ts=self.ts,
            type=self.type,
            body=self.body,
        )

    def wire_bytes(self) -> bytes:
        """Canonical bytes of the wire object: the stored and exported form (section 7)."""
        return canonical_bytes(self)


class Inspection(msgspec.Struct, frozen=True):
    """The outcome of the stateless checks on one line.

    ``verdict`` is ``None`` when every stateless check passed; ``event`` is
    set whenever the line decoded to a well-formed event (also for ``bad-id``
    and ``bad-signature``, so callers can say which event was refused).
    """

    event: Event | None
    verdict: Verdict | None
    reason: str = ""
    wire: bytes = b""
    code: str = ""
    """A finer stable code than the verdict where one exists (``self-payment`` …)."""
    body: Any = None
    """The body as its registered Struct (:mod:`icn.domain.registry`), decoded once here so
    the chain checks and the rules never convert it again; ``None`` for a type no
    capability registers, or a node body that does not fit (the rules refuse it)."""


_decoder = msgspec.json.Decoder(Event)
_ENVELOPE_MEMBERS = len(Event.__struct_fields__)


def compute_id(unsigned: UnsignedEvent) -> str:
    """``id``: lowercase hex BLAKE3-256 of the canonical unsigned event."""
    return blake3(canonical_bytes(unsigned)).hexdigest()


def signing_message(event_id: str) -> bytes:
    """What Ed25519 signs: the context string followed by the 32 raw id bytes."""
    return SIGNING_CONTEXT + bytes.fromhex(event_id)


def _malformed(reason: str) -> Inspection:
    return Inspection(None, Verdict.MALFORMED, reason)


def _decode(raw: bytes) -> tuple[Event, Any] | Inspection:
    if len(raw) > MAX_LINE_BYTES:
        return _malformed(f"event too large: {len(raw)} bytes (limit {MAX_EVENT_BYTES})")
    try:
        event = _decoder.decode(raw)
    except msgspec.ValidationError as exc:
        return _malformed(str(exc))
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        # msgspec reports invalid UTF-8 inside object keys as UnicodeDecodeError.
        return _malformed(f"not JSON: {exc}")
    except RecursionError:
        return _malformed(TOO_DEEP)
    deepest, members = depth_and_members(event.body, level=2)
    shape = shape_problem(raw, deepest=deepest, members=_ENVELOPE_MEMBERS + members)
    if shape:
        return _malformed(shape)
    if (event.prev is None) != (event.seq == 1):
        return _malformed("`prev` must be null exactly when `seq` is 1")
    try:
        public_key_from_did(event.author)
    except InvalidDid as exc:
        return _malformed(f"bad author DID: {exc}")
    body, problem = _typed_body(event)
    if problem is not None:
        code = "" if problem.code == Code.MALFORMED else problem.code
        return Inspection(event, Verdict.MALFORMED, problem.reason, code=code)
    return event, body


def _typed_body(event: Event) -> tuple[Any, Refusal | None]:
    """The body as its registered Struct, or why the line is malformed.

    A spec body (every implementation knows it) is checked by its Struct,
    which already refuses fractions and out-of-range integers. Any other body
    must fit the JSON model (the generic walk); a node body that then does
    not fit its Struct is left for the rules to refuse (``invalid-body``).
    """
    kind = known(event.type)
    if kind is None or not kind.spec:
        walk = json_model_problem(event.body, "$.body")
        if walk:
            return None, Refusal(Code.MALFORMED, walk)
        if kind is None:
            return None, None
        try:
            return msgspec.convert(event.body, kind.body), None
        except msgspec.ValidationError:
            return None, None
    try:
        body = msgspec.convert(event.body, kind.body)
    except msgspec.ValidationError as exc:
        finer = kind.on_decode_failure(event.body) if kind.on_decode_failure else None
        return None, finer or Refusal(Code.MALFORMED, f"bad {event.type} body: {exc}")
    return body, kind.check(body) if kind.check else None


def inspect(raw: bytes | str) -> Inspection:
    """Run the stateless checks of spec sections 2-3 on one wire event."""
    data = raw.encode() if isinstance(raw, str) else raw
    decoded = _decode(data)
    if isinstance(decoded, Inspection):
        if decoded.event is not None:
            return Inspection(None, decoded.verdict, decoded.reason, code=decoded.code)
        return decoded
    event, body = decoded
    wire = event.wire_bytes()
    if len(wire) > MAX_EVENT_BYTES:
        return _malformed(f"event too large: {len(wire)} bytes (limit {MAX_EVENT_BYTES})")
    expected = compute_id(event.unsigned())
    if expected != event.id:
        return Inspection(event, Verdict.BAD_ID, f"id does not match content (expected {expected})")
    try:
        crypto_sign_open(
            bytes.fromhex(event.sig) + signing_message(event.id),
            public_key_from_did(event.author),
        )
    except (BadSignatureError, CryptoError, ValueError):
        return Inspection(event, Verdict.BAD_SIGNATURE, "signature does not verify for author")
    return Inspection(event, None, "", wire, body=body)


def decode_stored(wire: bytes) -> Event:
    """An event from bytes this node stored (or a worker checked): decoded, not re-checked.

    Every check ran when the bytes were accepted; the one decoder here is
    shared by every reader of the store.
    """
    return _decoder.decode(wire)


def stored_inspection(wire: bytes) -> Inspection:
    """An already-checked line as an :class:`Inspection` that passed, with its typed body."""
    return passed_inspection(_decoder.decode(wire), wire)


def passed_inspection(event: Event, wire: bytes) -> Inspection:
    """A checked event (decoded here or by a worker) as an :class:`Inspection` that passed.

    One place types the body, so a line judged in a worker and one read from the
    store become the same Inspection.
    """
    kind = known(event.type)
    body = None
    if kind is not None:
        try:
            body = msgspec.convert(event.body, kind.body)
        except msgspec.ValidationError:
            body = None  # a node body that never fit: the rules refuse it again
    return Inspection(event, None, "", wire, body=body)


def verify(raw: bytes | str) -> Event:
    """Decode and fully check one event's own content; raise ``ValueError`` if it fails.

    This is the helper other services use to trust an event they received
    (for example from a NATS subscription) without running a node.
    """
    result = inspect(raw)
    if result.verdict is not None or result.event is None:
        raise ValueError(f"{result.verdict}: {result.reason}")
    return result.event


def sign_event(
    key: SigningKey,
    *,
    coop: str,
    seq: int,
    prev: str | None,
    ts: int,
    type: str,
    body: dict[str, Any],
) -> Event:
    """Build and sign an event of ``key``'s chain."""
    author = did_from_public_key(bytes(key.verify_key))
    unsigned = UnsignedEvent(
        v=1, coop=coop, author=author, seq=seq, prev=prev, ts=ts, type=type, body=body
    )
    event_id = compute_id(unsigned)
    sig = key.sign(signing_message(event_id)).signature.hex()
    return Event(
        v=1,
        coop=coop,
        author=author,
        seq=seq,
        prev=prev,
        ts=ts,
        type=type,
        body=body,
        id=event_id,
        sig=sig,
    )
