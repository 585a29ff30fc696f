"""What the compute rules keep: each stored module and each registered executor."""

from __future__ import annotations

from typing import ClassVar

from icn.domain.compute import task_records
from icn.domain.coop.records import Record


class ModuleRecord(Record, frozen=True, kw_only=True):
    """A module the coop stored, by hash: what tasks may name."""

    kind: ClassVar[str] = "compute-module"
    hash: str
    size: int
    imports: list[str]
    stored_by: str
    event: str
    """The ``compute.ModuleStored`` event that stored it."""

    def key(self) -> str:
        return self.hash


class ExecutorRecord(Record, frozen=True, kw_only=True):
    """A node registered to run the coop's tasks, as its latest registration states."""

    kind: ClassVar[str] = "compute-executor"
    node: str
    cpu_millis: int
    memory_mib: int
    region: str
    event: str
    """The ``compute.ExecutorRegistered`` event that states it."""

    def key(self) -> str:
        return self.node


RECORD_TYPES = (ModuleRecord, ExecutorRecord, *task_records.RECORD_TYPES)
"""The compute capability's records, for :data:`icn.domain.registry.RECORD_TYPES`."""
