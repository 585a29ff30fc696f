"""The trust rules' questions, asked of the coop rules' view by kind and key.

A standing epoch is judged by recomputing it from every live attestation and
every member at the event's own position, so it reads key ranges
(:meth:`CoopView.scan`) and the log's size, not one record by key.
"""

from __future__ import annotations

from icn.domain.coop.records import MemberRecord
from icn.domain.coop.state import CoopView
from icn.domain.trust.records import (
    AttestationRecord,
    EpochRecord,
    StandingRecord,
    attestation_key,
)


def attestation(
    view: CoopView, coop: str, context: str, truster: str, subject: str
) -> AttestationRecord | None:
    """The statement of ``truster`` about ``subject`` in ``context``, if one was made."""
    r = view.record(coop, AttestationRecord.kind, attestation_key(context, truster, subject))
    return r if isinstance(r, AttestationRecord) else None


def attestations(view: CoopView, coop: str, context: str) -> list[AttestationRecord]:
    """Every attestation record of one context, revoked and expired ones included."""
    found = view.scan(coop, AttestationRecord.kind, f"{context}/")
    return [r for r in found if isinstance(r, AttestationRecord)]


def members(view: CoopView, coop: str) -> list[MemberRecord]:
    """Every membership record of the coop."""
    return [r for r in view.scan(coop, MemberRecord.kind, "") if isinstance(r, MemberRecord)]


def epoch(view: CoopView, coop: str, context: str) -> EpochRecord | None:
    """The last epoch of ``context`` (epoch 0: attestations counted, none published yet)."""
    r = view.record(coop, EpochRecord.kind, context)
    return r if isinstance(r, EpochRecord) else None


def standing(view: CoopView, coop: str, context: str, did: str) -> StandingRecord | None:
    """A member's standing in ``context`` at the last epoch."""
    r = view.record(coop, StandingRecord.kind, f"{context}/{did}")
    return r if isinstance(r, StandingRecord) else None
