"""Rules for attestations, revocations and standing epochs.

Who may state what: an active member vouches for another active member (or
for another coop), never for themselves; only the truster revokes (or the coop's
DID, carrying out an accepted ``revoke-trust`` proposal); only the
coop's DID publishes an epoch, and every node recomputes that epoch when it
judges the event and refuses it unless position, count and digest match.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from icn.domain.capability import EventType
from icn.domain.coop.records import CoopRecord
from icn.domain.coop.state import CoopView, Effects, active_problem, founded_coop
from icn.domain.governance import actions as ga
from icn.domain.governance.links import follow_link
from icn.domain.identity.did import is_valid_did
from icn.domain.refusals import Code, Refusal
from icn.domain.trust import bodies as b
from icn.domain.trust import state
from icn.domain.trust.classes import classify
from icn.domain.trust.records import (
    AttestationRecord,
    EpochRecord,
    StandingAtEpochRecord,
    StandingRecord,
)
from icn.domain.trust.standing import Edge, Standing, compute, edge_weight

if TYPE_CHECKING:
    from icn.domain.events.envelope import Event


def _counted(view: CoopView, coop: str, context: str) -> EpochRecord:
    """The context's epoch record with one more attestation since it (epoch 0 if none yet)."""
    last = state.epoch(view, coop, context)
    if last is None:
        return EpochRecord(
            context=context, epoch=0, as_of=0, published_ms=0, count=0, digest="",
            attestations_since=1,
        )  # fmt: skip
    return msgspec.structs.replace(last, attestations_since=last.attestations_since + 1)


def recorded(
    body: b.AttestationRecorded, event: Event, view: CoopView, now: int
) -> Refusal | Effects:
    """An active member vouches; a later statement about the same subject replaces this one."""
    problem = active_problem(view, event.coop, event.author, "truster")
    if problem:
        return problem
    if body.subject == event.author:
        return Refusal(Code.SELF_ATTESTATION, "a member cannot vouch for themselves")
    if body.subject_coop is None:
        problem = active_problem(view, event.coop, body.subject, "subject")
        if problem:
            return problem
    elif not is_valid_did(body.subject) or body.subject_coop == event.coop:
        return Refusal(Code.INVALID_MEMBER, f"{body.subject!r} is not another coop's DID")
    if body.expires_ts is not None and body.expires_ts <= now:
        return Refusal(Code.INVALID_EXPIRY, "the attestation would expire before it is recorded")
    return [
        AttestationRecord(
            id=event.id,
            truster=event.author,
            subject=body.subject,
            context=body.context,
            score_ppm=body.score_ppm,
            recorded_ms=now,
            expires_ts=body.expires_ts,
        ),
        _counted(view, event.coop, body.context),
    ]


def revoked(
    body: b.AttestationRevoked, event: Event, view: CoopView, now: int
) -> Refusal | Effects:
    """The truster withdraws a live attestation of theirs; the coop's DID withdraws anyone's,
    but only as an accepted ``revoke-trust`` proposal orders (the link is required)."""
    target = view.event(event.coop, body.attestation)
    if target is None or target.type != b.ATTESTATION_RECORDED:
        return Refusal(Code.UNKNOWN_ATTESTATION, f"no attestation {body.attestation} in the log")
    coop = founded_coop(view, event)
    by_coop = event.author == coop.did
    if not by_coop and target.author != event.author:
        return Refusal(Code.NOT_TRUSTER, "only the truster may revoke an attestation")

    def fits(action: ga.Action) -> bool:
        return isinstance(action, ga.RevokeTrust) and action.attestation == body.attestation

    required = "the coop's DID revokes an attestation only as a proposal orders"
    linked = follow_link(
        view, event, coop, body.proposal, fits, required=required if by_coop else None
    )
    if isinstance(linked, Refusal):
        return linked
    context, subject = target.body["context"], target.body["subject"]
    live = state.attestation(view, event.coop, context, target.author, subject)
    if live is None or live.id != body.attestation or live.revoked:
        return Refusal(Code.ATTESTATION_NOT_LIVE, "replaced by a later attestation, or revoked")
    return [
        *linked,
        msgspec.structs.replace(live, revoked=True),
        _counted(view, event.coop, context),
    ]


def standing_at(view: CoopView, coop: CoopRecord, context: str, now: int) -> Standing:
    """The standing of ``context`` as the log stands, judged at trusted time ``now``."""
    policy = coop.policy.trust
    active = [m.did for m in state.members(view, coop.coop) if m.is_active]
    half_life = policy.half_life_days
    edges = [
        Edge(a.truster, a.subject, edge_weight(a.score_ppm, a.recorded_ms, now, half_life))
        for a in state.attestations(view, coop.coop, context)
        if a.live_at(now)
    ]
    pretrusted = policy.pretrusted if policy.pretrusted is not None else coop.founders
    return compute(
        active, pretrusted, edges, alpha_ppm=policy.alpha_ppm, iterations=policy.iterations
    )


def standing_published(
    body: b.StandingPublished, event: Event, view: CoopView, now: int
) -> Refusal | Effects:
    """The coop's DID publishes the next epoch; every node recomputes it before accepting."""
    coop = founded_coop(view, event)
    if event.author != coop.did:
        return Refusal(Code.NOT_AUTHORIZED, "only the coop's DID publishes standing")
    last = state.epoch(view, event.coop, body.context)
    expected = (last.epoch if last else 0) + 1
    if body.epoch != expected:
        return Refusal(Code.EPOCH_OUT_OF_ORDER, f"the next {body.context} epoch is {expected}")
    size = view.log_size(event.coop)
    if body.as_of != size:
        return Refusal(Code.STANDING_MISMATCH, f"as_of {body.as_of} is not this position {size}")
    # The one rule that reads ``ts``: decay and expiry make standing a function of
    # time, and the node computing the body cannot know the trusted time its append
    # will get. So the epoch is computed for its own ``ts``, which only the coop's key
    # signs, the chain bounds below (never before the coop's previous event) and the
    # clock-skew rule bounds above: every replica and auditor computes the same instant.
    result = standing_at(view, coop, body.context, event.ts)
    if body.count != len(result.members) or body.digest != result.digest():
        return Refusal(Code.STANDING_MISMATCH, "count or digest differs from the recomputation")
    effects: Effects = [
        EpochRecord(
            context=body.context,
            epoch=body.epoch,
            as_of=body.as_of,
            published_ms=event.ts,
            count=body.count,
            digest=body.digest,
        )
    ]
    shares = zip(result.members, result.standing_ppm(), result.normalised_ppm(), strict=True)
    effects += [
        StandingRecord(
            did=did, context=body.context, epoch=body.epoch, standing_ppm=s, normalised_ppm=n
        )
        for did, s, n in shares
    ]
    effects += [
        StandingAtEpochRecord(
            did=r.did,
            context=r.context,
            epoch=r.epoch,
            standing_ppm=r.standing_ppm,
            normalised_ppm=r.normalised_ppm,
            trust_class=classify(r.normalised_ppm, coop.policy.trust).value,
        )
        for r in effects
        if isinstance(r, StandingRecord)
    ]
    return effects


EVENT_TYPES = (
    EventType(b.ATTESTATION_RECORDED, b.AttestationRecorded, recorded),
    EventType(b.ATTESTATION_REVOKED, b.AttestationRevoked, revoked),
    EventType(b.STANDING_PUBLISHED, b.StandingPublished, standing_published),
)
"""The trust event types: attestations, revocations, standing epochs."""
