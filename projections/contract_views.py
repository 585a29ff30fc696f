"""What members read about contracts: each deployed contract, its versions, its invocations.

One place composes the contract read models' rows with the rules' records
(an invocation's state while it has no execution row) into the documents the
HTTP API answers, so the API and any other reader never disagree.
"""

from __future__ import annotations

import json
import re
from typing import Any, Protocol

import msgspec

from icn.application.coop_view import decode_record
from icn.application.errors import InvalidRequest, NotFound
from icn.domain.contract.records import InvocationRecord, InvocationState
from icn.domain.coop.records import CoopRecord

RECENT = 20
"""Invocations a contract's document lists, newest first."""
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")


class InvalidContractNameError(InvalidRequest):
    """A contract name that no contract can have."""

    code = "invalid-contract"


class UnknownContractError(NotFound):
    """No contract of that name is deployed in the coop."""

    code = "unknown-contract"


class VersionRow(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    version: int
    leaf: int
    event_id: str
    proposal: str
    capabilities: list[str]
    fuel_limit: int
    code: str
    ts: int


class InvocationRow(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    leaf: int
    contract: str
    rule: str
    caller: str
    args: str
    schedule: int | None
    ts: int
    executed_event: str | None
    effects: list[str]
    fuel: int | None
    failed: str | None


class OpenedRow(msgspec.Struct, frozen=True, kw_only=True):
    """A proposal an invocation opened, where it stands in the governance read models."""

    invocation: str
    proposal: str
    title: str
    closes_at: int
    state: str
    executed_event: str | None
    failed: str | None


class ContractReads(Protocol):
    """The contract read models and the rules' records, as the views need them."""

    def versions(self, coop: str, name: str | None) -> list[VersionRow]:
        """Every deployed version (of one contract), by name then version."""
        ...

    def counts(self, coop: str) -> dict[str, int]:
        """Invocations per contract name."""
        ...

    def invocations(self, coop: str, name: str, limit: int) -> list[InvocationRow]:
        """The contract's latest invocations, newest first, with their executions."""
        ...

    def opened(self, coop: str, invocations: list[str]) -> list[OpenedRow]:
        """The proposals these invocations opened, in log order."""
        ...

    def record(self, coop: str, kind: str, key: str) -> bytes | None:
        """One record of the rules, raw."""
        ...


class VersionView(msgspec.Struct, frozen=True, kw_only=True):
    """One deployed version: who ordered it, what it may do, its code."""

    version: int
    event_id: str
    proposal: str
    capabilities: list[str]
    fuel_limit: int
    deployed_ts: int
    rules: list[str]
    schedules: list[dict[str, Any]]
    code: dict[str, Any]


class ContractSummary(msgspec.Struct, frozen=True, kw_only=True):
    """A contract as it stands: its latest version, how often it was invoked."""

    name: str
    version: int
    capabilities: list[str]
    fuel_limit: int
    deployed_ts: int
    proposal: str
    rules: list[str]
    schedules: list[dict[str, Any]]
    invocations: int


class ContractList(msgspec.Struct, frozen=True, kw_only=True):
    coop: str
    contracts: list[ContractSummary]


class OpenedProposal(msgspec.Struct, frozen=True, kw_only=True):
    """A proposal the invocation's ``propose`` opened (signed by the coop's DID, naming the
    invocation): its id and title, when its vote closes, its ``state`` as
    ``GET …/proposals/{id}`` gives it (``open``, the close's outcome, ``withdrawn``,
    ``vetoed``) and its ``execution`` once carried out (``executed`` or ``failed``)."""

    id: str
    title: str
    closes_at: int
    state: str
    execution: str | None


class InvocationView(msgspec.Struct, frozen=True, kw_only=True):
    """One invocation and its fate: ``judged`` (waiting for the coop's DID), ``executed``,
    ``failed`` (the ledger refused its effects then: ``code``) or ``refused`` (a schedule's
    run the contract refused: ``code``)."""

    id: str
    rule: str
    caller: str
    args: dict[str, Any]
    schedule: int | None
    ts: int
    state: str
    code: str | None
    fuel: int | None
    effects: list[str]
    proposals: list[OpenedProposal]
    """The proposals it opened, oldest first (none unless the rule ran ``propose``)."""


class ContractDetail(msgspec.Struct, frozen=True, kw_only=True):
    """One contract: its current version, every version, its latest invocations."""

    coop: str
    name: str
    current: VersionView
    versions: list[VersionView]
    invocations: int
    recent: list[InvocationView]


def founded(reads: ContractReads, coop: str) -> CoopRecord:
    """The coop's record, or not found."""
    raw = reads.record(coop, CoopRecord.kind, "")
    record = decode_record(CoopRecord.kind, raw) if raw is not None else None
    if not isinstance(record, CoopRecord):
        raise NotFound(f"coop {coop} has not been founded on this node")
    return record


def _version(row: VersionRow) -> VersionView:
    code: dict[str, Any] = json.loads(row.code)
    return VersionView(
        version=row.version,
        event_id=row.event_id,
        proposal=row.proposal,
        capabilities=row.capabilities,
        fuel_limit=row.fuel_limit,
        deployed_ts=row.ts,
        rules=sorted(code.get("rules", {})),
        schedules=list(code.get("schedules", [])),
        code=code,
    )


def contracts(reads: ContractReads, coop: str) -> ContractList:
    """Every contract deployed in the coop, by name, each at its latest version."""
    founded(reads, coop)
    latest: dict[str, VersionView] = {}
    for row in reads.versions(coop, None):
        latest[row.name] = _version(row)
    counts = reads.counts(coop)
    return ContractList(
        coop=coop,
        contracts=[
            ContractSummary(
                name=name,
                version=v.version,
                capabilities=v.capabilities,
                fuel_limit=v.fuel_limit,
                deployed_ts=v.deployed_ts,
                proposal=v.proposal,
                rules=v.rules,
                schedules=v.schedules,
                invocations=counts.get(name, 0),
            )
            for name, v in sorted(latest.items())
        ],
    )


def _opened(row: OpenedRow) -> OpenedProposal:
    execution = None
    if row.executed_event is not None:
        execution = "failed" if row.failed is not None else "executed"
    return OpenedProposal(
        id=row.proposal, title=row.title, closes_at=row.closes_at, state=row.state,
        execution=execution,
    )  # fmt: skip


def _invocation(
    reads: ContractReads, coop: str, row: InvocationRow, opened: list[OpenedProposal]
) -> InvocationView:
    state, code = InvocationState.JUDGED, None
    if row.executed_event is not None:
        failed = row.failed is not None
        state = InvocationState.FAILED if failed else InvocationState.EXECUTED
        code = row.failed
    else:
        raw = reads.record(coop, InvocationRecord.kind, row.id)
        record = decode_record(InvocationRecord.kind, raw) if raw is not None else None
        if isinstance(record, InvocationRecord):
            state, code = record.state, record.code
    return InvocationView(
        id=row.id,
        rule=row.rule,
        caller=row.caller,
        args=json.loads(row.args),
        schedule=row.schedule,
        ts=row.ts,
        state=state,
        code=code,
        fuel=row.fuel,
        effects=row.effects,
        proposals=opened,
    )


def contract(reads: ContractReads, coop: str, name: str) -> ContractDetail:
    """One contract by name: ``invalid-contract`` (400) for a name no contract can have,
    ``unknown-contract`` (404) when none of that name is deployed."""
    if not _NAME.match(name):
        raise InvalidContractNameError(f"{name!r} is not a contract name")
    founded(reads, coop)
    rows = reads.versions(coop, name)
    if not rows:
        raise UnknownContractError(f"no contract {name} in {coop}")
    versions = [_version(r) for r in rows]
    recent = reads.invocations(coop, name, RECENT)
    opened: dict[str, list[OpenedProposal]] = {r.id: [] for r in recent}
    for o in reads.opened(coop, list(opened)):
        opened[o.invocation].append(_opened(o))
    return ContractDetail(
        coop=coop,
        name=name,
        current=versions[-1],
        versions=versions,
        invocations=reads.counts(coop).get(name, 0),
        recent=[_invocation(reads, coop, r, opened[r.id]) for r in recent],
    )
