"""Reading the log: pages of events, one event, the checkpoint, and proofs."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, get
from litestar.params import PathParameter, QueryParameter

from icn.application.queries import entry_in
from icn.interfaces.http.coop_paths import COOP_ROUTES, CoopPath
from icn.interfaces.http.dependencies import NodeDep, StoreDep
from icn.interfaces.http.gate import needs
from icn.interfaces.http.problems import ApiProblem, problem_responses

Hex64 = Annotated[str, PathParameter(pattern="^[0-9a-f]{64}$")]


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


class LogController(Controller):
    """The coop's log as stored here: pages, single events, checkpoints and proofs."""

    path = COOP_ROUTES
    tags = ("log",)
    opt = needs("log:read")

    @get(
        "/events",
        sync_to_thread=True,
        responses=problem_responses(401, 403, 404),
    )
    def list_events(
        self,
        store: StoreDep,
        coop: CoopPath,
        after: Annotated[int, QueryParameter(ge=-1, le=2**53 - 1)] = -1,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
        type: Annotated[
            str | None, QueryParameter(pattern=r"^[a-z]+(\.[A-Za-z]*)?$", max_length=64)
        ] = None,
        author: Annotated[str | None, QueryParameter(max_length=128)] = None,
    ) -> EventPage:
        """Events after position ``after``, oldest first; ``type`` is a prefix (``ledger.``)."""
        rows = store.page(coop, after=after, limit=limit, type_prefix=type, author=author)
        events = [Positioned(e.leaf_index, msgspec.Raw(e.wire)) for e in rows]
        return EventPage(events, events[-1].position if len(events) == limit else None)

    @get(
        "/events/{event_id:str}",
        sync_to_thread=True,
        responses=problem_responses(401, 403, 404),
    )
    def get_event(self, store: StoreDep, coop: CoopPath, event_id: Hex64) -> Positioned:
        """One event by id."""
        entry = entry_in(store, coop, event_id)
        return Positioned(entry.leaf_index, msgspec.Raw(entry.wire))

    @get(
        "/checkpoint",
        sync_to_thread=True,
        responses=problem_responses(401, 403, 404),
    )
    def latest_checkpoint(self, node: NodeDep, coop: CoopPath) -> CheckpointView:
        """The node's latest checkpoint of this coop (C2SP signed note)."""
        own = node.store.latest_checkpoint(coop, node.node_did)
        if own is None:  # a node checkpoints every N events or T seconds (ICN_CHECKPOINT_*)
            raise ApiProblem(
                404,
                "no-checkpoint-yet",
                f"this node has not checkpointed {coop} yet: it does within "
                "ICN_CHECKPOINT_SECONDS of new events (60 by default)",
            )
        return CheckpointView(own.note, own.size, own.root)

    @get(
        "/proofs/inclusion",
        sync_to_thread=True,
        responses=problem_responses(401, 403, 404),
    )
    def inclusion(
        self,
        store: StoreDep,
        coop: CoopPath,
        event_id: Annotated[str, QueryParameter(name="id", pattern="^[0-9a-f]{64}$")],
        size: Annotated[int | None, QueryParameter(ge=1, le=2**53 - 1)] = None,
    ) -> InclusionProof:
        """Proof that an event is in the tree of ``size`` (default: the current size)."""
        entry = entry_in(store, coop, event_id)
        n = size if size is not None else store.tree_size(coop)
        if not entry.leaf_index < n <= store.tree_size(coop):
            raise ApiProblem(
                400,
                "invalid-request",
                f"event is leaf {entry.leaf_index}; size {n} does not hold it",
            )
        proof = store.inclusion_proof(coop, entry.leaf_index, n)
        return InclusionProof(
            entry.leaf_index, n, store.root(coop, n).hex(), [p.hex() for p in proof]
        )

    @get(
        "/proofs/consistency",
        sync_to_thread=True,
        responses=problem_responses(401, 403, 404),
    )
    def consistency(
        self,
        store: StoreDep,
        coop: CoopPath,
        size1: Annotated[int, QueryParameter(name="from", ge=0, le=2**53 - 1)],
        size2: Annotated[int, QueryParameter(name="to", ge=0, le=2**53 - 1)],
    ) -> ConsistencyProof:
        """Proof that the tree at ``from`` is a prefix of the tree at ``to``."""
        if not size1 <= size2 <= store.tree_size(coop):
            raise ApiProblem(400, "invalid-request", f"need from <= to <= {store.tree_size(coop)}")
        proof = store.consistency_proof(coop, size1, size2)
        return ConsistencyProof(
            size1, size2, store.root(coop, size1).hex(), store.root(coop, size2).hex(),
            [p.hex() for p in proof],
        )  # fmt: skip
