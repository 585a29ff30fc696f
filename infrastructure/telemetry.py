"""Telemetry: traces, metrics and structured logs, with OpenTelemetry.

- Traces: one per write (the HTTP request, its verification, the group commit's judging,
  sequencing, commit and projection, the stream delivery) and one per replicated batch a
  node receives (intake, verify, append). Exported over OTLP/HTTP when
  ``ICN_OTLP_ENDPOINT`` is set; otherwise spans are not even made.
- Metrics: the node's instruments (:class:`NodeMetrics`), read in Prometheus text format
  at ``GET /metrics`` on ``ICN_METRICS_ADDR`` (loopback by default, apart from the API).
- Logs: ``ICN_LOG_FORMAT=json|text``; JSON lines carry the current trace and span ids.

``ICN_TELEMETRY=off`` turns the traces and metrics off (the cost benchmark's "off").

What a write pays is kept to plain Python: a counter is a dict entry under a lock, a
histogram a bucket increment (an OpenTelemetry SDK ``record`` with attributes cost ~18 µs,
a tenth of the 5 % budget of a single post each); the SDK reads the counters at each scrape.
Without a tracer provider no span is made; a write the sampler leaves out is decided once,
at its root, and makes no span below it (a context variable says so, ~0.1 µs a check).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import sys
import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from contextvars import ContextVar, Token
from dataclasses import dataclass
from random import getrandbits, random
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
)
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from icn.application.ports import SpanAttributes
from icn.infrastructure.settings import DEFAULT_METRICS_ADDR, METRICS_ON_API

ENV_TELEMETRY = "ICN_TELEMETRY"
ENV_OTLP_ENDPOINT = "ICN_OTLP_ENDPOINT"
ENV_METRICS_ADDR = "ICN_METRICS_ADDR"
ENV_LOG_FORMAT = "ICN_LOG_FORMAT"
ENV_TRACE_SAMPLE = "ICN_TRACE_SAMPLE"
DEFAULT_TRACE_SAMPLE = 0.05
"""Traced writes when ``ICN_TRACE_SAMPLE`` is not set. A recorded write's eight spans cost
~0.24 ms of CPU (eight spans made by :class:`_Recorded`, the batch processor and the OTLP
encoding, ~16 µs a span of it; bench/telemetry_calls.py, 2026-12-04: was 0.6 ms with SDK
spans throughout, 0.3 with an SDK server span), a write left out ~4 µs: one write in
twenty comes to ~1.3 % of a single post by the calls alone (issue 16's budget: 5 %;
docs/operations.md, Cost)."""
TRACER_NAME = "icn"
PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

SECONDS_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
GROUP_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000)


def enabled() -> bool:
    """Traces and metrics are on unless ``ICN_TELEMETRY`` says off (0, off, false, no)."""
    return os.environ.get(ENV_TELEMETRY, "on").strip().lower() not in ("0", "off", "false", "no")


def metrics_addr() -> str | None:
    """Where ``GET /metrics`` is served: ``host:port`` of a listener of its own
    (``ICN_METRICS_ADDR``, loopback by default), or None: a route of the API
    (``ICN_METRICS_ADDR=api``, which exposes coop names and counts to whoever reaches it)."""
    addr = os.environ.get(ENV_METRICS_ADDR, "").strip() or DEFAULT_METRICS_ADDR
    return None if addr.lower() == METRICS_ON_API else addr


# -- traces ------------------------------------------------------------------------------------


_NO_SPAN: AbstractContextManager[object] = contextlib.nullcontext()

_untraced: ContextVar[bool] = ContextVar("icn_untraced", default=False)
"""True inside a write the sampler left out: no span is made below its root."""


class _Unsampled:
    """What :meth:`OtelTelemetry.current` hands another thread for a write left out."""

    def __repr__(self) -> str:
        return "UNSAMPLED"


UNSAMPLED: object = _Unsampled()


class Untraced:
    """A block in which no span is made: the rest of a write its root's sampler left out
    (in the request's task, or in the writer thread that carries it on)."""

    __slots__ = ("_token",)

    def __init__(self) -> None:
        self._token: Token[bool] | None = None

    def __enter__(self) -> None:
        self._token = _untraced.set(True)

    def __exit__(self, *_: object) -> None:
        if self._token is not None:
            _untraced.reset(self._token)


_root_share = 1.0
"""The share of roots :func:`root_sampled` lets through to the tracer: the ratio of
``ICN_TRACE_SAMPLE`` once :func:`setup_tracing` installed its sampler (which then records
every root it is asked about), else 1 (another sampler, a test's provider: it decides)."""


def root_sampled() -> bool:
    """Whether a new trace (a request, a replicated batch, a local write) is recorded:
    decided here, before any span is made, so a root left out costs a random number rather
    than the SDK's span start, sampler and non-recording span (~5 µs of a single post)."""
    return _root_share >= 1.0 or random() < _root_share


def tracing() -> bool:
    """True when a real tracer provider is installed (:func:`setup_tracing`, or a test's)."""
    return isinstance(trace.get_tracer_provider(), TracerProvider)


class Measures:
    """:class:`icn.application.ports.Telemetry` without traces (no tracer provider): the
    measures only; every span is the same do-nothing block."""

    def __init__(self, metrics: NodeMetrics | None = None) -> None:
        self._metrics = metrics

    def span(
        self,
        name: str,
        attributes: SpanAttributes | None = None,
        *,
        parent: object = None,
        links: Sequence[object] = (),
    ) -> AbstractContextManager[object]:
        return _NO_SPAN

    def current(self) -> object:
        return None

    def verified(self, seconds: float, events: int) -> None:
        if self._metrics is not None:
            self._metrics.verify_seconds.record(seconds)

    def grouped(self, events: int) -> None:
        if self._metrics is not None:
            self._metrics.group_commit_events.record(events)

    def refused(self, coop: str, code: str, count: int = 1) -> None:
        if self._metrics is not None:
            self._metrics.events_refused.add((coop, code), count)


class OtelTelemetry(Measures):
    """:class:`icn.application.ports.Telemetry` with OpenTelemetry spans, from the global
    tracer provider (:func:`setup_tracing`, or a test's).

    The sampler decides once per trace, at its root; a trace it leaves out costs its root's
    non-recording span and nothing below it. Below a recorded root every span is recorded
    too (the parent-based sampling the provider does anyway), so those spans skip the SDK's
    span machinery (the sampler, locks, attribute cleaning, per-span bookkeeping): each is a
    :class:`_Recorded` block that hands one finished ``ReadableSpan`` to the provider's span
    processors, for about a quarter of an SDK span's CPU (bench/telemetry_calls.py)."""

    def __init__(self, metrics: NodeMetrics | None = None) -> None:
        super().__init__(metrics)
        self._tracer = trace.get_tracer(TRACER_NAME)
        self._sink = _SpanSink.of(self._tracer)

    def span(
        self,
        name: str,
        attributes: SpanAttributes | None = None,
        *,
        parent: object = None,
        links: Sequence[object] = (),
    ) -> AbstractContextManager[object]:
        if parent is None and not links:
            if _untraced.get():
                return _NO_SPAN
            above = trace.get_current_span().get_span_context()
            if above.is_valid and above.trace_flags.sampled and self._sink is not None:
                return _Recorded(self._sink, name, attributes, above, ())
            return self._start(name, attributes, None, ())
        if parent is UNSAMPLED and (not links or all(t is UNSAMPLED for t in links)):
            # The usual write, and a group of them, the sampler left out: in the request's
            # own task the middleware's block already holds (nothing to set again); in the
            # writer thread a block of its own.
            return _NO_SPAN if _untraced.get() else Untraced()
        traces = [t for t in (parent, *links) if t is not None]
        contexts = [t for t in traces if isinstance(t, Context)]
        live = [
            s
            for s in (trace.get_current_span(c).get_span_context() for c in contexts)
            if s.is_valid
        ]
        if not live:
            if UNSAMPLED in traces:
                return Untraced()
            return self._start(name, attributes, contexts[0] if contexts else None, ())
        # Several writes in one group commit: the first traced one's trace holds the span,
        # and the span links to the others' (each of their traces shows where it was written).
        linked = [Link(s) for s in live[1:]]
        if live[0].trace_flags.sampled and self._sink is not None:
            return _Recorded(self._sink, name, attributes, live[0], linked)
        return self._start(name, attributes, trace.set_span_in_context(NonRecordingSpan(live[0])),
                           linked)  # fmt: skip

    def _start(
        self,
        name: str,
        attributes: SpanAttributes | None,
        context: Context | None,
        links: Sequence[Link],
    ) -> AbstractContextManager[object]:
        if context is None and not links and not root_sampled():
            return Untraced()
        span = self._tracer.start_span(name, context=context, attributes=attributes, links=links)
        if not span.is_recording():  # left out by the sampler: so is everything below
            return Untraced()
        return trace.use_span(span, end_on_exit=True)

    def current(self) -> object:
        return UNSAMPLED if _untraced.get() else otel_context.get_current()


@dataclass(frozen=True)
class _SpanSink:
    """Where a recorded span goes: the SDK tracer's span processors, with its resource and
    instrumentation scope (what its own spans carry)."""

    processor: SpanProcessor
    resource: Resource
    scope: InstrumentationScope | None
    records_roots: bool = False
    """The tracer's sampler records every root it is asked about (``ALWAYS_ON``, or parent
    based on it: what :func:`setup_tracing` installs, the SDK's default): a root may then
    be made here too (:meth:`_Recorded.root`)."""

    @classmethod
    def of(cls, tracer: object) -> _SpanSink | None:
        """The sink of an SDK tracer; None for any other (its spans are made by it)."""
        processor = getattr(tracer, "span_processor", None)
        resource = getattr(tracer, "resource", None)
        if not isinstance(processor, SpanProcessor) or not isinstance(resource, Resource):
            return None
        scope = getattr(tracer, "_instrumentation_scope", None)
        sampler = getattr(tracer, "sampler", None)
        roots = sampler is ALWAYS_ON or (
            isinstance(sampler, ParentBased) and getattr(sampler, "_root", None) is ALWAYS_ON
        )
        scope = scope if isinstance(scope, InstrumentationScope) else None
        return cls(processor, resource, scope, roots)


class _Recorded:
    """A span under a recorded parent: while open, the current span of its thread (a
    non-recording handle, so that log lines and the spans below name it); when closed, one
    ``ReadableSpan`` for the span processors. An exception that leaves it is recorded as
    the SDK records it (an ``exception`` event, status ERROR)."""

    __slots__ = (
        "_attributes",
        "_context",
        "_kind",
        "_links",
        "_name",
        "_parent",
        "_sink",
        "_start",
        "_token",
        "failed",
    )  # fmt: skip

    def __init__(
        self,
        sink: _SpanSink,
        name: str,
        attributes: SpanAttributes | None,
        parent: SpanContext | None,
        links: Sequence[Link],
        kind: SpanKind = SpanKind.INTERNAL,
    ) -> None:
        self._sink, self._name, self._parent, self._links = sink, name, parent, links
        self._attributes = attributes
        self._kind = kind
        if parent is None:  # a root: a trace of its own
            self._context = SpanContext(
                getrandbits(128) or 1, getrandbits(64) or 1, False, _SAMPLED
            )
        else:
            self._context = SpanContext(
                parent.trace_id, getrandbits(64) or 1, False, parent.trace_flags,
                parent.trace_state,
            )  # fmt: skip
        self._start = 0
        self._token: Token[Context] | None = None
        self.failed = False
        """Set before the block ends: status ERROR though no exception left it (an HTTP 5xx)."""

    @classmethod
    def root(
        cls, sink: _SpanSink, name: str, attributes: dict[str, str | int], kind: SpanKind
    ) -> _Recorded | None:
        """A recorded root made here, without the SDK's span start (its sampler, locks and
        attribute cleaning: ~15 µs of a traced request), when the sampler would record it
        anyway; else None (the tracer decides). ``attributes`` may be added to until the
        block ends."""
        return cls(sink, name, attributes, None, (), kind) if sink.records_roots else None

    def __enter__(self) -> object:
        self._start = time.time_ns()
        span = NonRecordingSpan(self._context)
        self._token = otel_context.attach(trace.set_span_in_context(span))
        return span

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, _: object
    ) -> None:
        end = time.time_ns()
        if self._token is not None:
            otel_context.detach(self._token)
        status: Status = _ERROR if self.failed else _OK
        events: tuple[Event, ...] = ()
        if exc is not None and kind is not None:
            status = Status(StatusCode.ERROR, f"{kind.__name__}: {exc}")
            if self._kind is not SpanKind.SERVER:  # a server span names only its status
                events = (
                    Event("exception", {"exception.type": kind.__qualname__,
                                        "exception.message": str(exc)}, end),
                )  # fmt: skip
        sink = self._sink
        sink.processor.on_end(
            ReadableSpan(
                self._name, self._context, self._parent, sink.resource,
                dict(self._attributes) if self._attributes else None, events, self._links,
                kind=self._kind, status=status, start_time=self._start, end_time=end,
                instrumentation_scope=sink.scope,
            )
        )  # fmt: skip


_OK = Status(StatusCode.UNSET)
_ERROR = Status(StatusCode.ERROR)
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)


def span_sink(tracer: object) -> _SpanSink | None:
    """Where spans made without the SDK's span machinery go, for ``tracer``; None when it is
    not an SDK tracer (its spans are then made by it)."""
    return _SpanSink.of(tracer)


def recorded_root(
    sink: _SpanSink, name: str, attributes: dict[str, str | int], kind: SpanKind
) -> _Recorded | None:
    """A recorded root span (a trace of its own) made without the SDK's span start, or None
    when the tracer's sampler must decide (see :meth:`_Recorded.root`)."""
    return _Recorded.root(sink, name, attributes, kind)


def node_telemetry(metrics: NodeMetrics | None) -> Measures:
    """The node's telemetry: with spans when a tracer provider is installed, else the
    measures alone (a span call then costs a constant's return)."""
    return OtelTelemetry(metrics) if tracing() else Measures(metrics)


class _HashedResource(Resource):
    """A resource hashed once. The OTLP encoder groups every span it exports by resource,
    and ``Resource.__hash__`` serializes the attributes to JSON on each call: ~17 % of the
    encoding's CPU (bench/telemetry_writes.py, 2026-12-04). A resource never changes."""

    def __init__(self, attributes: Any, schema_url: str | None = None) -> None:
        super().__init__(attributes, schema_url)
        self._hash = super().__hash__()

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return self is other or super().__eq__(other)


def node_resource(service: str) -> Resource:
    """The resource every span of the node carries (``service.name``, the SDK's own)."""
    created = Resource.create({"service.name": service})
    return _HashedResource(created.attributes, created.schema_url)


_tracing_lock = threading.Lock()
_tracing_set = False
"""Set once :func:`setup_tracing` installed the provider."""


def setup_tracing(
    endpoint: str | None = None, exporter: SpanExporter | None = None, service: str = "icn-node"
) -> bool:
    """Install the process's tracer provider once: spans exported over OTLP/HTTP to
    ``endpoint`` (``ICN_OTLP_ENDPOINT`` when None), or to ``exporter``. Nothing is installed
    (and no span made) when neither is given. True when a provider was installed."""
    global _tracing_set, _root_share
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
        ratio = _sample_ratio()
        # Roots are chosen by root_sampled() at that ratio before the tracer is asked; what
        # it is asked about it records, and below a root its decision holds (ParentBased).
        sampler = None if ratio is None else ParentBased(ALWAYS_ON)
        provider = TracerProvider(resource=node_resource(service), sampler=sampler)
        provider.add_span_processor(BatchSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        _root_share = 1.0 if ratio is None else ratio
        _tracing_set = True
        return True


def _sample_ratio() -> float | None:
    """The share of writes traced: ``ICN_TRACE_SAMPLE`` (a ratio, 1: every one), unless the
    standard ``OTEL_TRACES_SAMPLER`` names a sampler (None: the SDK reads it, and decides)."""
    if os.environ.get("OTEL_TRACES_SAMPLER"):
        return None
    raw = os.environ.get(ENV_TRACE_SAMPLE, "").strip()
    try:
        return min(1.0, max(0.0, float(raw))) if raw else DEFAULT_TRACE_SAMPLE
    except ValueError:
        raise ValueError(f"{ENV_TRACE_SAMPLE} must be a ratio from 0 to 1, not {raw!r}") from None


# -- metrics -----------------------------------------------------------------------------------


class Counts:
    """A counter by label values, in a plain dict: an increment is ~0.3 µs where the SDK's
    ``Counter.add`` with attributes was ~7 µs. Read by an observable counter at each scrape."""

    def __init__(self, labels: tuple[str, ...]) -> None:
        self.labels = labels
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, ...], int] = {}

    def add(self, values: tuple[str, ...], amount: int = 1) -> None:
        """Count ``amount`` more for the label ``values`` (in :attr:`labels`' order)."""
        with self._lock:
            self._counts[values] = self._counts.get(values, 0) + amount

    def totals(self) -> dict[tuple[str, ...], int]:
        """Every label set's count so far."""
        with self._lock:
            return dict(self._counts)

    def take(self) -> dict[tuple[str, ...], int]:
        """The counts since the last take, and start again from zero: what a writer process
        hands its serving process, which adds them to its own (:meth:`add`)."""
        with self._lock:
            taken, self._counts = self._counts, {}
        return taken

    def observe(self, _: CallbackOptions) -> Iterator[Observation]:
        for values, total in self.totals().items():
            yield Observation(total, dict(zip(self.labels, values, strict=True)))


class Histogram:
    """A Prometheus histogram by label values: per label set, a count per bucket and the
    sum. A record is a bisection and two increments (~1 µs; the SDK's ``record`` with
    attributes was ~18 µs, and OpenTelemetry has no observable histogram to read at scrape)."""

    def __init__(
        self, name: str, description: str, labels: tuple[str, ...], bounds: Sequence[float]
    ) -> None:
        self.name, self.description, self.labels = name, description, labels
        self._bounds = tuple(bounds)
        self._lock = threading.Lock()
        self._series: dict[tuple[str, ...], list[float]] = {}
        """Per label set: a count per bucket (the last is +Inf's), then the sum."""

    def record(self, value: float, values: tuple[str, ...] = ()) -> None:
        """One observation of ``value`` for the label ``values``."""
        i = bisect_left(self._bounds, value)
        with self._lock:
            series = self._series.get(values)
            if series is None:
                series = self._series[values] = [0] * (len(self._bounds) + 2)
            series[i] += 1
            series[-1] += value

    def take(self) -> dict[tuple[str, ...], list[float]]:
        """The observations since the last take (per label set: a count per bucket, then
        the sum), and start again from none: what a writer process hands its serving
        process, which adds them to its own (:meth:`merge`)."""
        with self._lock:
            taken, self._series = self._series, {}
        return taken

    def merge(self, taken: dict[tuple[str, ...], list[float]]) -> None:
        """Add what another process's histogram of the same buckets took."""
        with self._lock:
            for values, counts in taken.items():
                series = self._series.get(values)
                if series is None:
                    self._series[values] = list(counts)
                else:
                    for i, n in enumerate(counts):
                        series[i] += n

    def family(self) -> HistogramMetricFamily:
        """The histogram as prometheus_client renders it (cumulative buckets)."""
        with self._lock:
            series = {k: list(v) for k, v in self._series.items()}
        family = HistogramMetricFamily(self.name, self.description, labels=self.labels)
        edges = [str(b) for b in self._bounds] + ["+Inf"]
        for values, counts in sorted(series.items()):
            running, buckets = 0.0, []
            for edge, n in zip(edges, counts[:-1], strict=True):
                running += n
                buckets.append((edge, running))
            family.add_metric(list(values), buckets, counts[-1])
        return family


class _Histograms(Collector):
    """The histograms, for the registry the Prometheus reader renders into."""

    def __init__(self, histograms: Sequence[Histogram]) -> None:
        self._histograms = histograms

    def collect(self) -> Iterable[Metric]:
        return [h.family() for h in self._histograms]


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

    Counters and histograms are counted where things happen, in plain Python; the
    OpenTelemetry meter provider reads the counters and the gauges (from :attr:`sources`)
    at each scrape, so between scrapes the SDK does nothing."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._reader = PrometheusMetricReader(
            disable_target_info=True, scope_info_enabled=False, registry=self.registry
        )
        self._provider = MeterProvider(metric_readers=[self._reader])
        meter = self._provider.get_meter("icn")
        self.sources = GaugeSources()
        self.events_appended = Counts(("coop", "type"))
        self.events_refused = Counts(("coop", "code"))
        self.rate_limited = Counts(("bucket",))
        counters = [
            ("icn_events_appended", self.events_appended,
             "Events appended to a coop's log, by event type"),
            ("icn_events_refused", self.events_refused,
             "Events refused (posts, replicated events, local writes), by refusal code"),
            ("icn_rate_limited", self.rate_limited, "Requests refused by a rate limit, by bucket"),
        ]  # fmt: skip
        for name, counts, description in counters:
            meter.create_observable_counter(
                name, callbacks=[counts.observe], description=description
            )
        self.http_duration = Histogram(
            "icn_http_request_duration_seconds",
            "HTTP request duration, by route template, method and status",
            ("route", "method", "status"),
            SECONDS_BUCKETS,
        )
        self.verify_seconds = Histogram(
            "icn_verify_seconds",
            "Time of the stateless checks (decode, id, signature) of one body "
            "or one replicated batch",
            (),
            SECONDS_BUCKETS,
        )
        self.group_commit_events = Histogram(
            "icn_group_commit_events", "Events written by one group commit", (), GROUP_BUCKETS
        )
        self.registry.register(
            _Histograms([self.http_duration, self.verify_seconds, self.group_commit_events])
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
    """Serve ``GET /metrics`` on ``host:port`` in a thread of its own; returns its stop.
    Raises :class:`OSError` when the address cannot be bound."""
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

    host = host.strip("[]") or "127.0.0.1"

    class Server(ThreadingHTTPServer):
        address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        daemon_threads = True

    server = Server((host, int(port)), Handler)
    bound = server.server_address
    logging.getLogger("icn.telemetry").info("GET /metrics served on %s:%s", bound[0], bound[1])
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
