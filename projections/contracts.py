"""The contract read models: every deployed version, every invocation, every execution,
every proposal an invocation opened.

All four tables only grow, one row written by the event that made it, so
``icn replay`` rebuilds and compares them row by row. Whether an invocation
is still waiting, executed or failed is a question asked of them (an
execution row or none); a schedule's run the contract refused is the rules'
record (``contract-invocation``), read by key. A proposal an invocation's
``propose`` opened is the coop's ``governance.ProposalSubmitted`` naming the
invocation: its row links the two, and where the proposal stands is the
governance read models' (joined when read). Who may deploy, invoke or
execute was judged by the rules before an event reached the log.
"""

from __future__ import annotations

from icn.domain.contract import bodies as b
from icn.domain.events.canonical import canonical_bytes
from icn.domain.governance import bodies as gb
from icn.projections.ports import AppendTable, Changes, Fact, Projection, SumTable

VERSIONS = AppendTable(
    "contract_versions",
    key=("coop", "name", "version"),
    values=("leaf", "event_id", "proposal", "capabilities", "fuel_limit", "code", "ts"),
)
INVOCATIONS = AppendTable(
    "contract_invocations",
    key=("coop", "invocation"),
    values=("leaf", "contract", "rule", "caller", "args", "schedule", "ts"),
)
EXECUTIONS = AppendTable(
    "contract_executions",
    key=("coop", "invocation"),
    values=("leaf", "event_id", "effects", "fuel", "failed", "ts"),
)
COUNTS = SumTable("contract_counts", key=("coop", "name"), values=("invocations",))
OPENED = AppendTable(
    "contract_proposals",
    key=("coop", "proposal"),
    values=("leaf", "invocation", "ts"),
)


class Versions:
    """One row per ``contract.Deployed``: the code as canonical JSON, capabilities
    space-separated."""

    name = "contract.versions"
    tables = (VERSIONS,)

    def apply(self, leaf: int, event: Fact, changes: Changes) -> None:
        if event.type != b.DEPLOYED:
            return
        body = event.body
        code = canonical_bytes(body["code"]).decode()
        changes.insert(
            VERSIONS,
            (event.coop, body["name"], body["version"], leaf, event.id, body["proposal"],
             " ".join(body["capabilities"]), body["fuel_limit"], code, event.ts),
        )  # fmt: skip


class Invocations:
    """One row per ``contract.Invoked`` (arguments as canonical JSON), counted per contract."""

    name = "contract.invocations"
    tables = (INVOCATIONS, COUNTS)

    def apply(self, leaf: int, event: Fact, changes: Changes) -> None:
        if event.type != b.INVOKED:
            return
        body = event.body
        args = canonical_bytes(body.get("args") or {}).decode()
        changes.insert(
            INVOCATIONS,
            (event.coop, event.id, leaf, body["contract"], body["rule"], event.author, args,
             body.get("schedule"), event.ts),
        )  # fmt: skip
        changes.add(COUNTS, (event.coop, body["contract"]), (1,))


class Executions:
    """One row per ``contract.Executed``: its entries (ids, space-separated) or the code that
    refused them."""

    name = "contract.executions"
    tables = (EXECUTIONS,)

    def apply(self, leaf: int, event: Fact, changes: Changes) -> None:
        if event.type != b.EXECUTED:
            return
        body = event.body
        effects = " ".join(body.get("effects") or [])
        changes.insert(
            EXECUTIONS,
            (event.coop, body["invocation"], leaf, event.id, effects, body["fuel"],
             body.get("failed"), event.ts),
        )  # fmt: skip


class Opened:
    """One row per ``governance.ProposalSubmitted`` that names an invocation (only the coop's
    DID may sign one, for a rule's ``propose``): which invocation opened which proposal."""

    name = "contract.proposals"
    tables = (OPENED,)

    def apply(self, leaf: int, event: Fact, changes: Changes) -> None:
        if event.type != gb.PROPOSAL_SUBMITTED:
            return
        invocation = event.body.get("invocation")
        if invocation is not None:
            changes.insert(OPENED, (event.coop, event.id, leaf, invocation, event.ts))


CONTRACT_PROJECTIONS: tuple[Projection, ...] = (
    Versions(),
    Invocations(),
    Executions(),
    Opened(),
)
"""Every projection of the contract capability, in the order a runner applies them."""
