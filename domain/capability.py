"""How a capability tells the node about its event types: one :class:`EventType` each.

A capability is a folder ``domain/<capability>/`` with ``bodies.py`` (the
msgspec Structs of its events), ``rules.py`` (one function per event type,
ending in the tuple ``EVENT_TYPES``) and ``state.py`` or ``records.py`` (what
its rules read and write). Adding one is adding its ``EVENT_TYPES`` to
:mod:`icn.domain.registry`; nothing in the envelope, the write path or the
interfaces changes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import msgspec

from icn.domain.refusals import Refusal

if TYPE_CHECKING:
    from icn.domain.coop.state import CoopView, Effects
    from icn.domain.events.envelope import Event


class CoopDids(Protocol):
    """The one fact of the log a spec check of a body may need: who each coop is."""

    def coop_did(self, coop: str) -> str | None:
        """The DID that founded ``coop`` (its treasury account), or ``None``."""
        ...


Rule = Callable[[Any, "Event", "CoopView", int], "Refusal | Effects"]
"""``(body, event, view, now) -> Refusal | Effects``: a node rule (``now``: trusted time)."""
BodyCheck = Callable[[Any], Refusal | None]
"""A stateless check the Struct cannot express (an entry paying itself)."""
ChainCheck = Callable[["Event", Any, CoopDids], Refusal | None]
"""A spec check that needs the log (who may debit; what a checkpoint note states)."""
DecodeFailure = Callable[[dict[str, Any]], Refusal | None]
"""Given a body its Struct refused: a finer refusal than ``malformed``, if one applies."""


@dataclass(frozen=True)
class EventType:
    """One event type: its name, its body's Struct and what judges it.

    ``spec``: the body is one every implementation must know (spec section 6),
    so a bad body is ``malformed``; any other bad body is the node's
    ``invalid-body`` refusal, decided by the rules. ``rule`` ``None``: no coop
    rule of its own (the coop's DID or an active member may state it).
    """

    name: str
    body: type[msgspec.Struct]
    rule: Rule | None = None
    spec: bool = False
    check: BodyCheck | None = None
    chain_check: ChainCheck | None = None
    on_decode_failure: DecodeFailure | None = None
