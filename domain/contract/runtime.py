"""What a running contract may touch, what it costs, and how it stops.

The interpreter sees the coop only through :class:`Host`, a read-only view
at the invocation's stream position; every write it makes is buffered in
:class:`Run` and returned as :class:`Outcome` only when the rule finishes.
A refusal is an exception raised before anything leaves the run, so a
refused invocation has no effect at all.
"""

from __future__ import annotations

from typing import Protocol

import msgspec

from icn.domain.contract.language import I64_MAX, I64_MIN
from icn.domain.refusals import Code

Value = int | bool | str
"""Every value a contract computes: a signed 64-bit int, a bool, or a DID/currency string."""

MAX_SAFE_INT = 2**53 - 1
"""A ledger amount's upper bound (spec section 6)."""
MAX_TRANSFERS = 1024
"""Transfers one invocation may buffer: 16 entries of 64 transactions (spec section 6)."""
MAX_PROPOSALS = 4

FUEL_LIMIT_MAX = 10_000_000


class Fuel:
    """The fuel table (docs/spec/contracts-v1.md, "Fuel")."""

    NODE = 1
    """Each expression node and each statement."""
    READ = 10
    """``balance``, ``is-member``, ``has-role``."""
    READ_COMPUTED = 20
    """``credit-room`` and ``standing``: the host computes a limit or a standing."""
    WRITE = 30
    """``transfer`` and ``propose``, on top of their nodes (a transfer reads the payer's room)."""
    MEMBER = 5
    """Each member an ``each-member`` loop visits, on top of its body."""


class ContractError(Exception):
    """The invocation (or the deploy) is refused with ``code``: nothing it did takes effect."""

    def __init__(self, code: Code, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def overflow(value: int) -> ContractError:
    return ContractError(Code.CONTRACT_OVERFLOW, f"{value} is outside the signed 64-bit range")


def check_i64(value: int) -> int:
    """``value`` when it fits the signed 64-bit range, else a ``contract-overflow``."""
    if value > I64_MAX or value < I64_MIN:
        raise overflow(value)
    return value


class Host(Protocol):
    """The coop as a contract may read it, at the invocation's stream position."""

    def balance(self, did: str, currency: str) -> int:
        """The account's balance in smallest units (0 for an account that never moved)."""
        ...

    def credit_room(self, did: str, currency: str) -> int:
        """Balance plus the credit limit now; the treasury: :data:`I64_MAX`."""
        ...

    def standing_ppm(self, did: str) -> int:
        """Normalised standing for credit, in ppm (0 before any epoch)."""
        ...

    def roles(self, did: str) -> tuple[str, ...] | None:
        """An active member's roles, or ``None`` for anyone who is not an active member."""
        ...

    def members(self) -> list[str]:
        """Every active member's DID, in DID order."""
        ...

    def transfer_problem(self, frm: str, to: str, currency: str) -> ContractError | None:
        """Why the ledger refuses this pair of accounts or currency, before any amount."""
        ...


class TransferEffect(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A ledger transaction the coop's DID will sign."""

    from_: str = msgspec.field(name="from")
    to: str
    amount: int
    currency: str
    memo: str = ""


class ProposeEffect(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A proposal in words the coop's DID will open."""

    domain: str
    title: str
    text: str
    period_days: int


class Outcome(msgspec.Struct, frozen=True, kw_only=True):
    """A finished run: its buffered effects, in order, and the fuel it burnt."""

    transfers: list[TransferEffect]
    proposals: list[ProposeEffect]
    fuel: int


class Run:
    """One invocation's mutable state: slots, fuel left, buffered writes."""

    __slots__ = (
        "caller",
        "deltas",
        "fuel",
        "granted",
        "host",
        "now",
        "proposals",
        "slots",
        "transfers",
        "treasury",
    )

    def __init__(
        self,
        *,
        host: Host,
        granted: frozenset[str],
        caller: str,
        treasury: str,
        now: int,
        fuel: int,
        slots: int,
    ) -> None:
        self.slots: list[Value] = [0] * slots
        self.fuel = fuel
        self.host = host
        self.granted = granted
        self.caller = caller
        self.treasury = treasury
        self.now = now
        self.deltas: dict[tuple[str, str], int] = {}
        """Each account's change by this run's own transfers, so reads see its writes."""
        self.transfers: list[TransferEffect] = []
        self.proposals: list[ProposeEffect] = []

    def spend(self, amount: int) -> None:
        """Burn ``amount`` fuel, or stop with ``out-of-fuel``."""
        self.fuel -= amount
        if self.fuel < 0:
            raise ContractError(Code.OUT_OF_FUEL, "the invocation ran out of fuel")

    def need(self, capability: str) -> None:
        """Stop with ``capability-denied`` unless the contract was granted ``capability``."""
        if capability not in self.granted:
            raise ContractError(
                Code.CAPABILITY_DENIED, f"the contract was not granted {capability}"
            )
