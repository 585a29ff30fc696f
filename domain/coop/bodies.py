"""Bodies of the coop's own event types (spec section 6 leaves them to the project).

Each type is a past-tense fact signed by the one who may state it: the coop's
DID founds the coop and changes policy, an applicant applies, an admin
admits, suspends and assigns roles, a member leaves. Unknown fields are
refused, so a node never half-applies a newer event it does not understand.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from icn.domain.coop.records import Currency, CurrencySpec, Did, Policy, Role, Strict
from icn.domain.events.canonical import MAX_SAFE_INT

Text = Annotated[str, msgspec.Meta(max_length=1024)]
Roles = Annotated[list[Role], msgspec.Meta(max_length=16)]
ProposalId = Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{64}$")]
"""The accepted ``governance.ProposalSubmitted`` an effect of the coop's DID carries out."""

FOUNDED = "coop.Founded"
MEMBER_APPLIED = "coop.MemberApplied"
MEMBER_ADMITTED = "coop.MemberAdmitted"
ROLES_ASSIGNED = "coop.RolesAssigned"
MEMBER_SUSPENDED = "coop.MemberSuspended"
MEMBER_REINSTATED = "coop.MemberReinstated"
MEMBER_EXITED = "coop.MemberExited"
POLICY_CHANGED = "coop.PolicyChanged"
PROFILE_UPDATED = "coop.ProfileUpdated"


class FoundingMember(Strict, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A member from the first day, with roles (at least one founder should be ``admin``)."""

    did: Did
    roles: Roles = msgspec.field(default_factory=list)


class Founded(Strict, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``coop.Founded``: signed by the coop's own DID, which becomes the treasury account."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    currencies: Annotated[list[CurrencySpec], msgspec.Meta(min_length=1, max_length=16)]
    policy: Policy
    members: Annotated[list[FoundingMember], msgspec.Meta(min_length=1, max_length=1000)]


class MemberApplied(Strict, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``coop.MemberApplied``: signed by the applicant."""

    note: Text | None = None


class MemberAdmitted(Strict, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``coop.MemberAdmitted``: signed by an admin (or the coop's DID)."""

    member: Did
    roles: Roles = msgspec.field(default_factory=list)
    proposal: ProposalId | None = None
    """Set when the coop's DID admits as an accepted proposal orders (a link
    back for readers; ``None`` otherwise)."""


class RolesAssigned(Strict, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``coop.RolesAssigned``: the member's full set of roles from now on."""

    member: Did
    roles: Roles


class MemberSuspended(Strict, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``coop.MemberSuspended``: the member may neither pay nor receive until reinstated."""

    member: Did
    reason: Text
    proposal: ProposalId | None = None
    """Set when the coop's DID suspends as an accepted proposal orders (a link
    back for readers; ``None`` otherwise)."""


class MemberReinstated(Strict, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``coop.MemberReinstated``: a suspended member is active again."""

    member: Did
    proposal: ProposalId | None = None
    """Set when the coop's DID reinstates as an accepted proposal orders (a link back for
    readers; ``None`` otherwise)."""


class MemberExited(Strict, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``coop.MemberExited``: signed by the member who leaves (balances must be settled)."""

    reason: Text | None = None


class PolicyChanged(Strict, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``coop.PolicyChanged``: the whole new policy (and currencies added), by the coop's DID."""

    policy: Policy
    add_currencies: Annotated[list[CurrencySpec], msgspec.Meta(max_length=16)] = msgspec.field(
        default_factory=list
    )
    proposal: ProposalId | None = None
    """Set when the coop's DID changes the policy as an accepted proposal orders (a
    ``change-policy``, or a ``set-pretrusted`` stating the policy as it stands with the
    new pre-trusted set); ``None`` otherwise."""


class ProfileUpdated(Strict, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``coop.ProfileUpdated``: signed by the member it is about, and only by them (the body
    names nobody, so no one can label another member). The last one wins.

    ``display_name``: 1 to 64 characters (256 bytes of UTF-8), NFC, nothing invisible or
    reordering (:func:`icn.domain.coop.names.name_problem`); shown beside the DID, never
    instead of it.
    """

    display_name: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


BODIES: dict[str, type[Strict]] = {
    FOUNDED: Founded,
    MEMBER_APPLIED: MemberApplied,
    MEMBER_ADMITTED: MemberAdmitted,
    ROLES_ASSIGNED: RolesAssigned,
    MEMBER_SUSPENDED: MemberSuspended,
    MEMBER_REINSTATED: MemberReinstated,
    MEMBER_EXITED: MemberExited,
    POLICY_CHANGED: PolicyChanged,
    PROFILE_UPDATED: ProfileUpdated,
}

__all__ = ["BODIES", "MAX_SAFE_INT", "Currency"]
