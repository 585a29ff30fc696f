"""Bodies of the governance event types (every field documented, sizes bounded).

Members propose, vote, delegate, withdraw, veto and appeal with their own
keys; the coop's DID defines domains, closes proposals with a tally any node
recounts (a digest, never the ballot list: 10,000 ids would not fit one
event), executes accepted ones and records charter amendments.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from icn.domain.coop.bodies import Text
from icn.domain.coop.records import Strict
from icn.domain.events.canonical import MAX_SAFE_INT
from icn.domain.governance.actions import Action, DomainName, DomainRules, Ms, Section
from icn.domain.trust.bodies import EventId

DOMAIN_DEFINED = "governance.DomainDefined"
DOMAIN_CHANGED = "governance.DomainChanged"
PROPOSAL_SUBMITTED = "governance.ProposalSubmitted"
VOTE_CAST = "governance.VoteCast"
VOTE_COMMITTED = "governance.VoteCommitted"
VOTE_REVEALED = "governance.VoteRevealed"
VOTE_DELEGATED = "governance.VoteDelegated"
PROPOSAL_WITHDRAWN = "governance.ProposalWithdrawn"
PROPOSAL_VETOED = "governance.ProposalVetoed"
PROPOSAL_CLOSED = "governance.ProposalClosed"
PROPOSAL_EXECUTED = "governance.ProposalExecuted"
APPEAL_FILED = "governance.AppealFiled"
CHARTER_AMENDED = "governance.CharterAmended"

Choice = Literal["yes", "no", "abstain", "block"]
Outcome = Literal["accepted", "rejected", "no-quorum"]
Digest = Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{64}$")]
Count = Annotated[int, msgspec.Meta(ge=0, le=MAX_SAFE_INT)]
Reason = Annotated[str, msgspec.Meta(max_length=1024)]
Credits = Annotated[int, msgspec.Meta(ge=0, le=1_000_000)]


class DomainDefined(Strict, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``governance.DomainDefined``: by the coop's DID, a domain that does not exist yet."""

    domain: DomainName
    """Its name (``root`` exists from the founding and cannot be defined again)."""
    rules: DomainRules
    proposal: EventId | None = None
    """The accepted ``change-domain`` proposal this carries out: required once the coop
    has had its first proposal (before, the coop's DID sets domains up by itself)."""


class DomainChanged(Strict, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``governance.DomainChanged``: by the coop's DID, the whole new rules of a domain."""

    domain: DomainName
    rules: DomainRules
    proposal: EventId | None = None
    """The accepted ``change-domain`` proposal this carries out: required once the coop
    has had its first proposal (before, the coop's DID sets domains up by itself)."""


class ProposalSubmitted(Strict, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``governance.ProposalSubmitted``: by an eligible proposer; its event id is the proposal's."""

    domain: DomainName
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    text: Annotated[str, msgspec.Meta(max_length=16_384)]
    action: Action
    opens_at: Ms | None = None
    """When voting opens (ms); ``None`` or a time already past: when it is accepted."""
    closes_at: Ms
    """When voting closes (ms): between the domain's minimum and maximum period after it opens."""
    appeal: EventId | None = None
    """The ``governance.AppealFiled`` this proposal resolves (root domain only)."""
    invocation: EventId | None = None
    """The ``contract.Invoked`` whose ``propose`` statement this carries out: required when
    the coop's DID is the author, refused otherwise (a field added after the first release:
    absent, the proposal is a member's as before)."""


class VoteCast(Strict, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``governance.VoteCast``: by an eligible voter while the proposal is open.

    A later vote by the same voter replaces the earlier one; not in a sealed domain.
    """

    proposal: EventId
    choice: Choice
    """``abstain`` counts toward quorum only; ``block`` is allowed under ``consent`` only."""
    reason: Reason | None = None
    credits: Credits | None = None
    """``quadratic`` only: voice credits spent (weight √credits); ``None``: 1."""


class VoteCommitted(Strict, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``governance.VoteCommitted``: a sealed ballot, once per voter, while the proposal is open."""

    proposal: EventId
    commitment: Digest
    """BLAKE3 of the canonical JSON ``[choice, credits, salt]`` (see :func:`commitment_of`)."""


class VoteRevealed(Strict, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``governance.VoteRevealed``: opens the voter's commitment within the reveal window."""

    proposal: EventId
    choice: Choice
    credits: Credits | None = None
    salt: Annotated[str, msgspec.Meta(min_length=16, max_length=128)]
    """The secret the commitment hid the choice with (at least 16 characters)."""
    reason: Reason | None = None


class VoteDelegated(Strict, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``governance.VoteDelegated``: a member's vote in ``domain`` follows ``to``'s."""

    domain: DomainName
    to: Annotated[str, msgspec.Meta(min_length=9, max_length=128)] | None
    """An active member's DID, or ``None`` to revoke the delegation."""


class ProposalWithdrawn(Strict, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``governance.ProposalWithdrawn``: by the proposal's author, while it is open."""

    proposal: EventId
    reason: Reason | None = None


class ProposalVetoed(Strict, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``governance.ProposalVetoed``: by a holder of one of the domain's veto roles."""

    proposal: EventId
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]


class Counts(Strict, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Ballots per choice (by voter) and their effective weights."""

    yes: Count = 0
    no: Count = 0
    abstain: Count = 0
    block: Count = 0
    yes_weight: Count = 0
    no_weight: Count = 0
    abstain_weight: Count = 0
    block_weight: Count = 0


class ProposalClosed(Strict, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``governance.ProposalClosed``: the coop's DID's tally, a node duty at the close.

    Every node recounts the ballots at this position and refuses it unless
    every number and the digest match.
    """

    proposal: EventId
    outcome: Outcome
    counts: Counts
    eligible: Count
    """Active members eligible to vote in the proposal's domain at this position."""
    counted: Count
    """Eligible voters with a ballot of their own or of a delegate (what the digest covers)."""
    ballots_digest: Digest
    """BLAKE3 of the canonical JSON list of ``[voter, vote event id, weight]`` sorted by voter."""


class ProposalExecuted(Strict, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``governance.ProposalExecuted``: by the coop's DID, once per accepted proposal."""

    proposal: EventId
    effects: Annotated[list[EventId], msgspec.Meta(max_length=64)] = msgspec.field(
        default_factory=list
    )
    """Ids of the events that carried it out, already in the log."""
    failed: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None
    """The refusal code an effect met instead (then ``effects`` is empty)."""


class AppealFiled(Strict, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``governance.AppealFiled``: by an active member, within the appeal window."""

    proposal: EventId
    grounds: Annotated[str, msgspec.Meta(min_length=1, max_length=4096)]


class CharterAmended(Strict, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``governance.CharterAmended``: by the coop's DID, the effect of an accepted proposal."""

    proposal: EventId
    section: Section
    text: Annotated[str, msgspec.Meta(max_length=16_384)]
    """The section's new text; every earlier version stays readable."""
    rationale: Text
