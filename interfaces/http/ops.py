"""Probes for operators and orchestrators: is the process alive, and can it serve?

``/v1/health`` does no I/O, so a liveness probe never fails because the store
is slow; ``/v1/ready`` asks the store (and replication, when on). Neither needs
a token.
"""

from __future__ import annotations

import time

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency

from icn.infrastructure.replication.numbers import ReplicationReadiness
from icn.interfaces.http.dependencies import (
    About,
    NodeDep,
    ReplicationStatus,
    StoreDep,
    WriterDep,
)
from icn.interfaces.http.problems import ApiProblem, problem_responses


class Health(msgspec.Struct, omit_defaults=True):
    """Liveness: the process answers."""

    status: str
    version: str
    uptime_s: float
    node: str
    writer_pid: int | None = None
    """The writer process's pid, when the node writes in a process of its own."""


class CoopReadiness(msgspec.Struct):
    """One coop's log as this node holds it."""

    size: int


class Readiness(msgspec.Struct):
    """The store answers queries."""

    status: str
    """``ready``, or ``degraded`` while a replicated coop has dead letters."""
    coops: dict[str, CoopReadiness]
    replication: ReplicationReadiness | None = None


class OpsController(Controller):
    """Liveness and readiness."""

    path = "/v1"
    tags = ("ops",)

    @get("/health", sync_to_thread=False, responses=problem_responses())
    def health(self, node: NodeDep, about: NamedDependency[About], writer: WriterDep) -> Health:
        """Answer quickly; no I/O."""
        return Health(
            status="ok",
            version=about.version,
            uptime_s=round(time.monotonic() - about.started, 3),
            node=node.node_did,
            writer_pid=getattr(writer, "pid", None),
        )

    @get("/ready", sync_to_thread=True, responses=problem_responses(503))
    def ready(
        self, store: StoreDep, replication_status: NamedDependency[ReplicationStatus]
    ) -> Readiness:
        """Readiness: the store answers a query (and NATS is connected, when replicating).

        ``degraded`` (still 200: the node serves) while a coop has dead letters: stream
        messages this node set aside because handling them kept failing."""
        rep = replication_status.readiness()
        if rep is not None and not rep.connected:
            raise ApiProblem(503, "replication-unavailable", f"NATS is not reachable at {rep.nats}")
        status = "degraded" if rep is not None and rep.status == "degraded" else "ready"
        return Readiness(status, {c: CoopReadiness(store.tree_size(c)) for c in store.coops()}, rep)
