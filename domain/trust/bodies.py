"""Bodies of the trust event types (docs/trust.md documents every field).

An attestation is one member's statement about another (or about another
coop); the latest by the same truster for the same subject and context
replaces the earlier one, and only its truster may revoke it (or the coop's
DID, as an accepted proposal orders). A standing
epoch is a coop duty: its body is a digest, never the list, so it fits one
event for any number of members.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from icn.domain.coop.records import PPM, Did, Strict
from icn.domain.events.canonical import MAX_SAFE_INT

ATTESTATION_RECORDED = "trust.AttestationRecorded"
ATTESTATION_REVOKED = "trust.AttestationRevoked"
STANDING_PUBLISHED = "trust.StandingPublished"

Context = Literal["general", "ledger", "governance", "compute"]
CONTEXTS: tuple[Context, ...] = ("general", "ledger", "governance", "compute")
"""What a truster vouches for: the ledger's credit term reads ``ledger`` (else
``general``), governance reads ``governance``, compute placement ``compute``."""

ScorePpm = Annotated[int, msgspec.Meta(ge=0, le=PPM)]
EventId = Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{64}$")]


class AttestationRecorded(Strict, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``trust.AttestationRecorded``: signed by the truster, an active member."""

    subject: Did
    """An active member's DID, or another coop's DID (coop-to-coop trust)."""
    context: Context
    score_ppm: ScorePpm
    """How much, 0 to 1,000,000; 0 withdraws trust without revoking the statement."""
    expires_ts: Annotated[int, msgspec.Meta(ge=0, le=MAX_SAFE_INT)] | None = None
    """When it stops counting (ms, judged against trusted time); ``None``: never."""
    note: Annotated[str, msgspec.Meta(max_length=280)] | None = None
    subject_coop: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None
    """Set for coop-to-coop trust: the other coop's name, whose DID ``subject`` is. Such
    an attestation is kept and shown but not checked against another coop's state
    (no replica may depend on a coop it does not host) and gives no member standing."""


class AttestationRevoked(Strict, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``trust.AttestationRevoked``: signed by the truster of the attestation it names, or by
    the coop's DID carrying out an accepted ``revoke-trust`` proposal."""

    attestation: EventId
    """The id of the ``trust.AttestationRecorded`` event withdrawn."""
    proposal: EventId | None = None
    """The accepted ``revoke-trust`` proposal the coop's DID carries out: required when the
    coop's DID revokes (it made no attestation of its own), never set by a truster."""


class StandingPublished(Strict, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``trust.StandingPublished``: signed by the coop's DID, a node duty.

    Every node recomputes the standing when it judges this event and refuses
    it unless ``count`` and ``digest`` match; the list itself never travels.
    """

    context: Context
    epoch: Annotated[int, msgspec.Meta(ge=1, le=MAX_SAFE_INT)]
    """1 for the first epoch of this context, then one more each time."""
    as_of: Annotated[int, msgspec.Meta(ge=0, le=MAX_SAFE_INT)]
    """The coop's log size the computation covers: this event's own position."""
    count: Annotated[int, msgspec.Meta(ge=0, le=MAX_SAFE_INT)]
    """How many members have a standing (the pairs the digest covers)."""
    digest: Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{64}$")]
    """BLAKE3 of the canonical JSON list of ``[did, standing_ppm]`` pairs sorted by DID."""
