"""The coops' module buckets, from whichever process holds the node's NATS link.

The compute routes read and share module bytes through :class:`Peers`; the sweep
(:func:`share_loop`) puts the modules this node keeps into the buckets that lack them.
Both run where replication runs: in the serving process, or in its writer process
(:mod:`icn.interfaces.writer_process`), which is why this module imports no HTTP
framework: the writer's start-up would pay for importing it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import anyio

from icn.infrastructure.compute.module_bucket import SHARE_TIMEOUT_S, fetch, share, share_held
from icn.infrastructure.compute.store import module_store

if TYPE_CHECKING:
    from icn.infrastructure.replication.supervisor import ReplicationSupervisor
    from icn.interfaces.bootstrap import Node
    from icn.interfaces.writer_process import WriterProcess

log = logging.getLogger("icn.compute.modules")

SHARE_EVERY_S = 5.0
"""How often a node looks for modules it keeps that its coops' buckets lack (a folder
listing; NATS is asked only about modules not yet known to be there)."""
SWEEP_TIMEOUT_S = 120.0


def _nats(replication: ReplicationSupervisor | None) -> Any:
    """The node's NATS connection while it is connected, else ``None``."""
    if replication is None or not replication.link.connected:
        return None
    return replication.link.client


class Peers:
    """The coops' module buckets, wherever the node's NATS connection is (replication's:
    this process's, :class:`ModulePeers`, or its writer process's)."""

    async def share(self, coop: str, module: str, binary: bytes) -> bool:
        """Put the bytes in the coop's bucket: True once it holds them, False while not
        connected. Raises what went wrong (a slow or refusing bucket)."""
        raise NotImplementedError

    async def fetch(self, coop: str, module: str) -> bytes | None:
        """The module's bytes from the coop's bucket (not judged yet), None while not
        connected; :class:`ModuleUnavailable` when no node shared them."""
        raise NotImplementedError


class ModulePeers(Peers):
    """:class:`Peers` over this process's replication link."""

    def __init__(self, replication: ReplicationSupervisor) -> None:
        self.replication = replication

    async def share(self, coop: str, module: str, binary: bytes) -> bool:
        client = _nats(self.replication)
        if client is None:
            return False
        with anyio.fail_after(SHARE_TIMEOUT_S):
            await share(client, coop, module, binary)
        return True

    async def fetch(self, coop: str, module: str) -> bytes | None:
        client = _nats(self.replication)
        if client is None:
            return None
        return await fetch(client, coop, module)


class WriterPeers(Peers):
    """:class:`Peers` through the writer process, which holds the replication link
    (``icn node run`` with ``ICN_WRITER_PROCESS``): the bytes cross the pipe."""

    def __init__(self, writer: WriterProcess) -> None:
        self.writer = writer

    async def share(self, coop: str, module: str, binary: bytes) -> bool:
        shared: bool = await asyncio.wrap_future(self.writer.peers("share", coop, module, binary))
        return shared

    async def fetch(self, coop: str, module: str) -> bytes | None:
        data: bytes | None = await asyncio.wrap_future(self.writer.peers("fetch", coop, module))
        return data


async def share_loop(node: Node, replication: ReplicationSupervisor) -> None:
    """For the app's lifetime: share the modules this node keeps that the buckets lack
    (kept while NATS was away, or written into its data directory while it was stopped),
    so the other nodes' executors can read them. Once per module; a failure waits a round."""
    known: set[tuple[str, str]] = set()
    store = module_store(node.data_dir)
    while True:
        client = _nats(replication)
        if client is None:
            await asyncio.sleep(1.0)  # not connected (yet)
            continue
        try:
            async with asyncio.timeout(SWEEP_TIMEOUT_S):
                written = await share_held(client, store, known)
            if written:
                log.info("shared %d kept module(s) with the coops' other nodes", written)
        except Exception as exc:  # NATS away, a slow bucket: the next round tries again
            log.warning("sharing kept modules failed: %s", exc or type(exc).__name__)
        await asyncio.sleep(SHARE_EVERY_S)
