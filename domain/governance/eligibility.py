"""Who may propose and vote in a domain: its roles and, if set, a least trust class.

The class is read from the member's standing in the ``governance`` context
at the last epoch (a member without one is Isolated), so it changes only when
a coop-signed epoch changes it, at the same position on every replica.
"""

from __future__ import annotations

from collections.abc import Sequence

from icn.domain.coop.records import CoopRecord, MemberRecord
from icn.domain.coop.state import CoopView
from icn.domain.governance import state
from icn.domain.governance.actions import DomainRules
from icn.domain.trust import state as trust_state
from icn.domain.trust.classes import TrustClass, classify

RANK = {c.value: i for i, c in enumerate(TrustClass)}
"""Isolated < Known < Partner < Federated, as the enum lists them."""


def trust_class(view: CoopView, coop: CoopRecord, did: str) -> TrustClass:
    """The member's governance class at the last epoch."""
    standing = trust_state.standing(view, coop.coop, "governance", did)
    if standing is None:
        return TrustClass.ISOLATED
    return classify(standing.normalised_ppm, coop.policy.trust)


def qualifies(
    view: CoopView,
    coop: CoopRecord,
    member: MemberRecord | None,
    roles: Sequence[str],
    min_class: str | None,
) -> bool:
    """An active member holding one of ``roles`` (any member if none) and the class asked."""
    if member is None or not member.is_active:
        return False
    if roles and not set(roles) & set(member.roles):
        return False
    return min_class is None or RANK[trust_class(view, coop, member.did)] >= RANK[min_class]


def may_vote(view: CoopView, coop: CoopRecord, did: str, rules: DomainRules) -> bool:
    """``did`` is an eligible voter under ``rules`` now."""
    member = view.member(coop.coop, did)
    return qualifies(view, coop, member, rules.voter_roles, rules.min_class_vote)


def eligible_voters(
    view: CoopView, coop: CoopRecord, rules: DomainRules
) -> dict[str, tuple[str, ...]]:
    """Every eligible voter under ``rules`` with their roles (what weights read), by DID."""
    return {
        m.did: m.roles
        for m in state.members(view, coop.coop)
        if qualifies(view, coop, m, rules.voter_roles, rules.min_class_vote)
    }
