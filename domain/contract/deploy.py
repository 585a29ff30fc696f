"""Whether a contract version may be deployed: checked when proposed and again when deployed.

Both checks are the same function, so a proposal that reaches a vote deploys
unless the state moved between (another version deployed first).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from icn.domain.contract.compile import deploy_check
from icn.domain.contract.records import ContractRecord
from icn.domain.contract.runtime import ContractError
from icn.domain.coop.state import CoopView
from icn.domain.refusals import Code, Refusal


def contract(view: CoopView, coop: str, name: str) -> ContractRecord | None:
    """The contract's latest deployed version, or ``None``."""
    found = view.record(coop, ContractRecord.kind, name)
    return found if isinstance(found, ContractRecord) else None


def deploy_problem(
    view: CoopView,
    coop: str,
    name: str,
    version: int,
    code: dict[str, Any],
    capabilities: Sequence[str],
) -> Refusal | None:
    """Why this version cannot be deployed: not the next version, or code that does not check
    (``invalid-contract``) or uses a capability not granted (``capability-denied``)."""
    if len(set(capabilities)) != len(capabilities):
        return Refusal(Code.INVALID_CONTRACT, "a capability is granted twice")
    current = contract(view, coop, name)
    want = current.version + 1 if current is not None else 1
    if version != want:
        if current is not None and version <= current.version:
            return Refusal(Code.CONTRACT_EXISTS, f"{name} version {version} is deployed already")
        return Refusal(Code.INVALID_CONTRACT, f"the next version of {name} is {want}")
    try:
        deploy_check(code, capabilities)
    except ContractError as exc:
        return Refusal(exc.code, exc.reason)
    return None
