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
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib.metadata import version
from typing import Any

from litestar import Litestar, Response, Router
from litestar.config.cors import CORSConfig
from litestar.di import Provide
from litestar.middleware import DefineMiddleware
from litestar.openapi.spec import Components, SecurityScheme

from icn.application.append import CommittedEvent
from icn.application.checkpoint_schedule import CheckpointSchedule
from icn.application.group_commit import GroupCommit, Writer
from icn.infrastructure import telemetry
from icn.infrastructure.replication.supervisor import ReplicationSupervisor
from icn.infrastructure.settings import MAX_BODY_BYTES
from icn.infrastructure.store.trust_reads import SqlTrustReads
from icn.interfaces.bootstrap import Node
from icn.interfaces.http import api_docs, log_redaction, streams
from icn.interfaces.http import telemetry as http_telemetry
from icn.interfaces.http.auth import AuthController, ChallengeBook, Tokens
from icn.interfaces.http.caller_classes import CallerClasses
from icn.interfaces.http.compute import ComputeController
from icn.interfaces.http.contracts import ContractsController
from icn.interfaces.http.dashboard import serve as dashboard
from icn.interfaces.http.dependencies import ReplicationStatus, Services
from icn.interfaces.http.events import EventsController
from icn.interfaces.http.gate import Gate, provide_principal
from icn.interfaces.http.governance import GovernanceController
from icn.interfaces.http.json_guard import JsonShapeGuard
from icn.interfaces.http.ledger_reads import LedgerController
from icn.interfaces.http.log_feed import LogFeed
from icn.interfaces.http.log_reads import LogController
from icn.interfaces.http.ops import OpsController
from icn.interfaces.http.problems import EXCEPTION_HANDLERS
from icn.interfaces.http.query_names import QueryGuard
from icn.interfaces.http.rate_limit import RateLimitMiddleware, RateLimits
from icn.interfaces.http.standing import MemberStanding
from icn.interfaces.http.stream_caps import StreamCaps, StreamSlots
from icn.interfaces.http.trust import TrustController, TrustDutyController
from icn.interfaces.module_peers import ModulePeers, WriterPeers, share_loop
from icn.interfaces.node_duties import checkpoint_loop, duties_loop
from icn.interfaces.writer_process import WriterProcess

log = logging.getLogger("icn.node")
TICK_S = 1.0

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def _security_headers(hsts: bool) -> Callable[[Response[Any]], Awaitable[Response[Any]]]:
    """The after-request hook setting the node's security headers (HSTS behind TLS)."""
    headers = dict(SECURITY_HEADERS)
    if hsts:
        headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"

    # async on purpose: Litestar runs a plain-function hook in a worker thread, which was
    # a thread hop on every request (a tenth of the event loop's time under load).
    docs = {**headers, "Content-Security-Policy": api_docs.DOCS_CSP}

    async def after_request(response: Response[Any]) -> Response[Any]:
        # HTML is the API docs page (its scripts are its own files) or the dashboard, which
        # sets its own, stricter CSP (dashboard.serve.DASHBOARD_CSP): a route's own CSP stays.
        own = response.headers.get("Content-Security-Policy")
        response.headers.update(docs if response.media_type == "text/html" else headers)
        if own:
            response.headers["Content-Security-Policy"] = own
        return response

    return after_request


def _rate_limited(metrics: telemetry.NodeMetrics | None) -> Callable[[str], None] | None:
    """What counts a refused request in ``icn_rate_limited_total``, by bucket."""
    if metrics is None:
        return None
    add = metrics.rate_limited.add
    return lambda bucket: add((bucket,))


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
    feed: LogFeed | None = None,
    writer: Writer | None = None,
) -> Litestar:
    """Build the app around an opened node; ``rate_limits`` None: no limits (tests, tools).

    ``feed``: the one live streams wait on, when the caller wired it to other writers
    (``bootstrap.build_node`` has replication notify it); else the app makes its own.
    ``writer``: a writer process (``bootstrap.build_node(writer_process=True)``), which
    then also runs the checkpoints, the duties and replication; the app starts and stops
    it, and its commits wake the live streams. None: a writer thread in this process."""

    log_redaction.install()  # before the server logs its first request line
    standing = MemberStanding(node.store, node.node_did)
    node.append.add_commit_listener(standing.forget)
    tokens = Tokens(jwt_secret, node.node_did)
    services = Services(
        node=node,
        tokens=tokens,
        challenges=ChallengeBook(int(challenge_ttl_s * 1000)),
        gate=Gate(tokens, standing),
        writer=writer if writer is not None else GroupCommit(node.append),
        feed=feed if feed is not None else LogFeed(node.store),
        replication=replication,
        peers=(
            ModulePeers(replication)
            if replication is not None
            else WriterPeers(writer)
            if isinstance(writer, WriterProcess) and writer.replicates
            else None
        ),
        replication_status=ReplicationStatus(
            replication.readiness
            if replication is not None
            else writer.readiness
            if isinstance(writer, WriterProcess)
            else None
        ),
        projected_by_writer=isinstance(writer, WriterProcess),
    )
    node.append.add_commit_listener(services.trust.forget)
    node.append.add_commit_listener(services.governance.heard)
    classes = CallerClasses(SqlTrustReads(node.store.engine))  # the rate limits' trust classes
    node.append.add_commit_listener(classes.forget)
    stream_slots = StreamSlots(node.settings.max_streams_per_did, node.settings.max_streams)
    # Telemetry (ICN_TELEMETRY=off: none): spans of each write, the instruments, /metrics.
    metrics = telemetry.node_metrics() if telemetry.enabled() else None
    metrics_addr = telemetry.metrics_addr()  # None: on the API's port (ICN_METRICS_ADDR=api)
    if metrics is not None:
        telemetry.setup_tracing()  # exported only when ICN_OTLP_ENDPOINT is set
        node.append.telemetry = telemetry.node_telemetry(metrics)
        appended = http_telemetry.count_appended(metrics)
        node.append.add_commit_listener(appended)  # a writer process's commits too
        checkpoints = schedule is not None
        if isinstance(writer, WriterProcess):  # its figures are added to this process's
            writer.metrics = metrics
            checkpoints = writer.checkpoints
        http_telemetry.watch(
            metrics, node.store, node.node_did, node.clock_ms, stream_slots,
            services.replication_status.readiness, checkpoints,
        )  # fmt: skip

    writes_here = writer is None

    @contextlib.asynccontextmanager
    async def background(_: Litestar) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()

        def wake_streams(events: list[CommittedEvent]) -> None:
            """In the writer's answers thread: the live streams of these coops read again."""
            for coop in dict.fromkeys(e.coop for e in events):
                with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                    loop.call_soon_threadsafe(services.feed.notify, coop)

        if not writes_here:  # replication, the duties and the writes' own notices
            node.append.add_commit_listener(wake_streams)
        await asyncio.to_thread(services.writer.start)
        stop_metrics = http_telemetry.serve_apart(metrics_addr, metrics)
        task = asyncio.create_task(checkpoint_loop(schedule)) if schedule else None
        interval = node.settings.duties_interval_s
        duties = (
            asyncio.create_task(duties_loop(node, services.feed, interval)) if writes_here else None
        )
        # module bytes kept here that the coops' buckets lack (docs/compute.md); with a
        # writer process its replication holds the NATS link, and it shares them
        sharing = asyncio.create_task(share_loop(node, replication)) if replication else None
        try:
            yield
        finally:
            await asyncio.to_thread(services.writer.stop)
            node.append.remove_commit_listener(wake_streams)
            node.append.remove_commit_listener(standing.forget)
            node.append.remove_commit_listener(services.trust.forget)
            node.append.remove_commit_listener(services.governance.heard)
            node.append.remove_commit_listener(classes.forget)
            if metrics is not None:
                node.append.remove_commit_listener(appended)
            if stop_metrics is not None:
                await asyncio.to_thread(stop_metrics)
            for t in (task, duties, sharing):
                if t:
                    t.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await t

    # Every route of a coop but the WebSocket one (which refuses after its handshake).
    coop_routes = Router(
        path="/",
        route_handlers=[
            EventsController,
            LogController,
            LedgerController,
            TrustController,
            TrustDutyController,
            GovernanceController,
            ContractsController,
            ComputeController,
            streams.StreamsController,
        ],
        guards=[services.gate.guard],
        dependencies={"principal": Provide(provide_principal, sync_to_thread=False)},
    )
    query_guard = QueryGuard()
    app = Litestar(
        route_handlers=[
            OpsController,
            AuthController,
            coop_routes,
            streams.ws_stream,
            dashboard.router(),  # the members' dashboard at / (static files; data via the API)
            # /metrics apart from the API (ICN_METRICS_ADDR) unless that says "api"
            *([http_telemetry.metrics_route(metrics)] if metrics and not metrics_addr else []),
        ],
        dependencies=services.dependencies(),
        guards=[query_guard],  # before the coop routes' gate: a misspelt query is the client's
        lifespan=[background, *([replication.lifespan] if replication else [])],
        # Rate limits first (a flood is refused before its body is read), then the body's shape.
        middleware=[
            *(
                [DefineMiddleware(http_telemetry.TelemetryMiddleware, metrics=metrics)]
                if metrics
                else []
            ),
            *(
                [
                    DefineMiddleware(
                        RateLimitMiddleware,
                        limits=rate_limits,
                        tokens=tokens,
                        classes=classes,
                        on_limited=_rate_limited(metrics),
                    )
                ]
                if rate_limits
                else []
            ),
            DefineMiddleware(StreamCaps, slots=stream_slots, tokens=tokens),
            DefineMiddleware(JsonShapeGuard, max_bytes=MAX_BODY_BYTES),
        ],
        exception_handlers=EXCEPTION_HANDLERS,
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
    query_guard.learn(app)
    return app
