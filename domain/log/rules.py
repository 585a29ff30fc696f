"""The rule of ``log.CheckpointIssued``: the note inside states the body, signed by the author.

A spec check (a bad one is ``malformed``), not a coop rule: any verified
author may make a statement about its own tree, and the coop rules never
see it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from icn.domain.capability import CoopDids, EventType
from icn.domain.log.bodies import CHECKPOINT_ISSUED, CheckpointIssued
from icn.domain.log.checkpoint import CheckpointError, open_checkpoint, origin_for
from icn.domain.refusals import Code, Refusal

if TYPE_CHECKING:
    from icn.domain.events.envelope import Event


def checkpoint_problem(event: Event, body: CheckpointIssued, _: CoopDids) -> Refusal | None:
    """A ``log.CheckpointIssued`` must carry a note by its author that states its body."""
    try:
        cp = open_checkpoint(body.note, event.author)
    except CheckpointError as exc:
        return Refusal(Code.MALFORMED, f"bad checkpoint note: {exc}")
    if cp.origin != origin_for(event.coop, event.author):
        return Refusal(Code.MALFORMED, "checkpoint note names another log")
    if cp.size != body.size or cp.root.hex() != body.root:
        return Refusal(Code.MALFORMED, "checkpoint note does not state the body's size and root")
    return None


EVENT_TYPES = (
    EventType(CHECKPOINT_ISSUED, CheckpointIssued, spec=True, chain_check=checkpoint_problem),
)
