"""The contract capability's events: a deploy by proposal, an invocation, its execution."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from icn.domain.contract.language import (
    I64,
    ArgText,
    Capability,
    ContractName,
    Name,
)
from icn.domain.contract.runtime import FUEL_LIMIT_MAX, MAX_PROPOSALS
from icn.domain.coop.records import Strict
from icn.domain.trust.bodies import EventId

DEPLOYED = "contract.Deployed"
INVOKED = "contract.Invoked"
EXECUTED = "contract.Executed"

Version = Annotated[int, msgspec.Meta(ge=1, le=1_000_000)]
FuelLimit = Annotated[int, msgspec.Meta(ge=1, le=FUEL_LIMIT_MAX)]
Capabilities = Annotated[list[Capability], msgspec.Meta(max_length=4)]
Args = Annotated[dict[Name, I64 | bool | ArgText], msgspec.Meta(max_length=16)]
Ms = Annotated[int, msgspec.Meta(ge=0, le=2**53 - 1)]


class Deployed(Strict, frozen=True, kw_only=True):
    """``contract.Deployed``: by the coop's DID, carrying out an accepted ``deploy-contract``."""

    name: ContractName
    version: Version
    code: dict[str, Any]
    """The contract's code: the JSON AST of docs/spec/contracts-v1.md, checked when deployed."""
    capabilities: Capabilities
    fuel_limit: FuelLimit
    proposal: EventId


class Invoked(Strict, frozen=True, kw_only=True):
    """``contract.Invoked``: an active member runs ``rule`` of the latest version of ``contract``.

    By the coop's DID, with ``schedule`` (its index in the code) and ``period`` (the period's
    start, in trusted time): a schedule's run, which the coop duty signs when it is due.
    """

    contract: ContractName
    rule: Name
    args: Args = msgspec.field(default_factory=dict)
    schedule: Annotated[int, msgspec.Meta(ge=0, le=7)] | None = None
    period: Ms | None = None


class Executed(Strict, frozen=True, kw_only=True):
    """``contract.Executed``: by the coop's DID, the effects that carried an invocation out
    (their ids, signed just before it in the same batch), or the code that refused them."""

    invocation: EventId
    effects: Annotated[list[EventId], msgspec.Meta(max_length=16)] = msgspec.field(
        default_factory=list
    )
    fuel: Annotated[int, msgspec.Meta(ge=0, le=FUEL_LIMIT_MAX)]
    failed: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    proposals: Annotated[list[EventId], msgspec.Meta(max_length=MAX_PROPOSALS)] = msgspec.field(
        default_factory=list
    )
    """The ``governance.ProposalSubmitted`` the coop's DID opened for the rule's ``propose``
    statements, signed before it in the same batch (absent: none; a field added after
    the first release, so an execution that opens no proposal has the bytes it had)."""
