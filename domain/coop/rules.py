"""Rules for founding a coop, its membership and its policy.

Each rule takes the checked body, the event and the view, and answers a
refusal or the records the event writes. Who may state what:
the coop's DID founds and changes policy; admins (or the coop's DID) admit,
assign roles, suspend and reinstate; a DID applies and exits for itself.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import msgspec

from icn.domain.capability import EventType
from icn.domain.coop import bodies as b
from icn.domain.coop.names import name_problem
from icn.domain.coop.records import (
    ENGINE_GRAMMAR,
    CoopRecord,
    CurrencySpec,
    MemberRecord,
    MemberStatus,
    Policy,
)
from icn.domain.coop.state import CoopView, Effects, founded_coop, is_authority
from icn.domain.governance import actions as ga
from icn.domain.governance.links import follow_link, is_action, pretrusted_policy
from icn.domain.identity.did import is_valid_did
from icn.domain.refusals import Code, Refusal

if TYPE_CHECKING:
    from icn.domain.events.envelope import Event


def policy_problem(policy: Policy, currencies: dict[str, CurrencySpec]) -> Refusal | None:
    """Every currency has a credit policy, and policy names no unknown currency."""
    for code in policy.credit:
        if code not in currencies:
            return Refusal(Code.INVALID_POLICY, f"credit policy for unknown currency {code!r}")
    for code in policy.demurrage:
        if code not in currencies:
            return Refusal(Code.INVALID_POLICY, f"demurrage policy for unknown currency {code!r}")
    for code in currencies:
        if code not in policy.credit:
            return Refusal(Code.INVALID_POLICY, f"currency {code!r} has no credit policy")
    for code, credit in policy.credit.items():
        if credit.initial_limit > credit.max_limit:
            return Refusal(Code.INVALID_POLICY, f"{code}: initial_limit is above max_limit")
    t = policy.trust
    if not t.known_ppm <= t.partner_ppm <= t.federated_ppm:
        return Refusal(Code.INVALID_POLICY, "trust class thresholds must not decrease")
    c = policy.compute
    # the schema's pattern ends in ``$``, which lets a trailing newline by: match it whole
    if re.fullmatch(ENGINE_GRAMMAR.strip("^$"), c.engine) is None:
        return Refusal(Code.INVALID_POLICY, f"compute: engine {c.engine!r} is not wasmtime-X.Y.Z")
    if c.expire_after_seconds < c.replace_after_seconds:
        return Refusal(
            Code.INVALID_POLICY, "compute: expire_after_seconds is below replace_after_seconds"
        )
    return None


def founded(body: b.Founded, event: Event, view: CoopView, now: int) -> Refusal | Effects:
    """The author becomes the coop's DID; founders are active members from now."""
    if view.coop(event.coop) is not None:
        return Refusal(Code.COOP_ALREADY_FOUNDED, f"coop {event.coop} is already founded")
    currencies: dict[str, CurrencySpec] = {}
    for c in body.currencies:
        if c.code in currencies:
            return Refusal(Code.INVALID_POLICY, f"currency {c.code!r} is listed twice")
        currencies[c.code] = c
    problem = policy_problem(body.policy, currencies)
    if problem:
        return problem
    effects: Effects = [
        CoopRecord(
            coop=event.coop,
            did=event.author,
            name=body.name,
            currencies=currencies,
            policy=body.policy,
            founded_ms=now,
            founders=tuple(sorted(m.did for m in body.members)),
        )
    ]
    seen: set[str] = set()
    for m in body.members:
        if not is_valid_did(m.did) or m.did == event.author or m.did in seen:
            return Refusal(Code.INVALID_MEMBER, f"founding member {m.did!r} is not a distinct DID")
        seen.add(m.did)
        effects.append(
            MemberRecord(did=m.did, status=MemberStatus.ACTIVE, roles=tuple(m.roles), joined_ms=now)
        )
    return effects


def _authority(view: CoopView, event: Event) -> CoopRecord | Refusal:
    coop = founded_coop(view, event)
    if not is_authority(view, coop, event.author):
        return Refusal(Code.NOT_AUTHORIZED, f"{event.type} needs an admin or the coop's DID")
    return coop


def _target(view: CoopView, event: Event, did: str) -> MemberRecord | Refusal:
    if not is_valid_did(did):
        return Refusal(Code.INVALID_MEMBER, f"{did!r} is not a DID")
    member = view.member(event.coop, did)
    if member is None or member.status in (MemberStatus.APPLIED, MemberStatus.EXITED):
        return Refusal(Code.NOT_A_MEMBER, f"{did} is not a member of {event.coop}")
    return member


def _admin_acts_on(view: CoopView, event: Event, did: str) -> MemberRecord | Refusal:
    """An admin (or the coop's DID) acting on an existing member: both checked, in that order."""
    coop = _authority(view, event)
    if isinstance(coop, Refusal):
        return coop
    return _target(view, event, did)


def applied(body: b.MemberApplied, event: Event, view: CoopView, now: int) -> Refusal | Effects:
    """Anyone not already in may apply (again after an exit)."""
    coop = founded_coop(view, event)
    member = view.member(event.coop, event.author)
    if event.author == coop.did:
        return Refusal(Code.INVALID_MEMBER, "the coop's DID cannot be a member")
    if member is not None and member.status in (MemberStatus.ACTIVE, MemberStatus.SUSPENDED):
        return Refusal(Code.ALREADY_MEMBER, f"{event.author} is already a member")
    return [MemberRecord(did=event.author, status=MemberStatus.APPLIED, applied_ms=now)]


def admitted(body: b.MemberAdmitted, event: Event, view: CoopView, now: int) -> Refusal | Effects:
    """An admin admits an applicant (or invites a DID directly)."""
    coop = _authority(view, event)
    if isinstance(coop, Refusal):
        return coop
    wanted = ga.AddMember(member=body.member, roles=list(body.roles))
    linked = follow_link(view, event, coop, body.proposal, is_action(wanted))
    if isinstance(linked, Refusal):
        return linked
    if not is_valid_did(body.member) or body.member == coop.did:
        return Refusal(Code.INVALID_MEMBER, f"{body.member!r} cannot be admitted")
    member = view.member(event.coop, body.member)
    if member is not None and member.status in (MemberStatus.ACTIVE, MemberStatus.SUSPENDED):
        return Refusal(Code.ALREADY_MEMBER, f"{body.member} is already a member")
    return [
        *linked,
        MemberRecord(
            did=body.member,
            status=MemberStatus.ACTIVE,
            roles=tuple(body.roles),
            applied_ms=member.applied_ms if member else None,
            joined_ms=now,
        ),
    ]


def _replace(member: MemberRecord, **changes: Any) -> MemberRecord:

    return msgspec.structs.replace(member, **changes)


def roles_assigned(
    body: b.RolesAssigned, event: Event, view: CoopView, now: int
) -> Refusal | Effects:
    """An admin sets a member's roles (the whole set)."""
    member = _admin_acts_on(view, event, body.member)
    if isinstance(member, Refusal):
        return member
    return [_replace(member, roles=tuple(dict.fromkeys(body.roles)))]


def suspended(body: b.MemberSuspended, event: Event, view: CoopView, now: int) -> Refusal | Effects:
    """An admin suspends an active member (or the coop's DID, as a proposal orders)."""
    member = _admin_acts_on(view, event, body.member)
    if isinstance(member, Refusal):
        return member
    wanted = ga.RemoveMember(member=body.member, reason=body.reason)
    linked = follow_link(view, event, founded_coop(view, event), body.proposal, is_action(wanted))
    if isinstance(linked, Refusal):
        return linked
    if member.status != MemberStatus.ACTIVE:
        return Refusal(Code.ALREADY_SUSPENDED, f"{body.member} is already suspended")
    return [*linked, _replace(member, status=MemberStatus.SUSPENDED)]


def reinstated(
    body: b.MemberReinstated, event: Event, view: CoopView, now: int
) -> Refusal | Effects:
    """An admin lifts a suspension (or the coop's DID, as a proposal orders)."""
    member = _admin_acts_on(view, event, body.member)
    if isinstance(member, Refusal):
        return member
    wanted = ga.ReinstateMember(member=body.member)
    linked = follow_link(view, event, founded_coop(view, event), body.proposal, is_action(wanted))
    if isinstance(linked, Refusal):
        return linked
    if member.status != MemberStatus.SUSPENDED:
        return Refusal(Code.NOT_SUSPENDED, f"{body.member} is not suspended")
    return [*linked, _replace(member, status=MemberStatus.ACTIVE)]


def exited(body: b.MemberExited, event: Event, view: CoopView, now: int) -> Refusal | Effects:
    """A member leaves, but only with every balance at zero: nobody walks away from a debt."""
    coop = founded_coop(view, event)
    member = _target(view, event, event.author)
    if isinstance(member, Refusal):
        return member
    for code, spec in coop.currencies.items():
        account = view.account(event.coop, event.author, code)
        if account is not None and account.balance != 0:
            return Refusal(
                Code.BALANCE_NOT_SETTLED,
                f"the balance is {spec.show(account.balance)}; settle it to zero before leaving",
            )
    return [_replace(member, status=MemberStatus.EXITED, roles=())]


def policy_changed(
    body: b.PolicyChanged, event: Event, view: CoopView, now: int
) -> Refusal | Effects:
    """Only the coop's DID changes policy (governance will decide when it signs)."""
    coop = founded_coop(view, event)
    if event.author != coop.did:
        return Refusal(Code.NOT_AUTHORIZED, "only the coop's DID changes its policy")

    def fits(action: ga.Action) -> bool:
        if isinstance(action, ga.SetPretrusted):
            wanted = pretrusted_policy(coop.policy, action.pretrusted)
            return body.policy == wanted and not body.add_currencies
        changed = ga.ChangePolicy(policy=body.policy, add_currencies=list(body.add_currencies))
        return action == changed

    linked = follow_link(view, event, coop, body.proposal, fits)
    if isinstance(linked, Refusal):
        return linked
    currencies = dict(coop.currencies)
    for c in body.add_currencies:
        if c.code in currencies:
            return Refusal(Code.INVALID_POLICY, f"currency {c.code!r} already exists")
        currencies[c.code] = c
    problem = policy_problem(body.policy, currencies)
    if problem:
        return problem

    # Demurrage newly switched on starts counting now, not at the founding.
    until = dict(coop.demurrage_until)
    for code in body.policy.demurrage:
        if code not in coop.policy.demurrage:
            until[code] = now
    return [
        *linked,
        msgspec.structs.replace(
            coop, policy=body.policy, currencies=currencies, demurrage_until=until
        ),
    ]


def profile_updated(
    body: b.ProfileUpdated, event: Event, view: CoopView, now: int
) -> Refusal | Effects:
    """A member names themselves: the author is the member the name is about, so nobody else
    can set it. The rules keep nothing (no decision reads a name); the names read model
    takes the last one."""
    member = _target(view, event, event.author)
    if isinstance(member, Refusal):
        return member
    problem = name_problem(body.display_name)
    if problem:
        return Refusal(Code.INVALID_NAME, problem)
    return []


EVENT_TYPES = (
    EventType(b.FOUNDED, b.Founded, founded),
    EventType(b.MEMBER_APPLIED, b.MemberApplied, applied),
    EventType(b.MEMBER_ADMITTED, b.MemberAdmitted, admitted),
    EventType(b.ROLES_ASSIGNED, b.RolesAssigned, roles_assigned),
    EventType(b.MEMBER_SUSPENDED, b.MemberSuspended, suspended),
    EventType(b.MEMBER_REINSTATED, b.MemberReinstated, reinstated),
    EventType(b.MEMBER_EXITED, b.MemberExited, exited),
    EventType(b.POLICY_CHANGED, b.PolicyChanged, policy_changed),
    EventType(b.PROFILE_UPDATED, b.ProfileUpdated, profile_updated),
)
"""The coop's event types: founding, membership and roles, policy."""
