"""Effects and the proposals they carry out: the link every effect's own rule checks.

An effect of an accepted proposal is an ordinary event of its capability
(``coop.MemberAdmitted``, ``coop.PolicyChanged``, ``ledger.AccountFrozen``,
``ledger.DisputeResolved``, ``trust.AttestationRevoked``, ...) by the coop's
DID, naming the proposal in its ``proposal`` field. Its rule judges it as
always and asks :func:`follow_link` too: the proposal exists, is accepted,
has not been carried out yet, and its action is this very effect. The link
then writes, on the proposal, the effect's id and the action that would undo
it, computed from the state just before the effect (:func:`reverse_of`): what
an appeal that overturns the decision carries out.

A ledger entry's body is the spec's and cannot name a proposal: a budget's
entry names it in its memo (:func:`budget_transaction`), and the
``governance.ProposalExecuted`` rule checks that entry instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec

from icn.domain.coop.records import CoopRecord, Policy
from icn.domain.coop.state import CoopView, Effects
from icn.domain.governance import actions as a
from icn.domain.governance import state
from icn.domain.governance.records import Execution, ProposalRecord, ProposalState
from icn.domain.refusals import Code, Refusal

if TYPE_CHECKING:
    from icn.domain.events.envelope import Event

OVERTURNED = "overturned on appeal"
"""The reason or rationale a reverse action states."""

Fits = Callable[[a.Action], bool]
"""Whether a proposal's action orders exactly the effect being judged."""


def follow_link(
    view: CoopView,
    event: Event,
    coop: CoopRecord,
    proposal_id: str | None,
    fits: Fits,
    *,
    required: str | None = None,
) -> Refusal | Effects:
    """The records an effect's link writes, or why the link is refused.

    No link: nothing to write, unless ``required`` (then it is the reason of a
    ``proposal-required`` refusal). A link: by the coop's DID only, to an
    accepted proposal not carried out yet whose action ``fits`` the effect.
    """
    if proposal_id is None:
        return Refusal(Code.PROPOSAL_REQUIRED, required) if required else []
    if event.author != coop.did:
        return Refusal(Code.LINK_BY_COOP_ONLY, "only the coop's DID carries out a proposal")
    p = state.proposal(view, coop.coop, proposal_id)
    if p is None:
        return Refusal(Code.UNKNOWN_PROPOSAL, f"no proposal {proposal_id}")
    if p.state != ProposalState.ACCEPTED:
        return Refusal(Code.NOT_ACCEPTED, f"proposal {proposal_id} is {p.state}")
    if p.execution is not None or p.carried:
        return Refusal(Code.ALREADY_EXECUTED, f"proposal {proposal_id} was carried out already")
    if not fits(p.action):
        what = kind_of(p.action)
        return Refusal(Code.PROPOSAL_MISMATCH, f"proposal {proposal_id} orders {what}, not this")
    reverse = reverse_of(p.action, view, coop)
    return [msgspec.structs.replace(p, carried=(event.id,), reverse=reverse)]


def kind_of(action: a.Action) -> str:
    """The action's ``kind`` tag (``add-member``, ``freeze``, ...)."""
    return str(action.__struct_config__.tag)


def is_action(wanted: a.Action) -> Fits:
    """Fits exactly ``wanted`` (every field equal)."""
    return lambda action: action == wanted


def pretrusted_policy(policy: Policy, pretrusted: list[str] | None) -> Policy:
    """``policy`` with the trust policy's pre-trusted set replaced: what a ``set-pretrusted``
    proposal's ``coop.PolicyChanged`` states (the one event standing already reads)."""
    trust = msgspec.structs.replace(policy.trust, pretrusted=pretrusted)
    return msgspec.structs.replace(policy, trust=trust)


def _previous_policy(previous: Policy, change: a.ChangePolicy) -> Policy:
    """The policy before ``change``; a currency it added stays (currencies are never removed)
    with the credit policy the change gave it."""
    added = {c.code for c in change.add_currencies}
    kept = {code: p for code, p in change.policy.credit.items() if code in added}
    return msgspec.structs.replace(previous, credit={**previous.credit, **kept})


def reverse_of(action: a.Action, view: CoopView, coop: CoopRecord) -> a.Action | None:
    """What undoes ``action``, from the state just before its effect; ``None`` when nothing
    does: a revoked attestation (its truster may attest again), a dispute's ruling (its
    money has moved; a new dispute contests it), a new domain (domains are never
    removed), and words only."""
    match action:
        case a.AddMember(member=did) | a.ReinstateMember(member=did):
            return a.RemoveMember(member=did, reason=OVERTURNED)
        case a.RemoveMember(member=did):
            return a.ReinstateMember(member=did)
        case a.Freeze(member=did):
            return a.Unfreeze(member=did)
        case a.Unfreeze(member=did):
            m = view.member(coop.coop, did)
            reason = m.freeze_reason if m is not None and m.freeze_reason else OVERTURNED
            return a.Freeze(member=did, reason=reason, until=m.frozen_until if m else None)
        case a.ChangePolicy():
            return a.ChangePolicy(policy=_previous_policy(coop.policy, action))
        case a.SetPretrusted():
            return a.SetPretrusted(pretrusted=coop.policy.trust.pretrusted)
        case a.AllocateBudget(to=did, amount=amount, currency=currency, purpose=purpose):
            return a.ReclaimBudget(member=did, amount=amount, currency=currency, purpose=purpose)
        case a.ReclaimBudget(member=did, amount=amount, currency=currency, purpose=purpose):
            return a.AllocateBudget(to=did, amount=amount, currency=currency, purpose=purpose)
        case a.AmendCharter(section=section):
            versions = state.charter(view, coop.coop, section)
            text = versions[-1].text if versions else ""
            return a.AmendCharter(section=section, text=text, rationale=OVERTURNED)
        case a.ChangeDomain(domain=name):
            current = state.domain(view, coop, name)
            return a.ChangeDomain(domain=name, rules=current.rules) if current else None
    return None


def appeal_resolution(appealed: ProposalRecord) -> a.Action | None:
    """The action a proposal that overturns ``appealed`` carries (``text`` is always allowed):
    the reverse of what was executed, or what a rejection refused; ``None``: words only."""
    if appealed.state in (ProposalState.REJECTED, ProposalState.NO_QUORUM):
        return None if isinstance(appealed.action, a.TextOnly) else appealed.action
    if appealed.execution == Execution.EXECUTED:
        return appealed.reverse
    return None


def budget_transaction(
    action: a.AllocateBudget | a.ReclaimBudget, coop_did: str, proposal_id: str
) -> dict[str, Any]:
    """The one transaction a budget (or its reclaim) is carried out by, memo naming the proposal."""
    if isinstance(action, a.AllocateBudget):
        payer, payee = coop_did, action.to
    else:
        payer, payee = action.member, coop_did
    return {
        "from": payer,
        "to": payee,
        "amount": action.amount,
        "currency": action.currency,
        "memo": f"proposal {proposal_id}: {action.purpose}"[:1024],
    }
