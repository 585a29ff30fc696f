"""Bodies of the compute event types: stored modules and registered executors.

``compute.ModuleStored``: a member stored a task module's bytes under its hash.
The bytes themselves are kept by hash beside the log and served over the API;
the event is what a coop agrees on about them: which module, how big, what it
needs from the host. Tasks name a module by this hash.

``compute.ExecutorRegistered``: an admin names a node that may run the coop's
tasks, with the capacity and region placement reads.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from icn.domain.compute.abi import MAX_MODULE_BYTES

MODULE_STORED = "compute.ModuleStored"
EXECUTOR_REGISTERED = "compute.ExecutorRegistered"

ModuleHash = Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{64}$")]
"""BLAKE3 of the module's binary form, lower-case hex."""
AbiImport = Literal["icn.input_len", "icn.input_read", "icn.output_write"]


class ModuleStored(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``compute.ModuleStored`` (a member): ``hash`` of the binary, its ``size`` in bytes and the
    ABI functions it ``imports`` (sorted, each once)."""

    hash: ModuleHash
    size: Annotated[int, msgspec.Meta(ge=8, le=MAX_MODULE_BYTES)]
    imports: Annotated[list[AbiImport], msgspec.Meta(max_length=3)]


Region = Annotated[str, msgspec.Meta(pattern="^[a-z0-9][a-z0-9-]{0,31}$")]


class ExecutorRegistered(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``compute.ExecutorRegistered`` (an admin or the coop's DID): ``node`` (its DID) offers
    ``cpu_millis`` of CPU (1000 = one core) and ``memory_mib`` in ``region``. A later
    registration of the same node replaces the earlier one."""

    node: Annotated[str, msgspec.Meta(max_length=128)]
    cpu_millis: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)]
    memory_mib: Annotated[int, msgspec.Meta(ge=1, le=16 * 1024 * 1024)]
    region: Region
