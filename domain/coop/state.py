"""What the coop rules read (a view of current state) and what they answer.

The rules are pure functions ``(event, view) -> Refusal | Effects``; the
application hands them a view that reads inside the write transaction and
stores the effects in the same transaction, and ``icn replay`` hands them an
empty view and the whole log to rebuild the same state from scratch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from icn.domain.coop.records import (
    ADMIN,
    AccountRecord,
    CoopRecord,
    DisputeRecord,
    MemberRecord,
    MemberStatus,
    Record,
)
from icn.domain.refusals import Code, Refusal

if TYPE_CHECKING:
    from icn.domain.events.envelope import Event

Effects = list[Record]
"""The records an accepted event writes, in order (a later one of the same key wins)."""


class CoopView(Protocol):
    """Current state of the coops, as the rules need it."""

    def coop(self, coop: str) -> CoopRecord | None:
        """The founded coop, or ``None``."""
        ...

    def member(self, coop: str, did: str) -> MemberRecord | None:
        """One DID's membership record, or ``None`` if it never applied or joined."""
        ...

    def account(self, coop: str, did: str, currency: str) -> AccountRecord | None:
        """An account, or ``None`` if it never moved."""
        ...

    def dispute(self, coop: str, dispute_id: str) -> DisputeRecord | None:
        """A dispute by the id of its filing event."""
        ...

    def claim(self, coop: str, entry: str, transaction: int) -> str | None:
        """The dispute already filed about one transaction, if any."""
        ...

    def event(self, coop: str, event_id: str) -> Event | None:
        """An accepted event of the coop by id."""
        ...

    def trust_ppm(self, coop: str, did: str) -> int:
        """The member's normalised standing for credit, in ppm (0 before any epoch)."""
        ...

    def record(self, coop: str, kind: str, key: str) -> Record | None:
        """Any record by kind and key (a capability's own records)."""
        ...

    def scan(self, coop: str, kind: str, prefix: str) -> list[Record]:
        """Every record of ``kind`` whose key starts with ``prefix``, in key order."""
        ...

    def log_size(self, coop: str) -> int:
        """How many events of the coop's log precede the event being judged."""
        ...


class DisputeClaim(Record, frozen=True, kw_only=True):
    """One transaction can be disputed once: this record points at that dispute."""

    kind = "dispute-claim"
    entry: str
    transaction: int
    dispute: str

    def key(self) -> str:
        return f"{self.entry}/{self.transaction}"


def founded_coop(view: CoopView, event: Event) -> CoopRecord:
    """The event's coop, which :func:`~icn.domain.coop.evolve.evolve` has checked exists
    before it runs any rule but ``coop.Founded``'s."""
    coop = view.coop(event.coop)
    assert coop is not None
    return coop


def active_problem(view: CoopView, coop: str, did: str, who: str = "") -> Refusal | None:
    """Why ``did`` may not act as an active member of ``coop`` now, if it may not:
    ``not-a-member`` (never admitted, applied only, or left) or ``member-suspended``.
    ``who`` names the part it plays in the refusal's words ("payer", "truster")."""
    member = view.member(coop, did)
    named = f"{who} {did}" if who else did
    if member is None or member.status in (MemberStatus.APPLIED, MemberStatus.EXITED):
        return Refusal(Code.NOT_A_MEMBER, f"{named} is not a member of {coop}")
    if member.status == MemberStatus.SUSPENDED:
        return Refusal(Code.MEMBER_SUSPENDED, f"{named} is suspended")
    return None


def account_of(view: CoopView, coop: str, did: str, currency: str) -> AccountRecord:
    """The account, or a fresh zero one."""
    return view.account(coop, did, currency) or AccountRecord(did=did, currency=currency)


def is_authority(view: CoopView, coop: CoopRecord, did: str) -> bool:
    """The coop's DID, or an active member with the ``admin`` role."""
    if did == coop.did:
        return True
    member = view.member(coop.coop, did)
    return member is not None and member.is_active and ADMIN in member.roles


RECORD_TYPES: dict[str, type[Record]] = {
    t.kind: t for t in (CoopRecord, MemberRecord, AccountRecord, DisputeRecord, DisputeClaim)
}
"""Every kind of record the rules write, by its storage kind."""
