"""What the routes are given: the node's parts as Litestar dependencies, built once per app.

A handler names what it needs (``store``, ``reads``, ``writer``, ``feed`` …) and
Litestar passes it in, typed; no handler reads an untyped app state or opens
anything itself. :class:`Services` is made by ``app.create_app`` from the
``Node`` it is given; the caller (``principal``) comes from the coop router's
guard instead (``gate.provide_principal``), since it differs per request.
Litestar checks each value against the handler's annotation (an ``isinstance``),
so handlers name concrete classes here, not protocols.

Handlers mark each such parameter as a dependency (Litestar 3 no longer infers it
from the name): the aliases below for the parts many routes take (``store: StoreDep``),
``NamedDependency[...]`` where only one controller takes a part.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import version
from typing import TYPE_CHECKING

from litestar.di import NamedDependency, Provide

from icn.application.group_commit import Writer
from icn.application.trust_epochs import CommittedState
from icn.infrastructure.replication.numbers import ReplicationReadiness
from icn.infrastructure.replication.supervisor import ReplicationSupervisor
from icn.infrastructure.store.event_store import SqlEventStore
from icn.infrastructure.store.read_models import ReadSide
from icn.infrastructure.store.trust_reads import SqlTrustReads
from icn.interfaces.bootstrap import Node
from icn.interfaces.http.log_feed import LogFeed
from icn.projections.governance_book import GovernanceBook
from icn.projections.trust_book import TrustBook

if TYPE_CHECKING:  # the controllers that own these import this module for the aliases
    from icn.interfaces.http.auth import ChallengeBook, Tokens
    from icn.interfaces.http.gate import Gate
    from icn.interfaces.module_peers import Peers

StoreDep = NamedDependency[SqlEventStore]
"""The ``store`` dependency: the node's event store."""
ReadsDep = NamedDependency[ReadSide]
"""The ``reads`` dependency: the read side (projections), made on first use."""
NodeDep = NamedDependency[Node]
"""The ``node`` dependency: the opened node (store, keys, clock, duties)."""
FeedDep = NamedDependency[LogFeed]
"""The ``feed`` dependency: what live streams wait on, told of every commit."""
WriterDep = NamedDependency[Writer]
"""The ``writer`` dependency: the write path (a thread here, or the writer process)."""


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


class LazyReadSide:
    """The app's one read side, made on first use (its runner serialises catch-ups, so
    there must be only one), and never by an app that serves no ledger read.

    ``kept_current``: the node's writer (a thread here or a writer process) projects
    every commit before answering it (``bootstrap.build_node``), so this side only reads.
    """

    def __init__(self, store: SqlEventStore, kept_current: bool = False) -> None:
        self._store = store
        self._side: ReadSide | None = None
        self._kept_current = kept_current
        self._lock = threading.Lock()

    def get(self) -> ReadSide:
        """The read side, made now if this is the first ledger read."""
        with self._lock:
            if self._side is None:
                self._side = ReadSide(self._store, kept_current=self._kept_current)
            return self._side


@dataclass(frozen=True)
class Services:
    """Everything a route may be given, one of each per app."""

    node: Node
    tokens: Tokens
    challenges: ChallengeBook
    gate: Gate
    writer: Writer
    feed: LogFeed
    replication: ReplicationSupervisor | None = None
    peers: Peers | None = None
    """The coops' module buckets (None: no replication)."""
    replication_status: ReplicationStatus = field(default_factory=lambda: ReplicationStatus(None))
    """What ``/v1/ready`` shows of replication, wherever it runs."""
    about: About = field(default_factory=lambda: About(version("icn"), time.monotonic()))
    projected_by_writer: bool = False
    """A writer process projects every commit before answering it (reads only read)."""
    reads: LazyReadSide = field(init=False)
    trust: TrustBook = field(init=False)
    """Standings and paths from memory (``create_app`` has it hear every commit)."""
    governance: GovernanceBook = field(init=False)
    """Live tallies from memory (``create_app`` has it hear every commit)."""

    def __post_init__(self) -> None:
        kept_current = self.projected_by_writer or self.node.projector is not None
        reads = LazyReadSide(self.node.store, kept_current)
        object.__setattr__(self, "reads", reads)
        book = TrustBook(SqlTrustReads(self.node.store.engine), self.node.clock_ms)
        object.__setattr__(self, "trust", book)
        store = self.node.store
        tallies = GovernanceBook(CommittedState(store), store.tree_size)
        object.__setattr__(self, "governance", tallies)

    def dependencies(self) -> dict[str, Provide]:
        """The app's dependencies, by the parameter name handlers use."""
        return {
            "node": _const(self.node),
            "store": _const(self.node.store),
            "tokens": _const(self.tokens),
            "challenges": _const(self.challenges),
            "gate": _const(self.gate),
            "writer": _const(self.writer),
            "feed": _const(self.feed),
            "replication": _const(self.replication),
            "peers": _const(self.peers),
            "replication_status": _const(self.replication_status),
            "about": _const(self.about),
            "reads": Provide(self.reads.get, sync_to_thread=False),
            "trust": _const(self.trust),
            "governance": _const(self.governance),
        }


def _const(value: object) -> Provide:
    """A dependency that is always the same object (resolved once, then cached)."""
    return Provide(lambda: value, use_cache=True, sync_to_thread=False)
