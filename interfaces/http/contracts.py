"""Reading contracts: each deployed contract at its latest version, and one in full.

Every route needs a token of the path's coop with the ``ledger:read`` scope.
The documents come from the contract projections, current with every answered
write (``ReadSide.fresh``), and for an invocation not executed yet from the rules' record. Bad
input gets problem documents: ``invalid-contract`` (400) for a name no
contract can have, ``unknown-contract`` (404). Contracts are deployed by an
accepted ``deploy-contract`` proposal and invoked by signed
``contract.Invoked`` events, both through ``POST /v1/coops/{coop}/events``.
"""

from __future__ import annotations

from litestar import Controller, get
from litestar.params import FromPath

from icn.infrastructure.store.contract_reads import SqlContractReads
from icn.infrastructure.store.event_store import SqlEventStore
from icn.infrastructure.store.read_models import ReadSide
from icn.interfaces.http.coop_paths import COOP_ROUTES, CoopPath
from icn.interfaces.http.dependencies import ReadsDep, StoreDep
from icn.interfaces.http.gate import needs
from icn.interfaces.http.problems import problem_responses
from icn.projections import contract_views as views

READ_ERRORS = (401, 403, 404)


def _fresh(reads: ReadSide, store: SqlEventStore, coop: str) -> SqlContractReads:
    """The contract queries, current with every answered write (``ReadSide.fresh``)."""
    reads.fresh(coop)
    return SqlContractReads(store.engine)


class ContractsController(Controller):
    """Deployed contracts, their versions and invocations (scope ``ledger:read``)."""

    path = COOP_ROUTES
    tags = ("contracts",)
    opt = needs("ledger:read")

    @get("/contracts", sync_to_thread=True, responses=problem_responses(*READ_ERRORS))
    def list_contracts(
        self, reads: ReadsDep, store: StoreDep, coop: CoopPath
    ) -> views.ContractList:
        """Every contract deployed in the coop, by name, at its latest version: capabilities,
        fuel limit, rules, schedules, the proposal that deployed it, invocations so far."""
        return views.contracts(_fresh(reads, store, coop), coop)

    @get("/contracts/{name:str}", sync_to_thread=True, responses=problem_responses(*READ_ERRORS))
    def get_contract(
        self, reads: ReadsDep, store: StoreDep, coop: CoopPath, name: FromPath[str]
    ) -> views.ContractDetail:
        """One contract: its current version with its code, every version, and its latest
        invocations (newest first), each ``judged``, ``executed``, ``failed`` or ``refused``
        with its code, fuel and the entries that carried it out."""
        return views.contract(_fresh(reads, store, coop), coop, name)
