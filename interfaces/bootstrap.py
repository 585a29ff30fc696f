"""The composition root: the one place that builds real adapters and use cases.

Nothing is built at import time; each entry point (CLI command, HTTP app)
calls :func:`open_node` with its settings and closes the node when done.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from nacl.signing import SigningKey

from icn.application.append import AppendEvents, CommittedEvent
from icn.application.authoring import EventAuthor
from icn.application.checkpoints import IssueCheckpoint
from icn.application.coop_duties import CoopDuties
from icn.application.errors import ApplicationError
from icn.application.governance_duties import GovernanceDuties
from icn.application.trust_epochs import TrustEpochs
from icn.infrastructure.data_dir import hold_data_dir, secure_data_dir
from icn.infrastructure.keystore import Keystore
from icn.infrastructure.passphrase import resolve_passphrase
from icn.infrastructure.replication.nats_auth import ensure_users
from icn.infrastructure.settings import Settings
from icn.infrastructure.store.database import parse_database_url
from icn.infrastructure.store.event_store import SqlEventStore
from icn.infrastructure.store.wal import WalCheckpointer

if TYPE_CHECKING:
    from icn.application.group_commit import Writer
    from icn.application.sequencing import Sequencer
    from icn.infrastructure.replication.config import ReplicationConfig
    from icn.infrastructure.replication.supervisor import ReplicationSupervisor
    from icn.infrastructure.store.read_models import ReadSide
    from icn.interfaces.http.log_feed import LogFeed

NODE_KEY = "node"
COOP_KEY_PREFIX = "coop-"


def coop_key_name(coop: str) -> str:
    """The keystore entry holding a coop's own key (the node keeps it, encrypted)."""
    return f"{COOP_KEY_PREFIX}{coop}"


NODE_DID_META = "node_did"


class NodeNotInitialised(ApplicationError):
    """The data directory has no node yet."""

    code = "not-initialised"


def clock_ms() -> int:
    """Wall clock in milliseconds: the only clock the node reads."""
    return time.time_ns() // 1_000_000


def node_clock(offset_ms: int) -> Callable[[], int]:
    """The clock a node judges writes by: the wall clock, shifted by ``ICN_CLOCK_OFFSET_MS``
    (0 but in tests of nodes whose clocks disagree)."""
    if offset_ms == 0:
        return clock_ms
    return lambda: clock_ms() + offset_ms


class Projector(Protocol):
    """What a running node's writer tells of each commit before answering it: the read
    side that projects (:class:`~icn.infrastructure.store.read_models.ReadSide`, imported
    only by nodes that serve)."""

    def project_committed(self, events: Sequence[CommittedEvent]) -> None:
        """Bring the committed coops' read models up to the log."""
        ...

    def close(self) -> None:
        """Release its connections."""
        ...


@dataclass
class Node:
    """A node's adapters and use cases, opened on one data directory."""

    settings: Settings
    store: SqlEventStore
    keystore: Keystore
    node_did: str
    append: AppendEvents
    clock_ms: Callable[[], int] = clock_ms
    """Trusted time for what this node accepts outside a stream (icn.domain.events.timing)."""
    rebuilding: list[str] = field(default_factory=list)
    """Projections whose read models were in an earlier layout: dropped at open, rebuilt
    from the log by the next catch-up (``icn node run`` does it first, with progress)."""
    checkpointer: WalCheckpointer | None = None
    """A running node's WAL checkpoints (SQLite), stopped by :meth:`close`."""
    projector: Projector | None = None
    """The read side the node's writer brings up to each commit before answering it
    (:func:`build_node`; None in commands and in a writer process's serving half)."""

    @property
    def data_dir(self) -> Path:
        """Where the node keeps its files."""
        return self.settings.data_dir

    def signing_key(self) -> SigningKey:
        """Unlock the node's own key (passphrase from the environment or a prompt)."""
        return self.keystore.unlock(NODE_KEY, resolve_passphrase())

    @property
    def author(self) -> EventAuthor:
        """Signs and appends the next events of a key this node holds."""
        return EventAuthor(self.store, self.append, self.clock_ms)

    def coop_key(self, coop: str, passphrase: str | None = None) -> SigningKey | None:
        """The coop's own key if this node keeps it (``None`` otherwise)."""
        name = coop_key_name(coop)
        if not self.keystore.exists(name):
            return None
        return self.keystore.unlock(name, passphrase or resolve_passphrase())

    def duties(self, passphrase: str | None = None) -> CoopDuties:
        """Dispute settlements and demurrage, signed with the coop keys this node keeps."""
        cache: dict[str, SigningKey] = {}

        def key_for(coop: str) -> SigningKey | None:
            if coop not in cache:  # "no key" is not remembered: it may arrive later
                key = self.coop_key(coop, passphrase)
                if key is None:
                    return None
                cache[coop] = key
            return cache[coop]

        return CoopDuties(self.store, self.author, key_for, self.epochs, self.governance)

    @property
    def epochs(self) -> TrustEpochs:
        """Standing epochs, published by the coop's key when due or asked for."""
        return TrustEpochs(self.store, self.append, self.clock_ms)

    @property
    def governance(self) -> GovernanceDuties:
        """Closing due proposals and executing accepted ones, with the coop's key."""
        return GovernanceDuties(self.store, self.append, self.clock_ms)

    def checkpoints(self, key: SigningKey | None = None) -> IssueCheckpoint:
        """The checkpoint use case, signing with the node key."""
        return IssueCheckpoint(self.store, self.append, key or self.signing_key(), self.clock_ms)

    def close(self) -> None:
        """Release database connections (after one last WAL checkpoint, if this node
        runs them)."""
        if self.projector is not None:
            self.projector.close()
        if self.checkpointer is not None:
            self.checkpointer.stop()
        self.store.close()


def keystore_for(settings: Settings) -> Keystore:
    """The keystore in the data directory."""
    return Keystore(settings.data_dir / "keys")


def _store_for(settings: Settings, *, autocheckpoint: bool = True) -> SqlEventStore:
    database = parse_database_url(settings.database_url, settings.data_dir)
    return SqlEventStore(dataclasses.replace(database, autocheckpoint=autocheckpoint))


def _progress(label: str, total: int) -> AbstractContextManager[Callable[[int], None]]:
    """How a store rewritten at open (an earlier release's log) shows its progress: a bar on
    a terminal, a line every 5 s otherwise."""
    from icn.interfaces.cli.common import progress_bar

    return progress_bar(label, total, lines_every_s=5)


CATCH_UP_PROGRESS_FROM = 10_000
"""Events behind from which a read command's catch-up shows its progress (seconds of work);
a rebuild of read models dropped at open (an earlier layout) shows it however long."""


def catch_up_reads(node: Node, side: ReadSide, coop: str) -> None:
    """Bring the read models up to the log of ``coop`` before a read command answers.

    Usually a few events, or none. A store an earlier release wrote has its read models
    dropped at open (``node.rebuilding``) and rebuilt here from the whole log, which takes
    minutes on a large one; so does the first read after a large import. Those show their
    progress as the store's own rewrite at open does: a bar on a terminal, a plain line
    every 5 s and one at the end otherwise, on stderr (``--json`` output stays one document
    on stdout).
    """
    size = node.store.tree_size(coop)
    positions = side.models.positions(coop)
    start = min((positions.get(p.name, -1) for p in side.runner.projections), default=size - 1)
    behind = size - 1 - start
    if behind <= 0 or (not node.rebuilding and behind < CATCH_UP_PROGRESS_FROM):
        side.catch_up(coop)
        return
    with _progress("read models", behind) as advance:
        side.runner.catch_up(coop, on_progress=advance)


def is_initialised(settings: Settings) -> bool:
    """True once ``icn node init`` has run for this data directory."""
    return keystore_for(settings).exists(NODE_KEY) and (settings.data_dir / "node.json").exists()


def init_node(settings: Settings) -> str:
    """Create the data directory, the store and the node's identity; return its DID."""
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    hold_data_dir(settings.data_dir)  # no node may run on a directory being set up
    secure_data_dir(settings.data_dir)
    keystore = keystore_for(settings)
    if not keystore.exists(NODE_KEY):
        keystore.create(NODE_KEY, resolve_passphrase(confirm=True))
    did = keystore.info(NODE_KEY).did
    store = _store_for(settings)
    try:
        store.create_tables(_progress)
        store.set_meta(NODE_DID_META, did)
    finally:
        store.close()
    ensure_users(settings.data_dir)  # the node's own NATS user: its nats-server requires it
    marker = settings.data_dir / "node.json"
    marker.write_text(f'{{"node_did": "{did}", "format": 1}}\n')
    secure_data_dir(settings.data_dir)  # the SQLite file was made under the caller's umask
    return did


@dataclass
class ServedNode:
    """Everything ``icn node run`` serves: the node, the feed live streams wait on, and its
    replication (None with ``--no-replication``), wired to each other by construction."""

    node: Node
    feed: LogFeed
    replication: ReplicationSupervisor | None
    writer: Writer | None = None
    """The writer process (``writer_process``), which then runs replication, checkpoints
    and duties; None: the app writes in its own process."""


def build_node(
    settings: Settings,
    *,
    nats: str | None = None,
    serve: Sequence[str] = (),
    replication: bool = True,
    config: ReplicationConfig | None = None,
    writer_process: bool = False,
    lock: bool = True,
) -> ServedNode:
    """The composition root of a running node: every part built through its constructor,
    every listener registered here. Replication's parts exist before the event loop that
    runs them does: the supervisor's start only connects and starts them.

    ``config``: replication's, when not the one ``settings``, ``nats`` and ``serve`` make.
    ``writer_process``: this process serves, and a child process (started by the app's
    writer, :mod:`icn.interfaces.writer_process`) writes, replicates and runs the duties
    and the checkpoints. ``lock``: False in that child, whose parent holds the data dir's
    lock.
    """
    if writer_process:
        return _served_by_writer_process(settings, nats, serve, replication, config)
    # Imported here: replication brings in nats-py, which a CLI command never needs.
    from icn.infrastructure.replication.config import ReplicationConfig
    from icn.infrastructure.replication.link import NatsLink
    from icn.infrastructure.replication.sequencer import JetStreamSequencer
    from icn.infrastructure.replication.supervisor import ReplicationSupervisor
    from icn.infrastructure.replication.write_gates import WriteGates
    from icn.interfaces.http.log_feed import LogFeed

    if not (replication and settings.replication):
        node = _projecting(open_node(settings, writer=True, lock=lock, running=True))
        return ServedNode(node, LogFeed(node.store), None)
    gates = WriteGates()
    sequencer = JetStreamSequencer(gates, NatsLink(thread="icn-sequencer"))
    node = _projecting(
        open_node(settings, writer=True, sequencer=sequencer, lock=lock, running=True)
    )
    feed = LogFeed(node.store)
    supervisor = ReplicationSupervisor(
        node.store,
        node.append,
        sequencer,
        node_did=node.node_did,
        data_dir=node.data_dir,
        clock_ms=node.clock_ms,
        config=config or ReplicationConfig.from_settings(settings, nats=nats, serve=serve),
        on_appended=feed.notify,  # the feed hears of what replication appends
    )
    node.append.add_commit_listener(supervisor.on_commit)  # the relays hear of local commits
    gates.wanted_listeners.append(supervisor.want)  # a write to a coop not served yet
    return ServedNode(node, feed, supervisor)


def _projecting(node: Node) -> Node:
    """``node`` with its projector: the first listener of every commit, so the read models
    hold a write before anything else hears of it, the client's answer included."""
    from icn.infrastructure.store.read_models import ReadSide

    projector = ReadSide(node.store, kept_current=True)
    node.append.add_commit_listener(projector.project_committed)
    node.projector = projector
    return node


def _served_by_writer_process(
    settings: Settings,
    nats: str | None,
    serve: Sequence[str],
    replication: bool,
    config: ReplicationConfig | None,
) -> ServedNode:
    """The serving half of a node whose writer is a process of its own: this process holds
    the data dir's lock and reads; its ``node.append`` goes to the writer."""
    from icn.interfaces.http.log_feed import LogFeed
    from icn.interfaces.writer_process import RemoteAppend, WriterProcess, WriterSpec

    spec = WriterSpec(settings, nats, tuple(serve), replication and settings.replication, config)
    writer = WriterProcess(spec)
    writer.launch()  # before the store opens: see launch; it waits for begin()
    try:
        # The lock, and the tables, before the child.
        node = open_node(settings, writer=True, running=True)
    except BaseException:
        writer.stop()
        raise
    node.append = RemoteAppend(writer, node.store, node.clock_ms)
    return ServedNode(node, LogFeed(node.store), None, writer)


def open_node(
    settings: Settings,
    *,
    writer: bool = False,
    sequencer: Sequencer | None = None,
    lock: bool = True,
    running: bool = False,
) -> Node:
    """Open an initialised node's store and use cases.

    ``writer``: this process writes the store (``node run``, imports, local writes), so it
    takes the data dir's lock first (:class:`~icn.infrastructure.data_dir.DataDirBusy`
    while another holds it) and tightens the directory's modes. Readers need neither:
    they work beside a running node. ``sequencer``: the writes go through the coops'
    streams first (a replicating node, see :func:`build_node`). ``lock``: False for a
    writer whose parent process holds the lock for it. ``running``: a node that serves
    until stopped (:func:`build_node`): no connection checkpoints SQLite's WAL in a
    commit, and the process holding the lock runs a
    :class:`~icn.infrastructure.store.wal.WalCheckpointer` instead.
    """
    if not is_initialised(settings):
        raise NodeNotInitialised(
            f"no node in {settings.data_dir}: run `icn node init --data-dir {settings.data_dir}`"
        )
    if writer and lock:
        hold_data_dir(settings.data_dir)
        secure_data_dir(settings.data_dir)
    keystore = keystore_for(settings)
    did = keystore.info(NODE_KEY).did
    store = _store_for(settings, autocheckpoint=not running)
    rebuilding = store.create_tables(_progress)
    checkpointer = None
    if running and lock and store.database.is_sqlite:
        checkpointer = WalCheckpointer(store.database.sqlite_path)
        checkpointer.start()
    clock = node_clock(settings.clock_offset_ms)
    append = AppendEvents(store, clock, max_skew_s=settings.max_clock_skew_s, sequencer=sequencer)
    return Node(settings, store, keystore, did, append, clock, rebuilding, checkpointer)
