"""The Litestar application: for now health and readiness; the API grows here.

Background work the node does while serving (checkpoints today) is started
and stopped by the app's lifespan, so it lives exactly as long as the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from importlib.metadata import version

import msgspec
from litestar import Litestar, get
from litestar.datastructures import State

from icn.application.checkpoint_schedule import CheckpointSchedule
from icn.interfaces.bootstrap import Node

log = logging.getLogger("icn.node")
TICK_S = 1.0


class Health(msgspec.Struct):
    """Liveness: the process answers."""

    status: str
    version: str
    uptime_s: float
    node: str


@get("/v1/health", sync_to_thread=False)
def health(state: State) -> Health:
    """Answer quickly; no I/O."""
    return Health(
        status="ok",
        version=version("icn"),
        uptime_s=round(time.monotonic() - state.started, 3),
        node=state.node.node_did,
    )


@get("/v1/ready", sync_to_thread=True)
def ready(state: State) -> dict[str, object]:
    """Readiness: the store answers a query."""
    coops = state.node.store.coops()
    return {"status": "ready", "coops": {c: {"size": state.node.store.tree_size(c)} for c in coops}}


async def _checkpoint_loop(schedule: CheckpointSchedule) -> None:
    while True:
        try:
            for cp in await asyncio.to_thread(schedule.tick):
                log.info("checkpoint %s size %d root %s", cp.coop, cp.size, cp.root)
        except Exception:  # keep serving; the next tick retries
            log.exception("checkpoint tick failed")
        await asyncio.sleep(TICK_S)


def create_app(node: Node, schedule: CheckpointSchedule | None) -> Litestar:
    """Build the app around an opened node."""

    @contextlib.asynccontextmanager
    async def background(app: Litestar) -> AsyncIterator[None]:
        task = asyncio.create_task(_checkpoint_loop(schedule)) if schedule else None
        try:
            yield
        finally:
            if task:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    return Litestar(
        route_handlers=[health, ready],
        state=State({"node": node, "started": time.monotonic()}),
        lifespan=[background],
    )
