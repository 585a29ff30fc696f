"""The type names every implementation must know (spec sections 5-6).

Their bodies live with the capability that owns them
(:mod:`icn.domain.ledger.bodies`, :mod:`icn.domain.log.bodies`) and are tied
to the envelope by :mod:`icn.domain.registry`. Types no registered capability
knows pass as any JSON object (section 6, last paragraph).
"""

from __future__ import annotations

ENTRY_RECORDED = "ledger.EntryRecorded"
COOP_FOUNDED = "coop.Founded"
CHECKPOINT_ISSUED = "log.CheckpointIssued"
