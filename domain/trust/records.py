"""What the trust rules keep: live attestations, and each member's standing at the last epoch.

An attestation record is keyed by (context, truster, subject), so a later
statement replaces an earlier one by construction, and a revocation marks it
rather than deleting it (a record is the whole truth about one thing). A
standing record holds what decisions read between epochs.
"""

from __future__ import annotations

from typing import ClassVar

from icn.domain.coop.records import Record


class AttestationRecord(Record, frozen=True, kw_only=True):
    """The live statement of one truster about one subject in one context."""

    kind: ClassVar[str] = "attestation"
    id: str
    """The ``trust.AttestationRecorded`` event that made it."""
    truster: str
    subject: str
    context: str
    score_ppm: int
    recorded_ms: int
    """Trusted time of the event: where its decay starts."""
    expires_ts: int | None = None
    revoked: bool = False

    def key(self) -> str:
        return attestation_key(self.context, self.truster, self.subject)

    def live_at(self, now: int) -> bool:
        """Counts in a computation at trusted time ``now``."""
        return not self.revoked and (self.expires_ts is None or now < self.expires_ts)


def attestation_key(context: str, truster: str, subject: str) -> str:
    """The storage key: context first, so one context's attestations are one key range."""
    return f"{context}/{truster}/{subject}"


class EpochRecord(Record, frozen=True, kw_only=True):
    """The last standing epoch published for one context."""

    kind: ClassVar[str] = "trust-epoch"
    context: str
    epoch: int
    as_of: int
    published_ms: int
    """The instant the epoch was computed for: its event's ``ts`` (see the rule)."""
    count: int
    digest: str
    attestations_since: int = 0
    """Attestations and revocations in this context since this epoch (the next epoch's trigger)."""

    def key(self) -> str:
        return self.context


class StandingRecord(Record, frozen=True, kw_only=True):
    """One member's standing in one context at the last epoch: what decisions read."""

    kind: ClassVar[str] = "standing"
    did: str
    context: str
    epoch: int
    standing_ppm: int
    """Share of the whole coop's standing, in ppm."""
    normalised_ppm: int
    """Standing against a typical member's, capped at 1,000,000: what classes read."""

    def key(self) -> str:
        return f"{self.context}/{self.did}"


class StandingAtEpochRecord(Record, frozen=True, kw_only=True):
    """One member's standing in one context at one epoch, for the history of standings.

    The rules never read it (they read :class:`StandingRecord`, the last epoch's); it is a
    record so that it is made where the standing is computed, once per accepted epoch, and
    rebuilt by ``icn replay`` like every record. The store keeps these apart from the rules'
    state, in an append-only table a member's history is paged from. ``trust_class`` is the
    class under the policy in force at the epoch.
    """

    kind: ClassVar[str] = "standing-epoch"
    did: str
    context: str
    epoch: int
    standing_ppm: int
    normalised_ppm: int
    trust_class: str

    def key(self) -> str:
        return f"{self.context}/{self.did}/{self.epoch}"


RECORD_TYPES = (AttestationRecord, EpochRecord, StandingRecord, StandingAtEpochRecord)
"""The trust capability's records, for :data:`icn.domain.registry.RECORD_TYPES`."""
