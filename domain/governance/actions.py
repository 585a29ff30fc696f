"""What an accepted proposal does: one tagged variant per kind of action.

The action travels in the proposal, so every voter votes on exactly the
effect that will be executed; an action is checked when it is proposed (a
budget in an unknown currency never reaches a vote) and its effect events are
judged again by their own rules when the coop's DID executes it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from icn.domain.contract.language import Capability, ContractName
from icn.domain.contract.runtime import FUEL_LIMIT_MAX
from icn.domain.coop.bodies import Roles, Text
from icn.domain.coop.records import Currency, CurrencySpec, Did, Policy, Role
from icn.domain.events.canonical import MAX_SAFE_INT
from icn.domain.trust.bodies import EventId

DomainName = Annotated[str, msgspec.Meta(pattern="^[a-z][a-z0-9_-]{0,31}$")]
Section = Annotated[str, msgspec.Meta(pattern="^[a-z0-9][a-z0-9._-]{0,63}$")]
Ms = Annotated[int, msgspec.Meta(ge=0, le=MAX_SAFE_INT)]
PpmFraction = Annotated[int, msgspec.Meta(ge=0, le=1_000_000)]
Method = Literal["majority", "supermajority", "unanimous", "consent", "quadratic", "weighted"]
Weights = Annotated[
    dict[Role, Annotated[int, msgspec.Meta(ge=0, le=1_000_000)]], msgspec.Meta(max_length=16)
]
ClassName = Literal["isolated", "known", "partner", "federated"]


class _Action(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag_field="kind"
):
    """Base of the variants: the JSON object carries its variant as ``kind``."""


class DomainRules(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How one domain decides; a proposal keeps the rules it was submitted under."""

    method: Method = "majority"
    threshold_ppm: PpmFraction = 500_000
    """Share of the yes+no weight that ``yes`` must exceed: 500,000 for ``majority``, above it
    for ``supermajority``; ``consent``, ``quadratic`` and ``weighted`` use it as stated;
    ``unanimous`` ignores it (no ``no`` at all)."""
    quorum_ppm: PpmFraction = 500_000
    """Share of eligible voters whose ballots (abstentions and blocks included) must count."""
    min_period_ms: Ms = 86_400_000
    """Shortest voting period from the moment a proposal opens."""
    max_period_ms: Ms = 30 * 86_400_000
    """Longest voting period; also how far ahead ``opens_at`` may lie."""
    max_blocks: Annotated[int, msgspec.Meta(ge=0, le=1_000_000)] = 0
    """``consent``: how many blocks a proposal survives."""
    weights: Weights = msgspec.field(default_factory=dict)
    """``weighted``: a voter weighs the largest weight among their roles, 1 with none listed."""
    credits: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 100
    """``quadratic``: voice credits a voter may spend on one proposal (weight √credits)."""
    proposer_roles: Roles = msgspec.field(default_factory=list)
    """Roles that may propose; empty: every active member."""
    voter_roles: Roles = msgspec.field(default_factory=list)
    """Roles that may vote; empty: every active member."""
    min_class_propose: ClassName | None = None
    """Least trust class (``governance`` standing) a proposer needs; ``None``: none."""
    min_class_vote: ClassName | None = None
    veto_roles: Roles = msgspec.field(default_factory=list)
    """Roles whose holders may veto an open proposal; empty: nobody."""
    sealed: bool = False
    """Commit–reveal ballots: nobody knows the running tally before the reveals."""
    reveal_window_ms: Ms = 86_400_000
    """``sealed``: how long after ``closes_at`` commitments may be revealed."""
    appeal_window_ms: Ms = 7 * 86_400_000
    """How long after the close an affected member may appeal."""


class AddMember(_Action, frozen=True, kw_only=True, tag="add-member"):
    """Admit ``member`` with ``roles`` (a ``coop.MemberAdmitted`` by the coop's DID)."""

    member: Did
    roles: Roles = msgspec.field(default_factory=list)


class RemoveMember(_Action, frozen=True, kw_only=True, tag="remove-member"):
    """Suspend ``member`` (a ``coop.MemberSuspended``): a member's debts stay theirs."""

    member: Did
    reason: Text


class ReinstateMember(_Action, frozen=True, kw_only=True, tag="reinstate-member"):
    """Lift ``member``'s suspension (a ``coop.MemberReinstated``): what undoes ``remove-member``."""

    member: Did


class ChangePolicy(_Action, frozen=True, kw_only=True, tag="change-policy"):
    """The whole new policy, as a ``coop.PolicyChanged`` states it."""

    policy: Policy
    add_currencies: Annotated[list[CurrencySpec], msgspec.Meta(max_length=16)] = msgspec.field(
        default_factory=list
    )


class AllocateBudget(_Action, frozen=True, kw_only=True, tag="allocate-budget"):
    """Pay ``amount`` from the coop's treasury account to ``to`` (a ``ledger.EntryRecorded``)."""

    to: Did
    amount: Annotated[int, msgspec.Meta(gt=0, le=MAX_SAFE_INT)]
    currency: Currency
    purpose: Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]


class ReclaimBudget(_Action, frozen=True, kw_only=True, tag="reclaim-budget"):
    """Pay ``amount`` from ``member`` back to the treasury (a ``ledger.EntryRecorded`` by the
    coop's DID, which may debit any account): what undoes ``allocate-budget``."""

    member: Did
    amount: Annotated[int, msgspec.Meta(gt=0, le=MAX_SAFE_INT)]
    currency: Currency
    purpose: Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]


class AmendCharter(_Action, frozen=True, kw_only=True, tag="amend-charter"):
    """A new version of one charter section (a ``governance.CharterAmended``)."""

    section: Section
    text: Annotated[str, msgspec.Meta(max_length=16_384)]
    rationale: Text


class Freeze(_Action, frozen=True, kw_only=True, tag="freeze"):
    """Freeze ``member``'s account (a ``ledger.AccountFrozen``), until ``until`` if given."""

    member: Did
    reason: Text
    until: Ms | None = None


class Unfreeze(_Action, frozen=True, kw_only=True, tag="unfreeze"):
    """Lift a freeze (a ``ledger.AccountUnfrozen``)."""

    member: Did


class RevokeTrust(_Action, frozen=True, kw_only=True, tag="revoke-trust"):
    """Withdraw one attestation from standing, whoever made it."""

    attestation: EventId
    reason: Text


class ChangeDomain(_Action, frozen=True, kw_only=True, tag="change-domain"):
    """Define ``domain`` or replace its rules (a ``governance.DomainChanged``)."""

    domain: DomainName
    rules: DomainRules


class SetPretrusted(_Action, frozen=True, kw_only=True, tag="set-pretrusted"):
    """The trust policy's pre-trusted set; ``None``: back to the founders."""

    pretrusted: Annotated[list[Did], msgspec.Meta(max_length=1000)] | None


class EscalatedDispute(_Action, frozen=True, kw_only=True, tag="escalated-dispute"):
    """The ruling on a dispute its mediator escalated."""

    dispute: EventId
    ruling: Literal["dismissed", "reversed", "partial-refund", "written-off"]
    refund: Annotated[int, msgspec.Meta(gt=0, le=MAX_SAFE_INT)] | None = None
    """Required for ``partial-refund``: units back to the payer."""


class DeployContract(_Action, frozen=True, kw_only=True, tag="deploy-contract"):
    """Deploy ``version`` of contract ``name`` (a ``contract.Deployed``): its code, checked
    when proposed and again when deployed, may use only the ``capabilities`` granted here."""

    name: ContractName
    version: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)]
    code: dict[str, Any]
    capabilities: Annotated[list[Capability], msgspec.Meta(max_length=4)]
    fuel_limit: Annotated[int, msgspec.Meta(ge=1, le=FUEL_LIMIT_MAX)]


class TextOnly(_Action, frozen=True, kw_only=True, tag="text"):
    """A decision in words only: nothing is executed but its record."""


Action = (
    AddMember
    | RemoveMember
    | ReinstateMember
    | ChangePolicy
    | AllocateBudget
    | ReclaimBudget
    | AmendCharter
    | Freeze
    | Unfreeze
    | RevokeTrust
    | ChangeDomain
    | SetPretrusted
    | EscalatedDispute
    | DeployContract
    | TextOnly
)
"""Every action a proposal may carry, told apart by ``kind``."""
