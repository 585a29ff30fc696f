"""The Litestar application: routes, errors, limits, headers, and background work.

Controllers only translate HTTP to use cases. Background work the node does
while serving (checkpoints today) is started and stopped by the app's
lifespan, so it lives exactly as long as the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from importlib.metadata import version

import msgspec
from litestar import Litestar, Response, get
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme

from icn.application.checkpoint_schedule import CheckpointSchedule
from icn.application.group_commit import GroupCommit
from icn.interfaces.bootstrap import Node
from icn.interfaces.http import auth, events, log_reads, streams
from icn.interfaces.http.auth import ChallengeBook, Tokens
from icn.interfaces.http.problems import EXCEPTION_HANDLERS, problem_responses
from icn.interfaces.http.rate_limit import RateLimits

log = logging.getLogger("icn.node")
TICK_S = 1.0
MAX_BODY_BYTES = 256 * 1024

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


class Health(msgspec.Struct):
    """Liveness: the process answers."""

    status: str
    version: str
    uptime_s: float
    node: str


class CoopReadiness(msgspec.Struct):
    """One coop's log as this node holds it."""

    size: int


class Readiness(msgspec.Struct):
    """The store answers queries."""

    status: str
    coops: dict[str, CoopReadiness]


@get("/v1/health", sync_to_thread=False, tags=["ops"], responses=problem_responses())
def health(state: State) -> Health:
    """Answer quickly; no I/O."""
    return Health(
        status="ok",
        version=state.version,
        uptime_s=round(time.monotonic() - state.started, 3),
        node=state.node.node_did,
    )


@get("/v1/ready", sync_to_thread=True, tags=["ops"], responses=problem_responses(503))
def ready(state: State) -> Readiness:
    """Readiness: the store answers a query."""
    store = state.node.store
    return Readiness("ready", {c: CoopReadiness(store.tree_size(c)) for c in store.coops()})


async def _checkpoint_loop(schedule: CheckpointSchedule) -> None:
    while True:
        try:
            for cp in await asyncio.to_thread(schedule.tick):
                log.info("checkpoint %s size %d root %s", cp.coop, cp.size, cp.root)
        except Exception:  # keep serving; the next tick retries
            log.exception("checkpoint tick failed")
        await asyncio.sleep(TICK_S)


def _security_headers(hsts: bool):  # type: ignore[no-untyped-def]
    headers = dict(SECURITY_HEADERS)
    if hsts:
        headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"

    def after_request(response: Response) -> Response:  # type: ignore[type-arg]
        response.headers.update(headers)
        return response

    return after_request


def create_app(
    node: Node,
    schedule: CheckpointSchedule | None,
    *,
    jwt_secret: bytes,
    cors_origins: list[str] | None = None,
    behind_tls: bool = False,
    rate_limits: RateLimits | None = None,
    challenge_ttl_s: float = 300,
) -> Litestar:
    """Build the app around an opened node; ``rate_limits`` None: no limits (tests, tools)."""

    writer = GroupCommit(node.append)

    @contextlib.asynccontextmanager
    async def background(app: Litestar) -> AsyncIterator[None]:
        writer.start()
        task = asyncio.create_task(_checkpoint_loop(schedule)) if schedule else None
        try:
            yield
        finally:
            await asyncio.to_thread(writer.stop)
            if task:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    return Litestar(
        route_handlers=[
            health,
            ready,
            *auth.ROUTES,
            *events.ROUTES,
            *log_reads.ROUTES,
            *streams.ROUTES,
        ],
        state=State(
            {
                "node": node,
                "started": time.monotonic(),
                "version": version("icn"),
                "challenges": ChallengeBook(int(challenge_ttl_s * 1000)),
                "tokens": Tokens(jwt_secret, node.node_did),
                "writer": writer,
                "feed": streams.LogFeed(node.store),
            }
        ),
        lifespan=[background],
        middleware=[rate_limits] if rate_limits else [],
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        request_max_body_size=MAX_BODY_BYTES,
        after_request=_security_headers(behind_tls),
        cors_config=CORSConfig(allow_origins=cors_origins) if cors_origins else None,
        openapi_config=OpenAPIConfig(
            title="ICN node API",
            version=version("icn"),
            path="/schema",
            components=Components(
                security_schemes={
                    "bearer": SecurityScheme(type="http", scheme="bearer", bearer_format="JWT")
                }
            ),
        ),
        debug=False,
    )
