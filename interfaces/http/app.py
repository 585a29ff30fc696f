"""The Litestar application: routes, errors, limits, headers, and background work.

Controllers only translate HTTP to use cases. Background work the node does
while serving (checkpoints, and the coop duties: dispute settlements and
demurrage) is started and stopped by the app's lifespan, so it lives exactly
as long as the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator
from importlib.metadata import version

import msgspec
from litestar import Litestar, Response, get
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.middleware import DefineMiddleware
from litestar.openapi.spec import Components, SecurityScheme

from icn.application.checkpoint_schedule import CheckpointSchedule
from icn.application.errors import StoreBusy
from icn.application.group_commit import GroupCommit
from icn.infrastructure.passphrase import ENV_PASSPHRASE, ENV_PASSPHRASE_FILE, resolve_passphrase
from icn.infrastructure.replication.numbers import ReplicationReadiness
from icn.infrastructure.replication.supervisor import ReplicationSupervisor
from icn.interfaces.bootstrap import Node
from icn.interfaces.http import (
    api_docs,
    auth,
    events,
    ledger_reads,
    log_reads,
    log_redaction,
    streams,
)
from icn.interfaces.http.auth import ChallengeBook, Tokens
from icn.interfaces.http.json_guard import JsonShapeGuard
from icn.interfaces.http.problems import EXCEPTION_HANDLERS, ApiProblem, problem_responses
from icn.interfaces.http.rate_limit import RateLimits
from icn.interfaces.http.standing import MemberStanding
from icn.interfaces.http.stream_caps import StreamCaps, StreamSlots

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
    """``ready``, or ``degraded`` while a replicated coop has dead letters."""
    coops: dict[str, CoopReadiness]
    replication: ReplicationReadiness | None = None


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
    """Readiness: the store answers a query (and NATS is connected, when replicating).

    ``degraded`` (still 200: the node serves) while a coop has dead letters: stream
    messages this node set aside because handling them kept failing."""
    store = state.node.store
    rep = state.replication.readiness() if state.replication else None
    if rep is not None and not rep.connected:
        raise ApiProblem(503, "replication-unavailable", f"NATS is not reachable at {rep.nats}")
    status = "degraded" if rep is not None and rep.status == "degraded" else "ready"
    return Readiness(status, {c: CoopReadiness(store.tree_size(c)) for c in store.coops()}, rep)


async def _checkpoint_loop(schedule: CheckpointSchedule) -> None:
    while True:
        try:
            for cp in await asyncio.to_thread(schedule.tick):
                log.info("checkpoint %s size %d root %s", cp.coop, cp.size, cp.root)
        except StoreBusy as exc:  # the stream or the store is away for now: no traceback
            log.warning("checkpoint postponed: %s", exc)
        except Exception:  # keep serving; the next tick retries
            log.exception("checkpoint tick failed")
        await asyncio.sleep(TICK_S)


async def _duties_loop(node: Node, feed: streams.LogFeed, interval_s: float) -> None:
    """Settlements and demurrage, signed by the coop keys this node keeps (never a prompt)."""
    if not (os.environ.get(ENV_PASSPHRASE) or os.environ.get(ENV_PASSPHRASE_FILE)):
        log.warning("coop duties off: set ICN_PASSPHRASE or ICN_PASSPHRASE_FILE to sign them")
        return
    duties = None
    reported: set[tuple[str, str, str]] = set()
    while True:
        try:
            duties = duties or node.duties(resolve_passphrase())
            for event in await asyncio.to_thread(duties.run, node.clock_ms()):
                log.info("coop duty %s %s %s", event.coop, event.type, event.id)
                feed.notify(event.coop)
            for coop, what, exc in duties.failures:
                if (coop, what, str(exc)) not in reported:  # once each, not every round
                    reported.add((coop, what, str(exc)))
                    log.warning("coop duty refused in %s: %s: %s", coop, what, exc)
        except Exception:  # keep serving; the next round retries
            log.exception("coop duties failed")
        await asyncio.sleep(interval_s)


def _security_headers(hsts: bool):  # type: ignore[no-untyped-def]
    headers = dict(SECURITY_HEADERS)
    if hsts:
        headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"

    # async on purpose: Litestar runs a plain-function hook in a worker thread, which was
    # a thread hop on every request (a tenth of the event loop's time under load).
    docs = {**headers, "Content-Security-Policy": api_docs.DOCS_CSP}

    async def after_request(response: Response) -> Response:  # type: ignore[type-arg]
        # The only HTML the node serves is the API docs page, whose scripts are its own files.
        response.headers.update(docs if response.media_type == "text/html" else headers)
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
    replication: ReplicationSupervisor | None = None,
    feed: streams.LogFeed | None = None,
) -> Litestar:
    """Build the app around an opened node; ``rate_limits`` None: no limits (tests, tools)."""

    log_redaction.install()  # before the server logs its first request line
    writer = GroupCommit(node.append)
    standing = MemberStanding(node.store, node.node_did)
    node.append.add_commit_listener(standing.forget)
    stream_slots = StreamSlots(node.settings.max_streams_per_did, node.settings.max_streams)

    @contextlib.asynccontextmanager
    async def background(app: Litestar) -> AsyncIterator[None]:
        writer.start()
        task = asyncio.create_task(_checkpoint_loop(schedule)) if schedule else None
        interval = node.settings.duties_interval_s
        duties = asyncio.create_task(_duties_loop(node, app.state.feed, interval))
        try:
            yield
        finally:
            await asyncio.to_thread(writer.stop)
            node.append.remove_commit_listener(standing.forget)
            for t in (task, duties):
                if t:
                    t.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await t

    return Litestar(
        route_handlers=[
            health,
            ready,
            *auth.ROUTES,
            *events.ROUTES,
            *log_reads.ROUTES,
            *ledger_reads.ROUTES,
            *streams.ROUTES,
        ],
        state=State(
            {
                "node": node,
                "started": time.monotonic(),
                "version": version("icn"),
                "challenges": ChallengeBook(int(challenge_ttl_s * 1000)),
                "tokens": Tokens(jwt_secret, node.node_did),
                "standing": standing,
                "stream_slots": stream_slots,
                "writer": writer,
                "feed": feed or streams.LogFeed(node.store),
                "replication": replication,
            }
        ),
        lifespan=[background, *([replication.lifespan] if replication else [])],
        # Rate limits first (a flood is refused before its body is read), then the body's shape.
        middleware=[
            *([rate_limits] if rate_limits else []),
            DefineMiddleware(StreamCaps, slots=stream_slots),
            DefineMiddleware(JsonShapeGuard, max_bytes=MAX_BODY_BYTES),
        ],
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        request_max_body_size=MAX_BODY_BYTES,
        after_request=_security_headers(behind_tls),
        cors_config=CORSConfig(allow_origins=cors_origins) if cors_origins else None,
        openapi_config=api_docs.DocsConfig(
            title="ICN node API",
            version=version("icn"),
            path="/schema",
            render_plugins=[api_docs.LocalRedoc()],
            components=Components(
                security_schemes={
                    "bearer": SecurityScheme(type="http", scheme="bearer", bearer_format="JWT")
                }
            ),
        ),
        debug=False,
    )
