"""Reading the log: pages of events, one event, the checkpoint, and proofs."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, get
from litestar.datastructures import State
from litestar.params import Parameter

from icn.application.errors import NotFound
from icn.application.queries import entry_in
from icn.interfaces.http.auth import principal_of
from icn.interfaces.http.events import CoopPath
from icn.interfaces.http.problems import ApiProblem, problem_responses

Hex64 = Annotated[str, Parameter(pattern="^[0-9a-f]{64}$")]


class Positioned(msgspec.Struct):
    """An event and its leaf index in the coop's log."""

    position: int
    event: msgspec.Raw


class EventPage(msgspec.Struct):
    """A page of the log; pass ``next`` as ``after`` for the following page (null: the end)."""

    events: list[Positioned]
    next: int | None


class CheckpointView(msgspec.Struct):
    """The node's latest signed checkpoint of the coop."""

    note: str
    size: int
    root: str


class InclusionProof(msgspec.Struct):
    """RFC 9162 inclusion proof."""

    index: int
    size: int
    root: str
    proof: list[str]


class ConsistencyProof(msgspec.Struct):
    """RFC 9162 consistency proof."""

    size1: int
    size2: int
    root1: str
    root2: str
    proof: list[str]


@get(
    "/v1/coops/{coop:str}/events",
    sync_to_thread=True,
    tags=["log"],
    responses=problem_responses(401, 403, 404),
)
def list_events(
    request: Request[Any, Any, Any],
    state: State,
    coop: CoopPath,
    after: Annotated[int, Parameter(ge=-1, le=2**53 - 1)] = -1,
    limit: Annotated[int, Parameter(ge=1, le=1000)] = 100,
    type: Annotated[str | None, Parameter(pattern=r"^[a-z]+(\.[A-Za-z]*)?$", max_length=64)] = None,
    author: Annotated[str | None, Parameter(max_length=128)] = None,
) -> EventPage:
    """Events after position ``after``, oldest first; ``type`` is a prefix (``ledger.``)."""
    principal_of(request, state, coop, "log:read")
    rows = state.node.store.page(coop, after=after, limit=limit, type_prefix=type, author=author)
    events = [Positioned(e.leaf_index, msgspec.Raw(e.wire)) for e in rows]
    return EventPage(events, events[-1].position if len(events) == limit else None)


@get(
    "/v1/coops/{coop:str}/events/{event_id:str}",
    sync_to_thread=True,
    tags=["log"],
    responses=problem_responses(401, 403, 404),
)
def get_event(
    request: Request[Any, Any, Any], state: State, coop: CoopPath, event_id: Hex64
) -> Positioned:
    """One event by id."""
    principal_of(request, state, coop, "log:read")
    entry = entry_in(state.node.store, coop, event_id)
    return Positioned(entry.leaf_index, msgspec.Raw(entry.wire))


@get(
    "/v1/coops/{coop:str}/checkpoint",
    sync_to_thread=True,
    tags=["log"],
    responses=problem_responses(401, 403, 404),
)
def latest_checkpoint(
    request: Request[Any, Any, Any], state: State, coop: CoopPath
) -> CheckpointView:
    """The node's latest checkpoint of this coop (C2SP signed note)."""
    principal_of(request, state, coop, "log:read")
    own = state.node.store.checkpoints(coop, author=state.node.node_did)
    if not own:
        raise NotFound(f"this node has not checkpointed {coop} yet")
    return CheckpointView(own[-1].note, own[-1].size, own[-1].root)


@get(
    "/v1/coops/{coop:str}/proofs/inclusion",
    sync_to_thread=True,
    tags=["log"],
    responses=problem_responses(401, 403, 404),
)
def inclusion(
    request: Request[Any, Any, Any],
    state: State,
    coop: CoopPath,
    event_id: Annotated[str, Parameter(query="id", pattern="^[0-9a-f]{64}$")],
    size: Annotated[int | None, Parameter(ge=1, le=2**53 - 1)] = None,
) -> InclusionProof:
    """Proof that an event is in the tree of ``size`` (default: the current size)."""
    principal_of(request, state, coop, "log:read")
    store = state.node.store
    entry = entry_in(store, coop, event_id)
    n = size if size is not None else store.tree_size(coop)
    if not entry.leaf_index < n <= store.tree_size(coop):
        raise ApiProblem(
            400, "invalid-request", f"event is leaf {entry.leaf_index}; size {n} does not hold it"
        )
    proof = store.inclusion_proof(coop, entry.leaf_index, n)
    return InclusionProof(entry.leaf_index, n, store.root(coop, n).hex(), [p.hex() for p in proof])


@get(
    "/v1/coops/{coop:str}/proofs/consistency",
    sync_to_thread=True,
    tags=["log"],
    responses=problem_responses(401, 403, 404),
)
def consistency(
    request: Request[Any, Any, Any],
    state: State,
    coop: CoopPath,
    size1: Annotated[int, Parameter(query="from", ge=0, le=2**53 - 1)],
    size2: Annotated[int, Parameter(query="to", ge=0, le=2**53 - 1)],
) -> ConsistencyProof:
    """Proof that the tree at ``from`` is a prefix of the tree at ``to``."""
    principal_of(request, state, coop, "log:read")
    store = state.node.store
    if not size1 <= size2 <= store.tree_size(coop):
        raise ApiProblem(400, "invalid-request", f"need from <= to <= {store.tree_size(coop)}")
    proof = store.consistency_proof(coop, size1, size2)
    return ConsistencyProof(
        size1, size2, store.root(coop, size1).hex(), store.root(coop, size2).hex(),
        [p.hex() for p in proof],
    )  # fmt: skip


ROUTES = [list_events, get_event, latest_checkpoint, inclusion, consistency]
