"""What a settled task costs: integer arithmetic only, the same on every replica.

fee = ⌈fuel / fuel_per_credit⌉ smallest units, at most ``max_fee``; a run that trapped
(out of fuel included) is charged its whole ``fuel_limit``, so a task cannot be made
cheap by failing on purpose.
"""

from __future__ import annotations

from icn.domain.compute.abi import Outcome
from icn.domain.coop.records import ComputePolicy


def charged_fuel(outcome: Outcome, fuel: int, fuel_limit: int) -> int:
    """The fuel a run is charged for: what it consumed when it ended ``ok``, else the limit."""
    if fuel < 0 or fuel_limit < 0:
        raise ValueError("fuel and fuel_limit are non-negative")
    return min(fuel, fuel_limit) if outcome is Outcome.OK else fuel_limit


def fee(charged: int, fuel_per_credit: int, max_fee: int) -> int:
    """⌈charged / fuel_per_credit⌉ capped at ``max_fee`` (smallest units of the task's currency)."""
    if fuel_per_credit <= 0:
        raise ValueError("fuel_per_credit is positive")
    if charged < 0 or max_fee < 0:
        raise ValueError("charged fuel and max_fee are non-negative")
    return min(-(-charged // fuel_per_credit), max_fee)


FUEL_PER_CREDIT = ComputePolicy().fuel_per_credit
"""The default of the fuel a task buys per smallest unit of its currency: the coop's
``compute.fuel_per_credit`` names its own (a change of it, like a change of wasmtime version,
is a policy decision, since it changes what replicas charge); a task keeps the figure in force
when it was submitted."""
