"""Bodies of a task's events: submitted, committed and revealed by executors, settled.

``compute.TaskSubmitted`` (a member): run ``module`` on ``input`` (base64, at
most 32 KiB decoded) with at most ``fuel_limit`` fuel, on ``replicas``
executors, paying at most ``max_fee`` smallest units of ``currency`` in all;
``max_fee`` is held on the submitter's account until the task settles.

``compute.ResultCommitted`` (an assigned executor's node): the commitment to
its answer. ``compute.ResultRevealed`` (the same node, once every assigned
executor has committed): the answer and the ``salt`` that opens the commitment.

``compute.TaskSettled`` (the coop's DID): pays the agreeing executors from the
hold by the ``ledger.EntryRecorded`` events listed in ``effects`` (signed
before it in the same batch) and releases the hold.

``compute.TaskReplaced`` (the coop's DID, dated at the task's ``due_ms``): the
placed executors that have not committed (or, once all have, not revealed)
are dropped and others placed. ``compute.TaskExpired`` (the coop's DID, dated
at the task's ``expires_ms``): the task ends unrun and its hold is released.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from icn.domain.compute.bodies import ModuleHash, Region

TASK_SUBMITTED = "compute.TaskSubmitted"
RESULT_COMMITTED = "compute.ResultCommitted"
RESULT_REVEALED = "compute.ResultRevealed"
TASK_SETTLED = "compute.TaskSettled"
TASK_REPLACED = "compute.TaskReplaced"
TASK_EXPIRED = "compute.TaskExpired"

MAX_SAFE = 2**53 - 1
"""I-JSON's integers: every number in an event stays exactly representable."""
MAX_REPLICAS = 3
MAX_BASE64 = 43_692
"""The base64 length of 32 KiB (⌈32768 / 3⌉ × 4): the decoded size is checked by the rule."""

Hex64 = Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{64}$")]
Base64 = Annotated[str, msgspec.Meta(max_length=MAX_BASE64, pattern="^[A-Za-z0-9+/]*={0,2}$")]


class TaskSubmitted(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``compute.TaskSubmitted``: what to run, how far, on how many executors, for how much.
    ``region``, when given, is preferred in placement (locality)."""

    module: ModuleHash
    input: Base64
    fuel_limit: Annotated[int, msgspec.Meta(ge=1, le=MAX_SAFE)]
    max_fee: Annotated[int, msgspec.Meta(ge=0, le=MAX_SAFE)]
    currency: Annotated[str, msgspec.Meta(min_length=1, max_length=16)]
    replicas: Annotated[int, msgspec.Meta(ge=1, le=MAX_REPLICAS)] = 2
    region: Region | None = None


class ResultCommitted(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``compute.ResultCommitted``: see :func:`icn.domain.compute.results.commitment_of`."""

    task: Hex64
    commitment: Hex64


class ResultRevealed(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``compute.ResultRevealed``: the run's ``outcome``, ``output`` (base64, empty unless
    ``ok``), its BLAKE3 ``output_hash``, the ``fuel`` consumed and the commitment's ``salt``."""

    task: Hex64
    outcome: Literal["ok", "trap", "out-of-fuel"]
    output: Base64
    output_hash: Hex64
    fuel: Annotated[int, msgspec.Meta(ge=0, le=MAX_SAFE)]
    salt: Annotated[str, msgspec.Meta(min_length=32, max_length=128, pattern="^[0-9a-f]+$")]


class TaskSettled(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``compute.TaskSettled``: the entries that paid the executors (none when nobody is
    paid), signed before it in its batch."""

    task: Hex64
    effects: Annotated[list[Hex64], msgspec.Meta(max_length=1)] = msgspec.field(
        default_factory=list
    )


class TaskReplaced(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``compute.TaskReplaced``: ``attempt`` is the task's count of re-placements before
    this one, so a duty computed for an earlier round never applies to a later one."""

    task: Hex64
    attempt: Annotated[int, msgspec.Meta(ge=0, le=MAX_SAFE)]


class TaskExpired(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``compute.TaskExpired``: the task ran out of time; its hold is released."""

    task: Hex64
