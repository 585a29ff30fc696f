"""The HTTP side of telemetry: a server span and a duration per request, ``GET /metrics``,
and the gauges' sources (what ``/v1/ready``, the stream slots and the log already know).

See :mod:`icn.infrastructure.telemetry` for the instruments and ``docs/operations.md``
for what each one means.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from time import perf_counter
from typing import Any

import msgspec
from litestar import Response, get
from litestar.enums import ScopeType
from litestar.handlers import HTTPRouteHandler
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from icn.application.append import CommittedEvent
from icn.infrastructure.replication.numbers import ReplicationReadiness
from icn.infrastructure.settings import METRICS_ON_API
from icn.infrastructure.store.event_store import SqlEventStore
from icn.infrastructure.telemetry import (
    ENV_METRICS_ADDR,
    PROMETHEUS_CONTENT_TYPE,
    TRACER_NAME,
    NodeMetrics,
    Untraced,
    log_format,
    recorded_root,
    root_sampled,
    serve_metrics,
    span_sink,
    tracing,
    uvicorn_log_config,
)
from icn.interfaces.http.stream_caps import StreamSlots

log = logging.getLogger("icn.telemetry")

METRICS_PATH = "/metrics"
UNMATCHED = "unmatched"


class TelemetryMiddleware:
    """The outermost middleware: each HTTP request's duration, by route template, method
    and status, and with a tracer provider its server span (the root of a write's trace).

    The sampler decides at that root: a request it leaves out makes no span below (see
    :class:`~icn.infrastructure.telemetry.Untraced`)."""

    def __init__(self, app: ASGIApp, metrics: NodeMetrics) -> None:
        self.app = app
        self.record = metrics.http_duration.record
        self.tracer = trace.get_tracer(TRACER_NAME) if tracing() else None
        self.sink = span_sink(self.tracer) if self.tracer is not None else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        started = perf_counter()
        status = 500

        async def watched(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        if self.tracer is None:
            try:
                await self.app(scope, receive, watched)
            finally:
                self.record(
                    perf_counter() - started,
                    (scope.get("path_template") or UNMATCHED, scope["method"], str(status)),
                )
            return
        route = str(scope.get("path_template") or UNMATCHED)
        method = str(scope.get("method", "GET"))
        if not root_sampled():  # left out: no span here, and none below (Untraced)
            try:
                with Untraced():
                    await self.app(scope, receive, watched)
            finally:
                self.record(perf_counter() - started, (route, method, str(status)))
            return
        attributes: dict[str, str | int] = {"http.request.method": method, "http.route": route}
        root = (
            recorded_root(self.sink, f"{method} {route}", attributes, SpanKind.SERVER)
            if self.sink is not None
            else None
        )
        if root is not None:  # made here, not by the SDK (the sampler records every root)
            try:
                with root:
                    try:
                        await self.app(scope, receive, watched)
                    finally:
                        attributes["http.response.status_code"] = status
                        root.failed = status >= 500
            finally:
                self.record(perf_counter() - started, (route, method, str(status)))
            return
        span = self.tracer.start_span(
            f"{method} {route}",
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "http.route": route},
        )
        untraced = None if span.is_recording() else Untraced()
        try:
            if untraced is not None:
                with untraced:
                    await self.app(scope, receive, watched)
            else:
                with trace.use_span(span, record_exception=False):
                    await self.app(scope, receive, watched)
        finally:
            if untraced is None:
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))
                span.end()
            self.record(perf_counter() - started, (route, method, str(status)))


def metrics_route(metrics: NodeMetrics) -> HTTPRouteHandler:
    """``GET /metrics``: the figures in Prometheus text format (a thread: gauges read the
    store). No token, and no rate limit (the scraper is the operator's)."""

    @get(METRICS_PATH, sync_to_thread=True, include_in_schema=False)
    def read_metrics() -> Response[bytes]:
        return Response(metrics.render(), media_type=PROMETHEUS_CONTENT_TYPE)

    return read_metrics


def serve_apart(addr: str | None, metrics: NodeMetrics | None) -> Callable[[], None] | None:
    """Start ``GET /metrics``' own listener on ``addr`` (None: it is a route of the API);
    its stop, or None. An address that cannot be bound is a warning, not a failed start:
    a node serves its members without its figures rather than not at all (two nodes on one
    host both on the default address: give each its own ``ICN_METRICS_ADDR``)."""
    if metrics is None or addr is None:
        return None
    try:
        return serve_metrics(addr, metrics)
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        log.warning(
            "GET /metrics is not served: cannot listen on %s (%s); set %s to a free"
            " host:port, or to %r to serve it on the API's port",
            addr, reason, ENV_METRICS_ADDR, METRICS_ON_API,
        )  # fmt: skip
        return None


def count_appended(metrics: NodeMetrics) -> Callable[[list[CommittedEvent]], None]:
    """A commit listener counting what each commit appended, by coop and event type."""
    add = metrics.events_appended.add

    def listener(events: list[CommittedEvent]) -> None:
        if len(events) == 1:
            add((events[0].coop, events[0].event_type))
            return
        by: dict[tuple[str, str], int] = {}
        for e in events:
            by[(e.coop, e.event_type)] = by.get((e.coop, e.event_type), 0) + 1
        for key, n in by.items():
            add(key, n)

    return listener


class _CheckpointTs(msgspec.Struct):
    ts: int


def replication_samples(readiness: ReplicationReadiness | None, name: str) -> dict[str, float]:
    """One replication figure per coop, for a gauge. A coop whose figure is unknown
    (``None``: JetStream's consumer info not in yet) has no sample: a 0 there would tell
    an operator's alert "caught up"."""
    if readiness is None:
        return {}
    figures = ((coop, getattr(numbers, name)) for coop, numbers in readiness.coops.items())
    return {coop: float(v) for coop, v in figures if v is not None}


def watch(
    metrics: NodeMetrics,
    store: SqlEventStore,
    node_did: str,
    clock_ms: Callable[[], int],
    slots: StreamSlots,
    replication: Callable[[], ReplicationReadiness | None] | None,
    checkpoints: bool,
) -> None:
    """Point the gauges at this node's figures (read at each scrape). ``replication``:
    where its numbers are read (the supervisor here, or a writer process's last report);
    ``checkpoints``: whether this node issues checkpoints (here or in its writer)."""

    def replication_figure(name: str) -> Callable[[], dict[str, float]]:
        return lambda: replication_samples(replication() if replication else None, name)

    def quarantined() -> dict[str, float]:
        return {c: float(len(store.quarantined(c))) for c in store.coops()}

    def checkpoint_age() -> dict[str, float]:
        if not checkpoints:
            return {}
        now = clock_ms()
        ages: dict[str, float] = {}
        for coop in store.coops():
            latest = store.latest_checkpoint(coop, node_did)
            entry = store.find(latest.event_id) if latest is not None else None
            if entry is not None:
                ts = msgspec.json.decode(entry.wire, type=_CheckpointTs).ts
                ages[coop] = max(0.0, (now - ts) / 1000)
        return ages

    sources = metrics.sources
    sources.replication_lag = replication_figure("consumer_lag")
    sources.replication_parked = replication_figure("parked")
    sources.quarantined_forks = quarantined
    sources.stream_clients = lambda: {k: float(slots.by_kind[k]) for k in ("stream", "ws")}
    sources.checkpoint_age = checkpoint_age


def node_log_config() -> dict[str, Any]:
    """uvicorn.Config's logging arguments for ``ICN_LOG_FORMAT`` (json: one object a line,
    every logger; text: uvicorn's own config, as before)."""
    config = uvicorn_log_config(log_format())
    return {"log_config": config} if config is not None else {}
