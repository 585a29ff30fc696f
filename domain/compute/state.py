"""The compute rules' questions, asked of the coop rules' view by kind and key."""

from __future__ import annotations

from icn.domain.compute.records import ExecutorRecord, ModuleRecord
from icn.domain.coop.state import CoopView


def module(view: CoopView, coop: str, hash_: str) -> ModuleRecord | None:
    """The stored module ``hash_``, if the coop stored it."""
    r = view.record(coop, ModuleRecord.kind, hash_)
    return r if isinstance(r, ModuleRecord) else None


def executor(view: CoopView, coop: str, node: str) -> ExecutorRecord | None:
    """The registered executor ``node``, if it was registered."""
    r = view.record(coop, ExecutorRecord.kind, node)
    return r if isinstance(r, ExecutorRecord) else None


def executors(view: CoopView, coop: str) -> list[ExecutorRecord]:
    """Every registered executor of the coop, in node order."""
    return [r for r in view.scan(coop, ExecutorRecord.kind, "") if isinstance(r, ExecutorRecord)]
