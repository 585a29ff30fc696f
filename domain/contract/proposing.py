"""A contract's ``propose`` statement opening a real proposal, on behalf of its invocation.

Governance takes proposals from eligible members; a contract is no member.
So the proposal is opened by the coop's DID, as the invocation's effect: the
duty that carries an invocation out signs one ``governance.ProposalSubmitted``
per ``propose`` the rule ran, each naming the invocation (its optional
``invocation`` field), in the same atomic batch as the transfers' entries and
the ``contract.Executed`` that lists them (its ``proposals`` field). From
there the proposal is like any other: members vote under the domain's rules
as they stood at its submission, the coop's DID closes it and executes it.

Which domain rules apply, and when:

* when invoked (the caller learns at once, nothing is stored): the domain
  must exist (``unknown-domain``), its period bounds must allow the
  statement's ``period_days`` (``invalid-voting-period``), and a member's
  invocation needs that member to be an eligible proposer of the domain
  (``not-a-proposer``): a contract is never a way around who may propose. A
  schedule's run (the coop's DID is the caller) may propose in any domain:
  the vote that deployed the contract approved its schedules;
* when opened (the proposal is judged at its own position, so the domain
  may have changed since): the same checks again, and the body must be
  exactly the one the invocation computed, in order (``execution-mismatch``),
  on an invocation still waiting for its effects (``unknown-invocation``,
  ``already-executed``). The vote closes ``period_days`` after the
  invocation's trusted time, so two nodes keeping the coop's key sign the
  same bytes; a proposal whose close would already be past is refused
  (``invalid-voting-period``). A refusal refuses the whole batch, and the
  duty records the code on ``contract.Executed`` as ``failed``: the
  invocation takes effect whole or not at all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from icn.domain.contract.records import InvocationRecord, InvocationState
from icn.domain.contract.runtime import ContractError, ProposeEffect
from icn.domain.coop.records import CoopRecord
from icn.domain.coop.state import CoopView
from icn.domain.governance import state
from icn.domain.governance.actions import TextOnly
from icn.domain.governance.eligibility import qualifies
from icn.domain.governance.records import DomainRecord
from icn.domain.refusals import Code, Refusal

if TYPE_CHECKING:
    from icn.domain.governance.bodies import ProposalSubmitted

DAY_MS = 86_400_000


def closes_at(inv: InvocationRecord, effect: ProposeEffect) -> int:
    """When the opened proposal's vote closes: ``period_days`` after the invocation."""
    return inv.invoked_ms + effect.period_days * DAY_MS


def proposal_body(inv: InvocationRecord, effect: ProposeEffect) -> dict[str, Any]:
    """The ``governance.ProposalSubmitted`` body the coop's DID signs for ``effect``."""
    return {
        "domain": effect.domain,
        "title": effect.title,
        "text": effect.text,
        "action": {"kind": "text"},
        "closes_at": closes_at(inv, effect),
        "invocation": inv.id,
    }


def _domain_problem(
    view: CoopView, coop: CoopRecord, effect: ProposeEffect, caller: str
) -> tuple[Code, str] | DomainRecord:
    domain = state.domain(view, coop, effect.domain)
    if domain is None:
        return Code.UNKNOWN_DOMAIN, f"propose: no domain {effect.domain!r}"
    rules = domain.rules
    if caller != coop.did and not qualifies(
        view, coop, view.member(coop.coop, caller), rules.proposer_roles, rules.min_class_propose
    ):
        return Code.NOT_A_PROPOSER, f"propose: {caller} may not propose in {effect.domain}"
    length = effect.period_days * DAY_MS
    if not rules.min_period_ms <= length <= rules.max_period_ms:
        return Code.INVALID_VOTING_PERIOD, (
            f"propose: a vote of {effect.period_days} days; {effect.domain} allows"
            f" {rules.min_period_ms} to {rules.max_period_ms} ms"
        )
    return domain


def check_proposals(
    view: CoopView, coop: CoopRecord, effects: list[ProposeEffect], caller: str
) -> None:
    """Raise the refusal of the first proposal the domain rules would not take from ``caller``
    (the invocation is then refused, or a schedule's run recorded as refused)."""
    for effect in effects:
        found = _domain_problem(view, coop, effect, caller)
        if not isinstance(found, DomainRecord):
            raise ContractError(*found)


def opened_for(
    body: ProposalSubmitted, proposal_id: str, view: CoopView, coop: CoopRecord, now: int
) -> tuple[DomainRecord, InvocationRecord] | Refusal:
    """For proposal ``proposal_id`` by the coop's DID: its domain, and its invocation with
    the proposal counted as opened (the record to write), or why it is refused."""
    if body.invocation is None:
        return Refusal(
            Code.NOT_A_PROPOSER,
            "the coop's DID opens a proposal only for a contract invocation, naming it",
        )
    inv = waiting(view, coop.coop, body.invocation)
    if isinstance(inv, Refusal):
        return inv
    if len(inv.opened) >= len(inv.proposals):
        return Refusal(Code.EXECUTION_MISMATCH, f"invocation {inv.id} opened its proposals")
    effect = inv.proposals[len(inv.opened)]
    if not _is(body, inv, effect):
        return Refusal(Code.EXECUTION_MISMATCH, "the proposal is not the one the rule computed")
    domain = _domain_problem(view, coop, effect, inv.caller)
    if not isinstance(domain, DomainRecord):
        return Refusal(*domain)
    if body.closes_at <= now:
        return Refusal(Code.INVALID_VOTING_PERIOD, "the contract's vote would be closed already")
    return domain, msgspec.structs.replace(inv, opened=(*inv.opened, proposal_id))


def waiting(view: CoopView, coop: str, invocation: str) -> InvocationRecord | Refusal:
    """The invocation, judged and waiting for its effects, or why it cannot take one."""
    found = view.record(coop, InvocationRecord.kind, invocation)
    if not isinstance(found, InvocationRecord):
        return Refusal(Code.UNKNOWN_INVOCATION, f"no invocation {invocation}")
    if found.state != InvocationState.JUDGED:
        return Refusal(Code.ALREADY_EXECUTED, f"invocation {found.id} is {found.state}")
    return found


def _is(body: ProposalSubmitted, inv: InvocationRecord, effect: ProposeEffect) -> bool:
    return (
        body.domain == effect.domain
        and body.title == effect.title
        and body.text == effect.text
        and isinstance(body.action, TextOnly)
        and body.opens_at is None
        and body.appeal is None
        and body.closes_at == closes_at(inv, effect)
    )


def proposals_problem(inv: InvocationRecord, named: list[str]) -> Refusal | None:
    """``contract.Executed`` names exactly the proposals its invocation opened, in order."""
    if list(inv.opened) != named or len(named) != len(inv.proposals):
        return Refusal(
            Code.EXECUTION_MISMATCH,
            f"the invocation is carried out by {len(inv.proposals)} proposals, opened before it",
        )
    return None
