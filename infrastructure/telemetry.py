"""Telemetry: traces, metrics and structured logs, with OpenTelemetry.

- Traces: one per write (the HTTP request, its verification, the group commit's judging,
  sequencing, commit and projection, the stream delivery) and one per replicated batch a
  node receives (intake, verify, append). Exported over OTLP/HTTP when
  ``ICN_OTLP_ENDPOINT`` is set; otherwise spans are not even recorded.
- Metrics: the node's instruments (:class:`NodeMetrics`), read in Prometheus text format
  at ``GET /metrics`` (or on ``ICN_METRICS_ADDR``).
- Logs: ``ICN_LOG_FORMAT=json|text``; JSON lines carry the current trace and span ids.

``ICN_TELEMETRY=off`` turns the traces and metrics off (the cost benchmark's "off").
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, Sampler, TraceIdRatioBased
from prometheus_client import CollectorRegistry, generate_latest

from icn.application.ports import SpanAttributes

ENV_TELEMETRY = "ICN_TELEMETRY"
ENV_OTLP_ENDPOINT = "ICN_OTLP_ENDPOINT"
ENV_METRICS_ADDR = "ICN_METRICS_ADDR"
ENV_LOG_FORMAT = "ICN_LOG_FORMAT"
ENV_TRACE_SAMPLE = "ICN_TRACE_SAMPLE"
DEFAULT_TRACE_SAMPLE = 0.1
"""Traced writes when ``ICN_TRACE_SAMPLE`` is not set: every write's spans cost a single
post about a third of its throughput on a loaded 2-core machine (bench/telemetry.py),
one write in ten keeps the cost within the 5 % budget."""
TRACER_NAME = "icn"
PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

SECONDS_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
GROUP_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000)


def enabled() -> bool:
    """Traces and metrics are on unless ``ICN_TELEMETRY`` says off (0, off, false, no)."""
    return os.environ.get(ENV_TELEMETRY, "on").strip().lower() not in ("0", "off", "false", "no")


# -- traces ------------------------------------------------------------------------------------


_NO_SPAN: AbstractContextManager[object] = contextlib.nullcontext()


def tracing() -> bool:
    """True when a real tracer provider is installed (:func:`setup_tracing`, or a test's)."""
    return isinstance(trace.get_tracer_provider(), TracerProvider)


class OtelTelemetry:
    """:class:`icn.application.ports.Telemetry` with OpenTelemetry: spans from the global
    tracer provider, when one is installed (:func:`setup_tracing`, or a test's).

    Spans cost: without a provider none is made at all, and below a span that was not
    sampled (its trace was left out) no child is made either."""

    def __init__(self, metrics: NodeMetrics | None = None) -> None:
        self._tracer = trace.get_tracer(TRACER_NAME)
        self._metrics = metrics

    def span(
        self, name: str, attributes: SpanAttributes | None = None, *, parent: object = None
    ) -> AbstractContextManager[object]:
        if not _tracing_set and not tracing():
            return _NO_SPAN
        ctx = parent if isinstance(parent, Context) else None
        above = trace.get_current_span(ctx)
        if above.get_span_context().is_valid and not above.is_recording():
            return _NO_SPAN  # a trace left out by the sampler: its children are too
        return self._tracer.start_as_current_span(name, context=ctx, attributes=attributes)

    def current(self) -> object:
        if not _tracing_set and not tracing():
            return None
        return otel_context.get_current()

    def verified(self, seconds: float, events: int) -> None:
        if self._metrics is not None:
            self._metrics.verify_seconds.record(seconds)

    def grouped(self, events: int) -> None:
        if self._metrics is not None:
            self._metrics.group_commit_events.record(events)

    def refused(self, coop: str, code: str) -> None:
        if self._metrics is not None:
            self._metrics.events_refused.add(1, {"coop": coop, "code": code})


_tracing_lock = threading.Lock()
_tracing_set = False
"""Set once :func:`setup_tracing` installed the provider (spares the check per span)."""


def setup_tracing(
    endpoint: str | None = None, exporter: SpanExporter | None = None, service: str = "icn-node"
) -> bool:
    """Install the process's tracer provider once: spans exported over OTLP/HTTP to
    ``endpoint`` (``ICN_OTLP_ENDPOINT`` when None), or to ``exporter``. Nothing is installed
    (and no span recorded) when neither is given. True when a provider was installed."""
    global _tracing_set
    endpoint = endpoint or os.environ.get(ENV_OTLP_ENDPOINT) or None
    if exporter is None and endpoint is None:
        return False
    with _tracing_lock:
        if _tracing_set:
            return False
        if exporter is None:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            url = endpoint if endpoint and endpoint.endswith("/v1/traces") else None
            exporter = OTLPSpanExporter(endpoint=url or f"{str(endpoint).rstrip('/')}/v1/traces")
        provider = TracerProvider(
            resource=Resource.create({"service.name": service}), sampler=_sampler()
        )
        provider.add_span_processor(BatchSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        _tracing_set = True
        return True


def _sampler() -> Sampler | None:
    """Which writes are traced: ``ICN_TRACE_SAMPLE`` (a ratio, 1: every one), unless the
    standard ``OTEL_TRACES_SAMPLER`` names a sampler (None: the SDK reads it)."""
    if os.environ.get("OTEL_TRACES_SAMPLER"):
        return None
    raw = os.environ.get(ENV_TRACE_SAMPLE, "").strip()
    try:
        ratio = min(1.0, max(0.0, float(raw))) if raw else DEFAULT_TRACE_SAMPLE
    except ValueError:
        raise ValueError(f"{ENV_TRACE_SAMPLE} must be a ratio from 0 to 1, not {raw!r}") from None
    return ParentBased(TraceIdRatioBased(ratio))


# -- metrics -----------------------------------------------------------------------------------


@dataclass
class GaugeSources:
    """Where the gauges read their numbers, each a callable answering ``{labels: value}``
    pairs; set by the node that serves (one per process in production)."""

    replication_lag: Callable[[], dict[str, float]] = dict
    replication_parked: Callable[[], dict[str, float]] = dict
    quarantined_forks: Callable[[], dict[str, float]] = dict
    stream_clients: Callable[[], dict[str, float]] = dict
    checkpoint_age: Callable[[], dict[str, float]] = dict


class NodeMetrics:
    """The node's instruments, and their Prometheus text rendering.

    Counters and histograms are recorded where things happen; gauges are read from
    :attr:`sources` at each scrape, so a scrape costs nothing between scrapes."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._reader = PrometheusMetricReader(
            disable_target_info=True, scope_info_enabled=False, registry=self.registry
        )
        seconds = ExplicitBucketHistogramAggregation(SECONDS_BUCKETS)
        views = [
            View(instrument_name="icn_http_request_duration_seconds", aggregation=seconds),
            View(instrument_name="icn_verify_seconds", aggregation=seconds),
            View(
                instrument_name="icn_group_commit_events",
                aggregation=ExplicitBucketHistogramAggregation(GROUP_BUCKETS),
            ),
        ]
        self._provider = MeterProvider(metric_readers=[self._reader], views=views)
        meter = self._provider.get_meter("icn")
        self.sources = GaugeSources()
        self.events_appended = meter.create_counter(
            "icn_events_appended", description="Events appended to a coop's log, by event type"
        )
        self.events_refused = meter.create_counter(
            "icn_events_refused", description="Event posts refused, by refusal code"
        )
        self.rate_limited = meter.create_counter(
            "icn_rate_limited", description="Requests refused by a rate limit, by bucket"
        )
        self.http_duration = meter.create_histogram(
            "icn_http_request_duration_seconds",
            description="HTTP request duration, by route template, method and status",
        )
        self.verify_seconds = meter.create_histogram(
            "icn_verify_seconds",
            description="Time of the stateless checks (decode, id, signature) of one body "
            "or one replicated batch",
        )
        self.group_commit_events = meter.create_histogram(
            "icn_group_commit_events", description="Events written by one group commit"
        )
        gauges: list[tuple[str, str, str, Callable[[], dict[str, float]]]] = [
            ("icn_replication_lag_events", "coop", "Stream messages not yet applied here",
             lambda: self.sources.replication_lag()),
            ("icn_replication_parked", "coop", "Replicated events parked, waiting",
             lambda: self.sources.replication_parked()),
            ("icn_quarantined_forks", "coop", "Fork evidence held in quarantine",
             lambda: self.sources.quarantined_forks()),
            ("icn_stream_clients", "kind", "Live streams open (stream: SSE, ws: WebSocket)",
             lambda: self.sources.stream_clients()),
            ("icn_checkpoint_age_seconds", "coop", "Seconds since this node's last checkpoint",
             lambda: self.sources.checkpoint_age()),
        ]  # fmt: skip
        for name, label, description, read in gauges:
            meter.create_observable_gauge(
                name, callbacks=[_observer(label, read)], description=description
            )

    def render(self) -> bytes:
        """The current figures in Prometheus text exposition format."""
        return generate_latest(self.registry)

    def shutdown(self) -> None:
        """Stop the meter provider (tests that build many)."""
        self._provider.shutdown()


def _observer(
    label: str, read: Callable[[], dict[str, float]]
) -> Callable[[CallbackOptions], Iterable[Observation]]:
    def observe(_: CallbackOptions) -> Iterator[Observation]:
        try:
            figures = read()
        except Exception:  # a scrape must not fail because one source is away
            logging.getLogger("icn.telemetry").debug("gauge source failed", exc_info=True)
            return
        for value, amount in figures.items():
            yield Observation(amount, {label: value})

    return observe


_metrics_lock = threading.Lock()
_metrics: NodeMetrics | None = None


def node_metrics() -> NodeMetrics:
    """The process's instruments (one registry per process, as Prometheus expects)."""
    global _metrics
    with _metrics_lock:
        if _metrics is None:
            _metrics = NodeMetrics()
        return _metrics


def serve_metrics(addr: str, metrics: NodeMetrics) -> Callable[[], None]:
    """Serve ``GET /metrics`` on ``host:port`` in a thread of its own; returns its stop."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    host, _, port = addr.rpartition(":")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?", 1)[0] != "/metrics":
                self.send_error(404)
                return
            body = metrics.render()
            self.send_response(200)
            self.send_header("Content-Type", PROMETHEUS_CONTENT_TYPE)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # no line per scrape
            pass

    server = ThreadingHTTPServer((host.strip("[]") or "127.0.0.1", int(port)), Handler)
    thread = threading.Thread(target=server.serve_forever, name="icn-metrics", daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()

    return stop


# -- logs --------------------------------------------------------------------------------------


class JsonLogFormatter(logging.Formatter):
    """One JSON object a line: ts, level, logger, msg, and trace_id, span_id, coop when
    known. The message is formatted from the (already redacted) record, so the JSON line
    holds nothing the text line would not."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            line["trace_id"] = format(span.trace_id, "032x")
            line["span_id"] = format(span.span_id, "016x")
        coop = getattr(record, "coop", None)
        if isinstance(coop, str):
            line["coop"] = coop
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def log_format() -> str:
    """``json`` or ``text``: ``ICN_LOG_FORMAT``, else JSON unless stderr is a terminal."""
    chosen = os.environ.get(ENV_LOG_FORMAT, "").strip().lower()
    if chosen in ("json", "text"):
        return chosen
    return "text" if sys.stderr.isatty() else "json"


def uvicorn_log_config(fmt: str) -> dict[str, Any] | None:
    """uvicorn's logging config for ``fmt``: None keeps uvicorn's own (text) config."""
    if fmt != "json":
        return None
    json_handler = {"class": "logging.StreamHandler", "formatter": "json",
                    "stream": "ext://sys.stderr"}  # fmt: skip
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": f"{__name__}.JsonLogFormatter"}},
        "handlers": {"json": json_handler},
        "loggers": {
            "uvicorn": {"handlers": ["json"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"level": "INFO"},
            "uvicorn.access": {"handlers": ["json"], "level": "INFO", "propagate": False},
        },
        "root": {"handlers": ["json"], "level": "INFO"},
    }
