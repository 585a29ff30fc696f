"""What the contract rules keep: each contract's latest version and every invocation."""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec

from icn.domain.contract.runtime import ProposeEffect, TransferEffect
from icn.domain.coop.records import Record


class ContractRecord(Record, frozen=True, kw_only=True):
    """A deployed contract as it stands: its latest version, and where its schedules are."""

    kind: ClassVar[str] = "contract"
    name: str
    version: int
    code: dict[str, Any]
    capabilities: tuple[str, ...]
    fuel_limit: int
    deployed_ms: int
    deployed_by: str
    """The ``contract.Deployed`` event's id: the key the compiled program is cached under."""
    proposal: str
    schedules_done: tuple[int, ...] = ()
    """Per schedule of the code, the start of the last period it ran for (0: none yet)."""
    invocations: int = 0

    def key(self) -> str:
        return self.name


class InvocationState:
    JUDGED = "judged"
    """Accepted at its position: its effects wait for the coop's DID to sign them."""
    EXECUTED = "executed"
    FAILED = "failed"
    """The effects were refused when the coop's DID signed them (the ledger moved since)."""
    REFUSED = "refused"
    """A schedule's run the contract refused: recorded so the schedule moves on."""


class InvocationRecord(Record, frozen=True, kw_only=True):
    """One accepted invocation: what the interpreter computed at its position, and its fate."""

    kind: ClassVar[str] = "contract-invocation"
    id: str
    contract: str
    version: int
    rule: str
    caller: str
    args: dict[str, Any]
    invoked_ms: int
    fuel: int
    transfers: list[TransferEffect] = msgspec.field(default_factory=list)
    proposals: list[ProposeEffect] = msgspec.field(default_factory=list)
    opened: tuple[str, ...] = ()
    """The ids of the ``governance.ProposalSubmitted`` the coop's DID signed for
    ``proposals`` so far, in order (:mod:`icn.domain.contract.proposing`)."""
    state: str = InvocationState.JUDGED
    code: str | None = None
    """The refusal code of a ``failed`` or ``refused`` run."""
    effects: tuple[str, ...] = ()
    execution: str | None = None
    """The ``contract.Executed`` event's id."""

    def key(self) -> str:
        return self.id


class PendingRecord(Record, frozen=True, kw_only=True):
    """The invocations judged and not yet executed, oldest first: what the duty signs next,
    without scanning every invocation ever made."""

    kind: ClassVar[str] = "contract-pending"
    ids: tuple[str, ...] = ()
    reserved: dict[str, int] = msgspec.field(default_factory=dict)
    """Per ``"<did> <currency>"``, what those invocations' transfers will move (never 0): a
    later invocation is judged with it counted, in one read."""

    def key(self) -> str:
        return ""


RECORD_TYPES = (ContractRecord, InvocationRecord, PendingRecord)
"""The contract capability's records, for :data:`icn.domain.registry.RECORD_TYPES`."""
