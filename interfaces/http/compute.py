"""Compute over HTTP: module bytes by hash, and tasks as executors and submitters see them.

``PUT …/modules/{module}`` takes a module's bytes (binary, or WAT text) once the
coop's log holds its ``compute.ModuleStored``: the node runs them through
module intake (the same checks the uploader's client ran before signing)
and keeps them by hash (:mod:`icn.infrastructure.compute.store`). ``GET
…/modules/{module}`` serves them, for executors on other nodes. Tasks are
submitted, committed, revealed and settled as signed events through
``POST …/events``; ``GET …/tasks`` and ``…/tasks/{id}`` read them. Every
route needs a token of the path's coop; errors are problem documents with
stable codes: ``invalid-request`` (400) for a malformed hash or id,
``unknown-module`` / ``unknown-task`` (404), the module intake's refusal codes (422).
"""

from __future__ import annotations

import re
from functools import cache
from typing import Annotated, Any

import anyio
from litestar import Controller, Request, Response, get, put
from litestar.params import Parameter

from icn.application.compute_reads import STATES, TaskList, TaskView, task_list, task_view
from icn.application.errors import NotFound
from icn.application.trust_epochs import CommittedState
from icn.domain.compute import state as compute_state
from icn.domain.refusals import Code, Refusal
from icn.infrastructure.compute.engine import EngineSettings
from icn.infrastructure.compute.modules import intake
from icn.infrastructure.compute.sandbox import Sandbox
from icn.infrastructure.compute.store import module_store
from icn.infrastructure.store.event_store import SqlEventStore
from icn.interfaces.bootstrap import Node
from icn.interfaces.http.auth import Principal
from icn.interfaces.http.coop_paths import COOP_ROUTES, CoopPath
from icn.interfaces.http.gate import needs
from icn.interfaces.http.problems import ApiProblem, problem_responses, status_for

HEX64 = re.compile(r"^[0-9a-f]{64}$")
WASM = "application/wasm"


@cache
def _intake_sandbox() -> Sandbox:
    """The engine uploads are judged with: the task settings, no wall-clock ticker (intake
    compiles, it never runs)."""
    return Sandbox(EngineSettings(epoch_interruption=False))


def _hex(value: str, what: str) -> str:
    if not HEX64.match(value):
        raise ApiProblem(400, "invalid-request", f"a {what} is 64 lower-case hex digits")
    return value


def _unknown_module(coop: str, hash_: str) -> ApiProblem:
    return ApiProblem(404, Code.UNKNOWN_MODULE, f"{coop} has no module {hash_}")


def _keep(node: Node, coop: str, module: str, data: bytes) -> dict[str, Any]:
    """Intake (compiling: off the event loop) and the write to the module store."""
    result = intake(data, _intake_sandbox(), expected_hash=module)
    if isinstance(result, Refusal):
        raise ApiProblem(status_for(result.code), result.code, result.reason)
    module_store(node.data_dir).put(coop, result.binary)
    return {"module": result.hash, "size": result.size}


class ComputeController(Controller):
    """Module bytes and tasks of one coop."""

    path = COOP_ROUTES
    tags = ("compute",)

    @put(
        "/modules/{module:str}",
        opt=needs("events:write"),
        status_code=201,
        responses=problem_responses(400, 401, 403, 404, 422),
    )
    async def put_module(
        self, request: Request[Principal, Any, Any], node: Node, coop: CoopPath, module: str
    ) -> dict[str, Any]:
        """Keep a stored module's bytes (binary or WAT) on this node, checked against its hash
        and the task ABI; again with the same bytes changes nothing."""
        _hex(module, "module hash")
        if compute_state.module(CommittedState(node.store), coop, module) is None:
            raise _unknown_module(coop, module)
        data = await request.body()
        return await anyio.to_thread.run_sync(_keep, node, coop, module, data)

    @get(
        "/modules/{module:str}",
        opt=needs("log:read"),
        sync_to_thread=True,
        media_type=WASM,
        responses=problem_responses(400, 401, 403, 404),
    )
    def get_module(self, node: Node, coop: CoopPath, module: str) -> Response[bytes]:
        """A stored module's binary, by its BLAKE3 hash (``application/wasm``)."""
        _hex(module, "module hash")
        data = module_store(node.data_dir).get(coop, module)
        if data is None or compute_state.module(CommittedState(node.store), coop, module) is None:
            raise _unknown_module(coop, module)
        return Response(data, media_type=WASM)

    @get(
        "/tasks",
        opt=needs("log:read"),
        sync_to_thread=True,
        responses=problem_responses(400, 401, 403),
    )
    def list_tasks(
        self,
        store: SqlEventStore,
        coop: CoopPath,
        state_filter: Annotated[str | None, Parameter(query="state", max_length=16)] = None,
        executor: Annotated[str | None, Parameter(query="executor", max_length=128)] = None,
    ) -> TaskList:
        """The coop's tasks, newest first (200 at most), in ``state`` (``running``, ``agreed``,
        ``unresolved``, ``settled``) and placed on ``executor`` (a node's DID), each if given."""
        if state_filter is not None and state_filter not in STATES:
            raise ApiProblem(400, "invalid-request", f"state is one of {', '.join(STATES)}")
        return task_list(store, coop, state_filter, executor)

    @get(
        "/tasks/{task:str}",
        opt=needs("log:read"),
        sync_to_thread=True,
        responses=problem_responses(400, 401, 403, 404),
    )
    def get_task(self, store: SqlEventStore, coop: CoopPath, task: str) -> TaskView:
        """One task: state, executors, commitments and reveals, outcome, output, fuel, fee."""
        _hex(task, "task id")
        try:
            return task_view(store, coop, task)
        except NotFound as exc:
            raise ApiProblem(404, Code.UNKNOWN_TASK, str(exc)) from None
