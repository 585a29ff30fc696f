"""What the task rules keep: each task, the tasks waiting for settlement, executors' load."""

from __future__ import annotations

from typing import ClassVar

import msgspec

from icn.domain.coop.records import ComputePolicy, Record

_DEFAULT = ComputePolicy()


class TaskState:
    """A task's life: ``running`` until its answers agree (``agreed``) or cannot
    (``unresolved``); then the coop's DID settles it once (``settled``). A task still
    running at its final deadline expires (``expired``)."""

    RUNNING = "running"
    AGREED = "agreed"
    UNRESOLVED = "unresolved"
    SETTLED = "settled"
    EXPIRED = "expired"
    """Ran out of time before its answers were in: nobody paid, the hold released."""


class Revealed(msgspec.Struct, frozen=True, kw_only=True):
    """One executor's revealed answer (its output is kept once per hash in the task)."""

    outcome: str
    output_hash: str
    fuel: int


class TaskRecord(Record, frozen=True, kw_only=True):
    """A submitted task, its placement and answers, and how it settled."""

    kind: ClassVar[str] = "compute-task"
    id: str
    submitter: str
    module: str
    input: str
    """Base64, as submitted: what every executor runs the module on."""
    fuel_limit: int
    max_fee: int
    currency: str
    replicas: int
    submitted_ms: int
    region: str | None = None
    """The region placement prefers (locality), as submitted."""
    held: int
    """What the task holds on the submitter's account; 0 once settled (released once)."""
    assigned: tuple[str, ...]
    """Executors' node DIDs in the order they were placed: the replicas, then the
    tie-breaker when there was one to place (:func:`icn.domain.compute.results.voters`),
    with re-placed ones in place of those that stalled before any reveal."""
    commitments: dict[str, str] = msgspec.field(default_factory=dict)
    answers: dict[str, Revealed] = msgspec.field(default_factory=dict)
    outputs: dict[str, str] = msgspec.field(default_factory=dict)
    """Base64 outputs by output hash: identical answers keep one copy."""
    state: str = TaskState.RUNNING
    outcome: str | None = None
    output_hash: str | None = None
    fuel: int | None = None
    agreeing: tuple[str, ...] = ()
    dissenting: tuple[str, ...] = ()
    """Executors whose answers lost the vote: not paid, recorded here as disputed."""
    judged_ms: int | None = None
    """Trusted time of the reveal that judged the answers: what the settlement is dated at,
    so every node keeping the coop's key signs the same settlement."""
    fee: int = 0
    """What each agreeing executor was paid (smallest units)."""
    settlement: str | None = None
    """The ``compute.TaskSettled`` event's id."""
    due_ms: int | None = None
    """When the executors placed last must have revealed, else the coop re-places those
    that have not (:mod:`icn.domain.compute.deadlines`; None: ``submitted_ms`` + the
    step, for a task recorded before deadlines existed)."""
    replacements: int = 0
    """How many times the coop re-placed stalled executors."""
    dropped: tuple[str, ...] = ()
    """Executors dropped for stalling: never placed on the task again."""
    expiry: str | None = None
    """The ``compute.TaskExpired`` event's id."""
    fuel_per_credit: int = _DEFAULT.fuel_per_credit
    """The coop's price when the task was submitted (its policy then): what it is charged."""
    step_ms: int = _DEFAULT.replace_after_seconds * 1000
    """How long each placement has to answer, as the policy said at submission."""
    final_ms: int = _DEFAULT.expire_after_seconds * 1000
    """How long the task may run in all, as the policy said at submission."""
    engine: str = _DEFAULT.engine
    """The wasmtime version it runs on, as the policy said at submission: only executors
    running that version answer it."""

    def key(self) -> str:
        return self.id


class SettlementsRecord(Record, frozen=True, kw_only=True):
    """Tasks whose answers are in and that wait for the coop's DID, oldest first: what the
    settlement duty reads without scanning every task."""

    kind: ClassVar[str] = "compute-settlements"
    ids: tuple[str, ...] = ()

    def key(self) -> str:
        return ""


class RunningRecord(Record, frozen=True, kw_only=True):
    """Tasks still running, oldest first, each with its next deadline (the earlier of its
    placement's and its final one): what the deadline duty reads each round, one record
    however many tasks run, instead of every task's record."""

    kind: ClassVar[str] = "compute-running"
    tasks: dict[str, int] = msgspec.field(default_factory=dict)

    def key(self) -> str:
        return ""


class LoadRecord(Record, frozen=True, kw_only=True):
    """An executor's share of the coop's work: placement's capacity and economics terms."""

    kind: ClassVar[str] = "compute-load"
    node: str
    open: int = 0
    """Tasks placed on it and not settled yet."""
    paid: int = 0
    """Tasks it was paid for."""
    dissents: int = 0
    """Tasks where its answer lost the vote."""
    excluded_until_ms: int = 0
    """Left out of placement until then (trusted time): its answer lost a majority vote
    and the coop's ``compute.dissent_exclusion_seconds`` says for how long."""
    exclusions: tuple[tuple[str, int], ...] = ()
    """What keeps it out, dissent by dissent: the dispute each one opened and until when.
    A dispute dismissed (the executor was right, or is forgiven) no longer counts from
    the dismissal's stream position, so ``excluded_until_ms`` is only the latest bound.
    A record from before this field excludes until ``excluded_until_ms`` as it did."""

    def key(self) -> str:
        return self.node


RECORD_TYPES = (TaskRecord, SettlementsRecord, RunningRecord, LoadRecord)
