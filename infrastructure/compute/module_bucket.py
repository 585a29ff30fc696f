"""Module bytes shared across a coop's nodes: one JetStream Object Store bucket per coop.

A module's bytes reach one node (``PUT …/modules/{hash}``); a task may be
placed on an executor of any node. Rather than a transfer of our own, the
nodes use the Object Store JetStream already ships (nats-py's
``create_object_store``): bucket ``ICN_MODULES_<coop>``, one object per module
named by its BLAKE3 hash, cut into chunks and carried with a SHA-256 digest,
replicated like the coop's stream (R3 on a cluster of three or more). The
node that keeps a module writes it; a node asked for a module it lacks reads
it.

The bucket is a transport, never an authority. Anyone with a node's NATS
login can write it, so what comes back is bounded here (the declared size
first, then every chunk as it arrives, then a deadline), a link to another
object or bucket is refused, and the caller puts the bytes through the very
intake an upload goes through (BLAKE3 against the name, validation, the
ABI) before storing or running them. Nothing read here is ever deserialized
as compiled code.
"""

from __future__ import annotations

import asyncio
import io
import logging

from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import ObjectStoreConfig, StorageType
from nats.js.errors import (
    BadRequestError,
    BucketNotFoundError,
    NotFoundError,
    ObjectNotFoundError,
)
from nats.js.object_store import ObjectStore

from icn.domain.compute.abi import MAX_MODULE_BYTES
from icn.infrastructure.compute.store import ModuleStore
from icn.infrastructure.replication.streams import default_replicas
from icn.infrastructure.replication.subjects import check_coop

log = logging.getLogger(__name__)

BUCKET_PREFIX = "ICN_MODULES_"
FETCH_TIMEOUT_S = 8.0
"""Longest a read may take (a 4 MiB module from a loaded local NATS takes well under a
second); under the HTTP client's 10 s, so an executor asking its node gets an answer."""
SHARE_TIMEOUT_S = 15.0
"""Longest a write may take before the upload answers without it (``shared: false``)."""


class ModuleUnavailable(Exception):
    """No node of the coop put the module in the bucket, or reading it failed (bounded)."""


class TooLarge(Exception):
    """An object ran past the module size limit while it was read."""


def bucket_name(coop: str) -> str:
    """``ICN_MODULES_<coop>``: the bucket of one coop's module bytes."""
    return BUCKET_PREFIX + check_coop(coop)


async def _bucket(nc: Client, coop: str, *, create: bool) -> ObjectStore | None:
    js: JetStreamContext = nc.jetstream()
    name = bucket_name(coop)
    try:
        return await js.object_store(name)
    except BucketNotFoundError:
        if not create:
            return None
    config = ObjectStoreConfig(
        description=f"task module bytes of {coop}, by BLAKE3",
        storage=StorageType.FILE,
        replicas=default_replicas(nc),
    )
    try:
        return await js.create_object_store(name, config)
    except BadRequestError:  # another node created it a moment ago, perhaps otherwise
        return await js.object_store(name)


class _Bounded(io.RawIOBase):
    """What ``ObjectStore.get`` writes the chunks into: refuses to hold more than ``limit``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        if len(self.data) + len(b) > self.limit:
            raise TooLarge
        self.data += b
        return len(b)


async def share(nc: Client, coop: str, module: str, binary: bytes) -> bool:
    """Put ``binary`` in the coop's bucket under ``module`` unless it holds that already.
    True when it was written now."""
    store = await _bucket(nc, coop, create=True)
    assert store is not None
    try:
        info = await store.get_info(module)
        if info.size == len(binary) and not info.is_link():
            return False
    except (ObjectNotFoundError, NotFoundError):
        pass
    await store.put(module, binary)
    return True


async def share_held(nc: Client, store: ModuleStore, known: set[tuple[str, str]]) -> int:
    """Share every module ``store`` keeps that its coop's bucket lacks: bytes kept while
    NATS was away, or written into a stopped node's data directory. ``known``: the
    (coop, hash) pairs already known to be in the bucket, skipped and added to.
    Returns how many were written now."""
    written = 0
    for coop in await asyncio.to_thread(store.coops):
        for module in await asyncio.to_thread(store.hashes, coop):
            if (coop, module) in known:
                continue
            binary = await asyncio.to_thread(store.get, coop, module)
            if binary is None:  # no longer its hash's bytes: never shared
                continue
            if await share(nc, coop, module, binary):
                written += 1
            known.add((coop, module))
    return written


async def fetch(nc: Client, coop: str, module: str, *, limit: int = MAX_MODULE_BYTES) -> bytes:
    """The bytes stored under ``module`` in the coop's bucket, at most ``limit`` of them.

    Raises :class:`ModuleUnavailable` when the bucket or the object is missing, is a
    link, is over ``limit`` or cannot be read whole (digest, deadline). The bytes are
    not checked against the hash here: the caller runs the upload's intake on them.
    """
    try:
        async with asyncio.timeout(FETCH_TIMEOUT_S):
            store = await _bucket(nc, coop, create=False)
            if store is None:
                raise ModuleUnavailable(f"no node of {coop} has shared a module yet")
            info = await store.get_info(module)
            if info.is_link():
                raise ModuleUnavailable("the bucket holds a link, not the module's bytes")
            if info.size is None or info.size > limit:
                raise ModuleUnavailable(f"the bucket's object is {info.size} bytes, over {limit}")
            sink = _Bounded(limit)
            await store.get(module, writeinto=sink)  # type: ignore[arg-type]
            return bytes(sink.data)
    except (ObjectNotFoundError, NotFoundError):
        raise ModuleUnavailable(f"no node of {coop} has shared module {module}") from None
    except TooLarge:
        raise ModuleUnavailable(f"the bucket's object ran past {limit} bytes") from None
    except TimeoutError:
        raise ModuleUnavailable(f"reading the module took over {FETCH_TIMEOUT_S:g} s") from None
    except ModuleUnavailable:
        raise
    except Exception as exc:  # digest mismatch, bad meta, NATS away: not this node's verdict
        raise ModuleUnavailable(f"reading the module failed: {type(exc).__name__}") from None
