"""Rules for stored modules and registered executors.

A member stores a module once per hash (what a task names must mean one thing);
the node that received the bytes has already run intake on them
(:func:`icn.infrastructure.compute.modules.intake`), so the rule checks what the
log can: who says it, that the body is in its one canonical form, and that the
hash is new. Only an admin or the coop's DID registers an executor.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from icn.domain.capability import EventType
from icn.domain.compute import bodies as b
from icn.domain.compute import state, task_rules, task_timeouts
from icn.domain.compute.records import ExecutorRecord, ModuleRecord
from icn.domain.coop.state import CoopView, Effects, active_problem, founded_coop, is_authority
from icn.domain.identity.did import is_valid_did
from icn.domain.refusals import Code, Refusal

if TYPE_CHECKING:
    from icn.domain.events.envelope import Event


def module_stored(
    body: b.ModuleStored, event: Event, view: CoopView, now: int
) -> Refusal | Effects:
    """An active member records a new module; its ``imports`` sorted, each once."""
    problem = active_problem(view, event.coop, event.author)
    if problem:
        return problem
    if list(body.imports) != sorted(set(body.imports)):
        return Refusal(Code.INVALID_BODY, "imports are listed sorted, each once")
    if state.module(view, event.coop, body.hash) is not None:
        return Refusal(Code.MODULE_EXISTS, f"module {body.hash} is stored already")
    return [
        ModuleRecord(
            hash=body.hash,
            size=body.size,
            imports=list(body.imports),
            stored_by=event.author,
            event=event.id,
        )
    ]


def executor_registered(
    body: b.ExecutorRegistered, event: Event, view: CoopView, now: int
) -> Refusal | Effects:
    """An admin (or the coop's DID) registers a node, or states its capacity anew."""
    coop = founded_coop(view, event)
    if not is_authority(view, coop, event.author):
        return Refusal(Code.NOT_AUTHORIZED, "only an admin or the coop's DID registers executors")
    if not is_valid_did(body.node):
        return Refusal(Code.INVALID_EXECUTOR, f"{body.node!r} is not a node's DID")
    return [
        ExecutorRecord(
            node=body.node,
            cpu_millis=body.cpu_millis,
            memory_mib=body.memory_mib,
            region=body.region,
            event=event.id,
        )
    ]


EVENT_TYPES = (
    EventType(b.MODULE_STORED, b.ModuleStored, module_stored),
    EventType(b.EXECUTOR_REGISTERED, b.ExecutorRegistered, executor_registered),
    *task_rules.EVENT_TYPES,
    *task_timeouts.EVENT_TYPES,
)
"""The compute event types: stored modules, registered executors, and tasks."""
