"""Probes for operators and orchestrators: is the process alive, and can it serve?

``/v1/health`` does no I/O, so a liveness probe never fails because the store
is slow; ``/v1/ready`` asks the store (and replication, when on). Neither needs
a token.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import msgspec
from litestar import Controller, get

from icn.application.group_commit import Writer
from icn.infrastructure.replication.numbers import ReplicationReadiness
from icn.infrastructure.store.event_store import SqlEventStore
from icn.interfaces.bootstrap import Node
from icn.interfaces.http.problems import ApiProblem, problem_responses


@dataclass(frozen=True)
class About:
    """This server: the installed version, and when it started (``time.monotonic``)."""

    version: str
    started: float


class ReplicationStatus:
    """Where ``/v1/ready`` learns how replication is doing: the supervisor in this process,
    the writer process's last report, or nothing (no replication)."""

    def __init__(self, source: Callable[[], ReplicationReadiness | None] | None) -> None:
        self._source = source

    def readiness(self) -> ReplicationReadiness | None:
        """Replication's numbers now (None: this node does not replicate)."""
        return self._source() if self._source is not None else None


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
    def health(self, node: Node, about: About, writer: Writer) -> Health:
        """Answer quickly; no I/O."""
        return Health(
            status="ok",
            version=about.version,
            uptime_s=round(time.monotonic() - about.started, 3),
            node=node.node_did,
            writer_pid=getattr(writer, "pid", None),
        )

    @get("/ready", sync_to_thread=True, responses=problem_responses(503))
    def ready(self, store: SqlEventStore, replication_status: ReplicationStatus) -> Readiness:
        """Readiness: the store answers a query (and NATS is connected, when replicating).

        ``degraded`` (still 200: the node serves) while a coop has dead letters: stream
        messages this node set aside because handling them kept failing."""
        rep = replication_status.readiness()
        if rep is not None and not rep.connected:
            raise ApiProblem(503, "replication-unavailable", f"NATS is not reachable at {rep.nats}")
        status = "degraded" if rep is not None and rep.status == "degraded" else "ready"
        return Readiness(status, {c: CoopReadiness(store.tree_size(c)) for c in store.coops()}, rep)
