"""The interpreter's :class:`~icn.domain.contract.runtime.Host` over the rules' view of a coop.

Reads what the coop's rules read at the invocation's stream position, the
transfers of invocations judged earlier and not executed yet counted as done,
with the ledger's own checks: a transfer's accounts must be active members (or the
treasury), the payer's account not frozen, the currency the coop's; credit
room is the balance plus the limit the ledger would apply at that moment.
"""

from __future__ import annotations

from icn.domain.contract.language import I64_MAX
from icn.domain.contract.runtime import ContractError
from icn.domain.coop.records import CoopRecord, MemberRecord, MemberStatus
from icn.domain.coop.state import CoopView
from icn.domain.ledger.holds import held
from icn.domain.ledger.rules import limit_for
from icn.domain.refusals import Code


class ViewHost:
    """A read-only coop at one stream position (``now``: its trusted time)."""

    __slots__ = ("_coop", "_members", "_now", "_reserved", "_view")

    def __init__(
        self,
        view: CoopView,
        coop: CoopRecord,
        now: int,
        reserved: dict[tuple[str, str], int] | None = None,
    ) -> None:
        self._view = view
        self._coop = coop
        self._now = now
        self._reserved = reserved or {}
        """Per (account, currency), what invocations judged earlier will still move."""
        self._members: dict[str, MemberRecord | None] = {}
        """Membership records read so far: one run reads a member once."""

    def _member(self, did: str) -> MemberRecord | None:
        if did not in self._members:
            self._members[did] = self._view.member(self._coop.coop, did)
        return self._members[did]

    def _currency(self, currency: str) -> None:
        if currency not in self._coop.currencies:
            raise ContractError(Code.UNKNOWN_CURRENCY, f"the coop has no currency {currency!r}")

    def _active(self, did: str) -> MemberRecord | None:
        member = self._member(did)
        return member if member is not None and member.is_active else None

    def balance(self, did: str, currency: str) -> int:
        self._currency(currency)
        account = self._view.account(self._coop.coop, did, currency)
        balance = account.balance if account is not None else 0
        return balance + self._reserved.get((did, currency), 0)

    def credit_room(self, did: str, currency: str) -> int:
        balance = self.balance(did, currency)
        if did == self._coop.did:
            return I64_MAX
        member = self._active(did)
        if member is None or member.is_frozen_at(self._now):
            return balance
        on_hold = held(self._view, self._coop.coop, did, currency)
        return balance - on_hold + limit_for(self._view, self._coop, member, currency, self._now)

    def standing_ppm(self, did: str) -> int:
        return self._view.trust_ppm(self._coop.coop, did)

    def roles(self, did: str) -> tuple[str, ...] | None:
        member = self._active(did)
        return tuple(member.roles) if member is not None else None

    def members(self) -> list[str]:
        found = self._view.scan(self._coop.coop, MemberRecord.kind, "")
        return sorted(m.did for m in found if isinstance(m, MemberRecord) and m.is_active)

    def transfer_problem(self, frm: str, to: str, currency: str) -> ContractError | None:
        self._currency(currency)
        for did, role in ((frm, "payer"), (to, "payee")):
            if did == self._coop.did:
                continue
            member = self._member(did)
            if member is None or member.status in (MemberStatus.APPLIED, MemberStatus.EXITED):
                return ContractError(Code.NOT_A_MEMBER, f"{role} {did} is not a member")
            if member.status == MemberStatus.SUSPENDED:
                return ContractError(Code.MEMBER_SUSPENDED, f"{role} {did} is suspended")
        payer = self._active(frm)
        if payer is not None and payer.is_frozen_at(self._now):
            return ContractError(Code.ACCOUNT_FROZEN, f"{frm}'s account is frozen")
        return None
