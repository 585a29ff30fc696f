"""Every event type the node knows, gathered from the capabilities that define them.

The one place capabilities meet: the envelope decodes a known body into its
Struct once (:func:`icn.domain.events.envelope.inspect`), the chain verdicts
run a type's spec checks and :func:`icn.domain.coop.evolve.evolve` its rule,
each by looking the type up here. So no capability imports another to be
judged, and adding one is one line below.
"""

from __future__ import annotations

from typing import Any

import msgspec

from icn.domain.capability import EventType
from icn.domain.compute import records as compute_records
from icn.domain.compute import rules as compute
from icn.domain.contract import records as contract_records
from icn.domain.contract import rules as contract
from icn.domain.coop import rules as coop
from icn.domain.coop import state as coop_state
from icn.domain.coop.records import Record
from icn.domain.governance import records as governance_records
from icn.domain.governance import rules as governance
from icn.domain.ledger import holds as ledger_holds
from icn.domain.ledger import rules as ledger
from icn.domain.log import rules as log
from icn.domain.trust import records as trust_records
from icn.domain.trust import rules as trust

CAPABILITIES: tuple[tuple[EventType, ...], ...] = (
    coop.EVENT_TYPES,
    ledger.EVENT_TYPES,
    log.EVENT_TYPES,
    trust.EVENT_TYPES,
    governance.EVENT_TYPES,
    compute.EVENT_TYPES,
    contract.EVENT_TYPES,
)

RECORD_TYPES: dict[str, type[Record]] = {
    **coop_state.RECORD_TYPES,
    **{t.kind: t for t in trust_records.RECORD_TYPES},
    **{t.kind: t for t in governance_records.RECORD_TYPES},
    **{t.kind: t for t in ledger_holds.RECORD_TYPES},
    **{t.kind: t for t in compute_records.RECORD_TYPES},
    **{t.kind: t for t in contract_records.RECORD_TYPES},
}
"""Every kind of record the rules write, by its storage kind."""

TYPES: dict[str, EventType] = {t.name: t for types in CAPABILITIES for t in types}
"""Every known event type by name."""


def known(name: str) -> EventType | None:
    """The registered event type ``name``, or ``None`` (any JSON object is then its body)."""
    return TYPES.get(name)


def typed_body(kind: EventType, body: dict[str, Any]) -> Any:
    """``body`` as its Struct; raises ``msgspec.ValidationError`` when it does not fit."""
    return msgspec.convert(body, kind.body)
