"""The state a node's rules read and write, as plain frozen records.

A record is the whole truth about one thing (a coop, a member, an account,
a dispute) at one point in the log; rules never patch a record in place,
they return a new one. Each record names its own key, so the store can keep
them in one table and a replay can rebuild and compare them byte for byte.
"""

from __future__ import annotations

from typing import Annotated, ClassVar

import msgspec

from icn.domain.events.canonical import MAX_SAFE_INT

PPM = 1_000_000
"""Policy fractions are parts per million: integers, so every node computes the same limit."""

DAY_MS = 86_400_000

Currency = Annotated[str, msgspec.Meta(pattern="^[a-z0-9_-]{1,16}$")]
Units = Annotated[int, msgspec.Meta(ge=0, le=MAX_SAFE_INT)]
ENGINE_GRAMMAR = r"^wasmtime-(0|[1-9][0-9]{0,3})\.(0|[1-9][0-9]{0,3})\.(0|[1-9][0-9]{0,3})$"
"""``wasmtime-<major>.<minor>.<patch>``: the engine a task runs on (no pre-releases)."""
DEFAULT_ENGINE = "wasmtime-50.0.1"
"""The engine this release pins (the sandbox's own, checked by a test): fuel counts differ
between versions, so which one a coop's tasks run on is the coop's policy."""
Ppm = Annotated[int, msgspec.Meta(ge=0, le=100 * PPM)]
Role = Annotated[str, msgspec.Meta(pattern="^[a-z][a-z0-9_-]{0,31}$")]

ADMIN = "admin"
MEDIATOR = "mediator"
MEMBER = "member"


class Strict(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of bodies and records: unknown fields are refused, never ignored."""


def format_amount(units: int, decimals: int) -> str:
    """``250`` with 2 decimals → ``"2.50"``; negative balances keep their sign."""
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(units), 10**decimals)
    return f"{sign}{whole}.{frac:0{decimals}d}" if decimals else f"{sign}{whole}"


class CurrencySpec(Strict, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A unit of account: ``decimals`` fixes how smallest units are shown (2 → 1.50)."""

    code: Currency
    unit: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
    decimals: Annotated[int, msgspec.Meta(ge=0, le=8)]

    def show(self, units: int) -> str:
        """``-50250`` hours with 2 decimals → ``"-502.50 hours"``: how refusals speak."""
        return f"{format_amount(units, self.decimals)} {self.code}"


class CreditPolicy(Strict, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How far below zero a member may go in one currency.

    limit = baseline + baseline × trust × trust_multiplier + cleared_volume ×
    history_rate, capped by ``max_limit``; a new member starts at
    ``initial_limit`` and reaches that limit linearly over ``ramp_days``.
    """

    baseline: Units
    trust_multiplier_ppm: Ppm = 0
    history_rate_ppm: Ppm = 0
    max_limit: Units
    initial_limit: Units = 0
    ramp_days: Annotated[int, msgspec.Meta(ge=0, le=3650)] = 0


class DemurragePolicy(Strict, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A charge of ``rate_ppm`` per period on the part of a positive balance above ``threshold``."""

    rate_ppm: Annotated[int, msgspec.Meta(ge=1, le=PPM)]
    period_days: Annotated[int, msgspec.Meta(ge=1, le=3650)]
    threshold: Units = 0


Did = Annotated[str, msgspec.Meta(min_length=9, max_length=128)]


class TrustPolicy(Strict, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How the coop computes standing from attestations (docs/spec/trust-standing-v1.md).

    Every number is an integer so that every node and every auditor computes the
    same standing bit for bit; the defaults are the ones the spec's examples use.
    """

    alpha_ppm: Annotated[int, msgspec.Meta(ge=1, le=PPM - 1)] = 150_000
    """Share of standing that returns to the pre-trusted set each round (EigenTrust's α)."""
    half_life_days: Annotated[int, msgspec.Meta(ge=0, le=36500)] = 180
    """An attestation counts half after this long (0: it never decays)."""
    iterations: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 100
    max_hops: Annotated[int, msgspec.Meta(ge=1, le=6)] = 3
    """Longest path the path score (for people, never for permissions) follows."""
    pretrusted: Annotated[list[Did], msgspec.Meta(max_length=1000)] | None = None
    """Who standing teleports to; ``None``: the founding members."""
    epoch_every_attestations: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 50
    epoch_every_seconds: Annotated[int, msgspec.Meta(ge=60, le=31_536_000)] = 86_400
    known_ppm: Annotated[int, msgspec.Meta(ge=0, le=PPM)] = 100_000
    """Normalised standing (against a typical member's) from which a member is Known."""
    partner_ppm: Annotated[int, msgspec.Meta(ge=0, le=PPM)] = 400_000
    federated_ppm: Annotated[int, msgspec.Meta(ge=0, le=PPM)] = 700_000


class ComputePolicy(Strict, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What the coop's compute tasks cost and how long they may wait (docs/compute.md).

    A task takes these figures when it is submitted and keeps them, so a change
    applies to tasks submitted after it: a submitter is held to the price and the
    deadlines in force when it asked. Integers, seconds of trusted time.
    """

    fuel_per_credit: Annotated[int, msgspec.Meta(ge=1, le=MAX_SAFE_INT)] = 10_000
    """Fuel a task buys per smallest unit of its currency."""
    replace_after_seconds: Annotated[int, msgspec.Meta(ge=60, le=86_400)] = 600
    """How long the executors placed last have to answer before they are re-placed."""
    expire_after_seconds: Annotated[int, msgspec.Meta(ge=60, le=604_800)] = 3_600
    """How long a task may run in all, from its submission, before it expires."""
    dissent_exclusion_seconds: Annotated[int, msgspec.Meta(ge=0, le=31_536_000)] = 86_400
    """How long an executor whose answer lost a majority vote is left out of placement
    (0: not at all); the dispute opened about it is where people decide more."""
    engine: Annotated[str, msgspec.Meta(max_length=24, pattern=ENGINE_GRAMMAR)] = DEFAULT_ENGINE
    """The wasmtime version a task runs on: an executor with another one does not answer
    it, so replicas' fuel counts stay comparable (docs/compute.md, Versions)."""


class Policy(Strict, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A coop's economic policy; it changes only through signed events."""

    credit: dict[Currency, CreditPolicy]
    demurrage: dict[Currency, DemurragePolicy] = msgspec.field(default_factory=dict)
    trust: TrustPolicy = msgspec.field(default_factory=TrustPolicy)
    compute: ComputePolicy = msgspec.field(default_factory=ComputePolicy)


class Record(msgspec.Struct, frozen=True, kw_only=True):
    """A piece of state with a stable storage key within its coop."""

    kind: ClassVar[str]

    def key(self) -> str:
        """The record's key within its coop and kind."""
        raise NotImplementedError


class CoopRecord(Record, frozen=True, kw_only=True):
    """A founded coop: its DID (the treasury account), currencies and policy."""

    kind: ClassVar[str] = "coop"
    coop: str
    did: str
    name: str
    currencies: dict[str, CurrencySpec]
    policy: Policy
    founded_ms: int
    founders: tuple[str, ...] = ()
    """The founding members: the default pre-trusted set of standing."""
    demurrage_until: dict[str, int] = msgspec.field(default_factory=dict)
    """Per currency, the end of the last period demurrage was charged for."""

    def key(self) -> str:
        return ""


class MemberStatus:
    """Where a member stands; only ``active`` members transact."""

    APPLIED = "applied"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    EXITED = "exited"


class MemberRecord(Record, frozen=True, kw_only=True):
    """One DID's membership of one coop."""

    kind: ClassVar[str] = "member"
    did: str
    status: str
    roles: tuple[str, ...] = ()
    applied_ms: int | None = None
    joined_ms: int | None = None
    """When the member was admitted: the start of the new-member credit ramp."""
    frozen: bool = False
    frozen_until: int | None = None
    """A freeze with an expiry ends by itself at this time (ms); ``None`` = until unfrozen."""
    freeze_reason: str | None = None

    def key(self) -> str:
        return self.did

    @property
    def is_active(self) -> bool:
        """True when the member may transact."""
        return self.status == MemberStatus.ACTIVE

    def is_frozen_at(self, ts: int) -> bool:
        """True when a freeze is in force at ``ts``."""
        return self.frozen and (self.frozen_until is None or ts < self.frozen_until)


class AccountRecord(Record, frozen=True, kw_only=True):
    """One account in one currency: its balance and what it has received in all."""

    kind: ClassVar[str] = "account"
    did: str
    currency: str
    balance: int = 0
    cleared_volume: int = 0
    """Total ever credited: the history part of the credit limit."""

    def key(self) -> str:
        return f"{self.did}/{self.currency}"


class DisputeStatus:
    """A dispute's life: filed, maybe answered and mediated, then closed one way."""

    FILED = "filed"
    ANSWERED = "answered"
    RESOLVED = "resolved"
    SETTLED = "settled"


class DisputeRecord(Record, frozen=True, kw_only=True):
    """A dispute about one transaction of one entry."""

    kind: ClassVar[str] = "dispute"
    id: str
    entry: str
    transaction: int
    filed_by: str
    counterparty: str
    payer: str
    payee: str
    amount: int
    currency: str
    reason: str
    status: str = DisputeStatus.FILED
    mediator: str | None = None
    outcome: str | None = None
    refund: int | None = None
    """Units the resolution orders back to the payer (reversal, partial refund, write-off)."""
    settlement: str | None = None
    """Id of the ``ledger.EntryRecorded`` that carried out the ordered movement."""
    filed_ms: int = 0
    closed_ms: int | None = None
    task: str | None = None
    """Set on a dispute the coop's DID opened against an executor whose answer to this
    compute task lost a majority vote (``entry`` names the task, ``transaction`` the
    executor's place in it; no money moved, so it is dismissed or escalated, never
    refunded)."""

    def key(self) -> str:
        return self.id
