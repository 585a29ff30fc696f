"""Whether a domain's rules hold together and a proposal's action can be carried out.

An action is checked when it is proposed, against the log as it stands, so
members never vote on something that could not happen today (a budget in a
currency the coop does not have, a policy ``coop.PolicyChanged`` would
refuse); its effect events are judged again by their own rules when executed.
"""

from __future__ import annotations

from icn.domain.contract.deploy import deploy_problem
from icn.domain.coop.records import PPM, CoopRecord, CurrencySpec, MemberStatus
from icn.domain.coop.rules import policy_problem
from icn.domain.coop.state import CoopView
from icn.domain.governance import actions as a
from icn.domain.identity.did import is_valid_did
from icn.domain.refusals import Code, Refusal
from icn.domain.trust.bodies import ATTESTATION_RECORDED

MAJORITY = 500_000


def rules_problem(rules: a.DomainRules) -> Refusal | None:
    """The periods are ordered and the threshold fits the method."""

    def bad(reason: str) -> Refusal:
        return Refusal(Code.INVALID_DOMAIN, reason)

    if not 0 < rules.min_period_ms <= rules.max_period_ms:
        return bad("min_period_ms must be above 0 and at most max_period_ms")
    if rules.method == "majority" and rules.threshold_ppm != MAJORITY:
        return bad("majority means threshold_ppm 500000")
    if rules.method == "supermajority" and not MAJORITY < rules.threshold_ppm < PPM:
        return bad("a supermajority threshold lies between 500000 and 1000000")
    if rules.threshold_ppm >= PPM and rules.method != "unanimous":
        return bad("no tally can exceed a threshold of 1000000 (use unanimous)")
    if rules.weights and rules.method != "weighted":
        return bad("weights are for the weighted method only")
    return None


def _is_member(view: CoopView, coop: CoopRecord, did: str) -> Refusal | None:
    member = view.member(coop.coop, did)
    if member is None or member.status not in (MemberStatus.ACTIVE, MemberStatus.SUSPENDED):
        return Refusal(Code.NOT_A_MEMBER, f"{did} is not a member of {coop.coop}")
    return None


def action_problem(action: a.Action, view: CoopView, coop: CoopRecord, now: int) -> Refusal | None:
    """Why ``action`` could not be carried out as the log stands at ``now``, or ``None``."""
    match action:
        case a.AddMember(member=did):
            if not is_valid_did(did) or did == coop.did:
                return Refusal(Code.INVALID_MEMBER, f"{did!r} cannot be admitted")
            if _is_member(view, coop, did) is None:
                return Refusal(Code.ALREADY_MEMBER, f"{did} is already a member")
        case a.RemoveMember(member=did) | a.Unfreeze(member=did):
            return _is_member(view, coop, did)
        case a.ReinstateMember(member=did):
            member = view.member(coop.coop, did)
            if member is None or member.status != MemberStatus.SUSPENDED:
                return Refusal(Code.NOT_SUSPENDED, f"{did} is not suspended")
        case a.Freeze(member=did, until=until):
            if until is not None and until <= now:
                return Refusal(Code.INVALID_FREEZE, "the freeze would end before it starts")
            return _is_member(view, coop, did)
        case a.ChangePolicy():
            return _policy_problem(action, coop)
        case (
            a.AllocateBudget(to=did, currency=currency)
            | a.ReclaimBudget(member=did, currency=currency)
        ):
            if currency not in coop.currencies:
                return Refusal(Code.UNKNOWN_CURRENCY, f"the coop has no currency {currency!r}")
            return _is_member(view, coop, did)
        case a.RevokeTrust(attestation=attestation):
            made = view.event(coop.coop, attestation)
            if made is None or made.type != ATTESTATION_RECORDED:
                return Refusal(Code.UNKNOWN_ATTESTATION, f"no attestation {attestation}")
        case a.ChangeDomain(rules=rules):
            return rules_problem(rules)
        case a.SetPretrusted(pretrusted=dids):
            if dids is not None and not all(is_valid_did(d) for d in dids):
                return Refusal(Code.INVALID_MEMBER, "every pre-trusted entry must be a DID")
        case a.EscalatedDispute():
            return _dispute_problem(action, view, coop)
        case a.DeployContract():
            return deploy_problem(
                view, coop.coop, action.name, action.version, action.code, action.capabilities
            )
    return None


def _policy_problem(action: a.ChangePolicy, coop: CoopRecord) -> Refusal | None:
    currencies: dict[str, CurrencySpec] = dict(coop.currencies)
    for c in action.add_currencies:
        if c.code in currencies:
            return Refusal(Code.INVALID_POLICY, f"currency {c.code!r} already exists")
        currencies[c.code] = c
    return policy_problem(action.policy, currencies)


def _dispute_problem(
    action: a.EscalatedDispute, view: CoopView, coop: CoopRecord
) -> Refusal | None:
    dispute = view.dispute(coop.coop, action.dispute)
    if dispute is None:
        return Refusal(Code.UNKNOWN_DISPUTE, f"no dispute {action.dispute}")
    if dispute.outcome != "escalated":
        return Refusal(Code.INVALID_ACTION, "the dispute was not escalated to governance")
    if dispute.task is not None and action.ruling != "dismissed":
        return Refusal(
            Code.INVALID_ACTION, f"a dispute about compute task {dispute.task} is only dismissed"
        )
    if (action.ruling == "partial-refund") != (action.refund is not None):
        return Refusal(Code.INVALID_ACTION, "a refund goes with a partial refund, and only there")
    if action.refund is not None and action.refund >= dispute.amount:
        return Refusal(Code.INVALID_ACTION, "a partial refund is below the amount disputed")
    return None
