"""The signed, hash-linked event: envelope, canonical bytes, bodies and verdicts.

The names below are loaded on first use (PEP 562): the envelope decodes
bodies through :mod:`icn.domain.registry`, whose capabilities import this
package's leaf modules (canonical bytes, type names), so importing the
package must not import the envelope first.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from icn.domain.events.chain import ChainHead, ChainView, Judgement, judge
    from icn.domain.events.envelope import (
        Event,
        Inspection,
        UnsignedEvent,
        decode_stored,
        inspect,
        sign_event,
        verify,
    )
    from icn.domain.events.verdicts import Verdict

_WHERE = {
    "ChainHead": "chain",
    "ChainView": "chain",
    "Judgement": "chain",
    "judge": "chain",
    "Event": "envelope",
    "Inspection": "envelope",
    "UnsignedEvent": "envelope",
    "decode_stored": "envelope",
    "inspect": "envelope",
    "sign_event": "envelope",
    "verify": "envelope",
    "Verdict": "verdicts",
}

__all__ = [
    "ChainHead",
    "ChainView",
    "Event",
    "Inspection",
    "Judgement",
    "UnsignedEvent",
    "Verdict",
    "decode_stored",
    "inspect",
    "judge",
    "sign_event",
    "verify",
]


def __getattr__(name: str) -> Any:
    """Import the module that defines ``name`` when it is first asked for."""
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{module}"), name)
