"""An in-memory coop for the contract interpreter's tests: the Host port, fed by a dict."""

from __future__ import annotations

from dataclasses import dataclass, field

from icn.domain.contract.runtime import ContractError
from icn.domain.refusals import Code

TREASURY = "did:key:zTreasury"


@dataclass
class DictHost:
    """Balances, limits, roles and standing as plain dicts; every member active."""

    balances: dict[tuple[str, str], int] = field(default_factory=dict)
    limits: dict[str, int] = field(default_factory=dict)
    roles_of: dict[str, tuple[str, ...]] = field(default_factory=dict)
    standing: dict[str, int] = field(default_factory=dict)
    currencies: tuple[str, ...] = ("hours", "eur")
    reads: int = 0

    def balance(self, did: str, currency: str) -> int:
        self.reads += 1
        return self.balances.get((did, currency), 0)

    def credit_room(self, did: str, currency: str) -> int:
        self.reads += 1
        return self.balances.get((did, currency), 0) + self.limits.get(did, 0)

    def standing_ppm(self, did: str) -> int:
        self.reads += 1
        return self.standing.get(did, 0)

    def roles(self, did: str) -> tuple[str, ...] | None:
        self.reads += 1
        return self.roles_of.get(did)

    def members(self) -> list[str]:
        self.reads += 1
        return sorted(self.roles_of)

    def transfer_problem(self, frm: str, to: str, currency: str) -> ContractError | None:
        if currency not in self.currencies:
            return ContractError(Code.UNKNOWN_CURRENCY, f"no currency {currency}")
        for did in (frm, to):
            if did != TREASURY and did not in self.roles_of:
                return ContractError(Code.NOT_A_MEMBER, f"{did} is not a member")
        return None
