"""The signed, hash-linked event: envelope, canonical bytes, bodies and verdicts."""

from icn.domain.events.chain import ChainHead, ChainView, Judgement, judge
from icn.domain.events.envelope import Event, Inspection, UnsignedEvent, inspect, sign_event, verify
from icn.domain.events.verdicts import Verdict

__all__ = [
    "ChainHead",
    "ChainView",
    "Event",
    "Inspection",
    "Judgement",
    "UnsignedEvent",
    "Verdict",
    "inspect",
    "judge",
    "sign_event",
    "verify",
]
