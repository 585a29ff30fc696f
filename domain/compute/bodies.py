"""The body of ``compute.ModuleStored``: a member stored a task module's bytes under its hash.

The bytes themselves are kept by hash beside the log and served over the API;
the event is what a coop agrees on about them: which module, how big, what
it needs from the host. Tasks name a module by this hash.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from icn.domain.compute.abi import MAX_MODULE_BYTES

MODULE_STORED = "compute.ModuleStored"

ModuleHash = Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{64}$")]
"""BLAKE3 of the module's binary form, lower-case hex."""
AbiImport = Literal["icn.input_len", "icn.input_read", "icn.output_write"]


class ModuleStored(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``compute.ModuleStored`` (a member): ``hash`` of the binary, its ``size`` in bytes and the
    ABI functions it ``imports`` (sorted, each once)."""

    hash: ModuleHash
    size: Annotated[int, msgspec.Meta(ge=8, le=MAX_MODULE_BYTES)]
    imports: Annotated[list[AbiImport], msgspec.Meta(max_length=3)]
