"""Compute over HTTP: module bytes by hash, and tasks as executors and submitters see them.

``PUT …/modules/{module}`` takes a module's bytes (binary, or WAT text) once the
coop's log holds its ``compute.ModuleStored``: the node runs them through
module intake (the same checks the uploader's client ran before signing),
keeps them by hash (:mod:`icn.infrastructure.compute.store`) and shares them
with the coop's other nodes through the JetStream bucket
(:mod:`icn.infrastructure.compute.module_bucket`). The body has its own limit,
the module size limit (4 MiB, not the API's 256 KiB), counted as it streams
in (``module-too-large``, 413). ``GET …/modules/{module}`` serves them; a node
that lacks the bytes reads them from the bucket first and puts them through
the same intake as an upload, so a peer is never trusted
(``module-unavailable``, 503, when no node shared them). Tasks are
submitted, committed, revealed and settled as signed events through
``POST …/events``; ``GET …/tasks`` and ``…/tasks/{id}`` read them. Every
route needs a token of the path's coop; errors are problem documents with
stable codes: ``invalid-request`` (400) for a malformed hash or id,
``unknown-module`` / ``unknown-task`` (404), the module intake's refusal codes (422).
"""

from __future__ import annotations

import logging
import re
from functools import cache
from typing import Annotated, Any

import anyio
from litestar import Controller, Request, Response, get, put
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter

from icn.application.compute_reads import STATES, TaskList, TaskView, task_list, task_view
from icn.application.errors import NotFound
from icn.application.trust_epochs import CommittedState
from icn.domain.compute import state as compute_state
from icn.domain.compute.abi import MAX_MODULE_BYTES
from icn.domain.refusals import Code, Refusal
from icn.infrastructure.compute.engine import EngineSettings
from icn.infrastructure.compute.module_bucket import ModuleUnavailable
from icn.infrastructure.compute.modules import StoredModule, intake
from icn.infrastructure.compute.sandbox import Sandbox
from icn.infrastructure.compute.store import module_store
from icn.interfaces.bootstrap import Node
from icn.interfaces.http.auth import Principal
from icn.interfaces.http.coop_paths import COOP_ROUTES, CoopPath
from icn.interfaces.http.dependencies import NodeDep, StoreDep
from icn.interfaces.http.gate import needs
from icn.interfaces.http.problems import ApiProblem, problem_responses, status_for
from icn.interfaces.module_peers import Peers

HEX64 = re.compile(r"^[0-9a-f]{64}$")
WASM = "application/wasm"
MAX_UPLOAD_BYTES = MAX_MODULE_BYTES
"""A module PUT's body limit: a binary module's (a WAT text upload is held to it too)."""

log = logging.getLogger("icn.compute.modules")


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


def _keep(node: Node, coop: str, module: str, data: bytes) -> StoredModule:
    """Intake (compiling: off the event loop) and the write to the module store."""
    result = intake(data, _intake_sandbox(), expected_hash=module)
    if isinstance(result, Refusal):
        raise ApiProblem(status_for(result.code), result.code, result.reason)
    module_store(node.data_dir).put(coop, result.binary)
    return result


def _too_large() -> ApiProblem:
    return ApiProblem(
        413, Code.MODULE_TOO_LARGE, f"a module upload is at most {MAX_UPLOAD_BYTES} bytes"
    )


async def _capped_body(request: Request[Principal, Any, Any]) -> bytes:
    """The body, refused as soon as it declares or streams past :data:`MAX_UPLOAD_BYTES`
    (never more than the limit plus one chunk held)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_UPLOAD_BYTES:
        raise _too_large()
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_UPLOAD_BYTES:
            raise _too_large()
    return bytes(body)


async def _share(peers: Peers | None, coop: str, kept: StoredModule) -> bool:
    """Put the bytes in the coop's bucket for the other nodes: True once it holds them."""
    if peers is None:
        return False
    try:
        return await peers.share(coop, kept.hash, kept.binary)
    except Exception as exc:  # kept here all the same; a later upload shares them again
        log.warning("module %s not shared with the coop's nodes: %s", kept.hash, exc)
        return False


def _held(node: Node, coop: str, module: str) -> tuple[bool, bytes | None]:
    """Whether the log stores ``module``, and its bytes if this node holds them."""
    if compute_state.module(CommittedState(node.store), coop, module) is None:
        return False, None
    return True, module_store(node.data_dir).get(coop, module)


def _unavailable(coop: str, module: str, why: str) -> ApiProblem:
    return ApiProblem(
        503, Code.MODULE_UNAVAILABLE, f"module {module} of {coop} is not on this node, and {why}"
    )


async def _from_peers(node: Node, peers: Peers | None, coop: str, module: str) -> bytes:
    """The module's bytes from the coop's bucket, judged like an upload, then kept here."""
    not_connected = "this node is not connected to the coop's NATS"
    if peers is None:
        raise _unavailable(coop, module, not_connected)
    try:
        data = await peers.fetch(coop, module)
    except ModuleUnavailable as exc:
        raise _unavailable(coop, module, str(exc)) from None
    if data is None:
        raise _unavailable(coop, module, not_connected)
    try:
        kept = await anyio.to_thread.run_sync(_keep, node, coop, module, data)
    except ApiProblem as exc:
        log.warning("module %s from the bucket refused: %s %s", module, exc.code, exc.detail)
        why = f"the bytes shared for it fail intake ({exc.code})"
        raise _unavailable(coop, module, why) from None
    return kept.binary


class ComputeController(Controller):
    """Module bytes and tasks of one coop."""

    path = COOP_ROUTES
    tags = ("compute",)

    @put(
        "/modules/{module:str}",
        opt=needs("events:write"),
        status_code=201,
        request_max_body_size=None,  # its own limit, the module's, counted in _capped_body
        responses=problem_responses(400, 401, 403, 404, 413, 422),
    )
    async def put_module(
        self,
        request: Request[Principal, Any, Any],
        node: NodeDep,
        peers: NamedDependency[Peers | None],
        coop: CoopPath,
        module: FromPath[str],
    ) -> dict[str, Any]:
        """Keep a stored module's bytes (binary or WAT, at most 4 MiB) on this node, checked
        against its hash and the task ABI, and share them with the coop's other nodes
        (``shared``); again with the same bytes changes nothing."""
        _hex(module, "module hash")
        held, _ = await anyio.to_thread.run_sync(_held, node, coop, module)
        if not held:
            raise _unknown_module(coop, module)
        data = await _capped_body(request)
        kept = await anyio.to_thread.run_sync(_keep, node, coop, module, data)
        shared = await _share(peers, coop, kept)
        return {"module": kept.hash, "size": kept.size, "shared": shared}

    @get(
        "/modules/{module:str}",
        opt=needs("log:read"),
        media_type=WASM,
        responses=problem_responses(400, 401, 403, 404, 503),
    )
    async def get_module(
        self,
        node: NodeDep,
        peers: NamedDependency[Peers | None],
        coop: CoopPath,
        module: FromPath[str],
    ) -> Response[bytes]:
        """A stored module's binary, by its BLAKE3 hash (``application/wasm``); read from the
        coop's other nodes when this one lacks it (``module-unavailable`` when none shared it)."""
        _hex(module, "module hash")
        held, data = await anyio.to_thread.run_sync(_held, node, coop, module)
        if not held:
            raise _unknown_module(coop, module)
        if data is None:
            data = await _from_peers(node, peers, coop, module)
        return Response(data, media_type=WASM)

    @get(
        "/tasks",
        opt=needs("log:read"),
        sync_to_thread=True,
        responses=problem_responses(400, 401, 403),
    )
    def list_tasks(
        self,
        store: StoreDep,
        coop: CoopPath,
        state_filter: Annotated[str | None, QueryParameter(name="state", max_length=16)] = None,
        executor: Annotated[str | None, QueryParameter(name="executor", max_length=128)] = None,
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
    def get_task(self, store: StoreDep, coop: CoopPath, task: FromPath[str]) -> TaskView:
        """One task: state, executors, commitments and reveals, outcome, output, fuel, fee."""
        _hex(task, "task id")
        try:
            return task_view(store, coop, task)
        except NotFound as exc:
            raise ApiProblem(404, Code.UNKNOWN_TASK, str(exc)) from None
