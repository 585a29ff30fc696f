"""Every projection the node keeps, in the order a runner applies them: one list that the
runner, the SQL read side and ``icn replay`` all read, so none of them can miss one."""

from __future__ import annotations

from icn.projections.contracts import CONTRACT_PROJECTIONS
from icn.projections.governance import GOVERNANCE_PROJECTIONS
from icn.projections.ledger import LEDGER_PROJECTIONS
from icn.projections.ledger_holds import HOLDS_PROJECTIONS
from icn.projections.member_names import NAME_PROJECTIONS
from icn.projections.ports import Projection
from icn.projections.trust import TRUST_PROJECTIONS

PROJECTIONS: tuple[Projection, ...] = (
    LEDGER_PROJECTIONS
    + HOLDS_PROJECTIONS
    + TRUST_PROJECTIONS
    + GOVERNANCE_PROJECTIONS
    + CONTRACT_PROJECTIONS
    + NAME_PROJECTIONS
)
