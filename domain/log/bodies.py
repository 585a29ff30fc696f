"""The body of ``log.CheckpointIssued``: a node's checkpoint as an event of the log (spec 5)."""

from __future__ import annotations

from typing import Annotated

import msgspec

from icn.domain.events.bodies import CHECKPOINT_ISSUED
from icn.domain.events.canonical import MAX_SAFE_INT

__all__ = ["CHECKPOINT_ISSUED", "CheckpointIssued"]


class CheckpointIssued(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A node's signed statement of its tree at ``size``; ``note`` is the C2SP note itself."""

    size: Annotated[int, msgspec.Meta(ge=0, le=MAX_SAFE_INT)]
    root: Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{64}$")]
    note: Annotated[str, msgspec.Meta(max_length=4096)]
