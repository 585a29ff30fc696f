"""Telemetry across a process boundary: a write's trace handed to the writer process, and
the writer's measures handed back to the process that serves ``GET /metrics``.

A node whose writer is a process of its own (``icn.interfaces.writer_process``) has one
trace per write and one set of figures, as a node in one process has:

- The trace: the serving process hands each request's trace context down the pipe as a
  W3C ``traceparent`` (or "left out by the sampler"); the writer continues it (the
  checks, the group commit and below), and exports its spans itself, to the same OTLP
  endpoint, as any process of a distributed trace does. Nothing of a span crosses back:
  a collector joins the two processes' spans by their ids, and the writer's log lines
  carry the same trace id.
- The figures: the writer counts and observes as before, into instruments of its own
  that nobody scrapes; before each answer (and every fraction of a second) it takes what
  they gathered since the last take and sends it up, and the serving process adds it to
  its own instruments. So a scrape after a write's answer already counts that write, and
  counters stay counters (only increments travel, never a total that could go back).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

import msgspec
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from icn.infrastructure.telemetry import UNSAMPLED, NodeMetrics, Untraced

LEFT_OUT = "-"
"""A carried trace the sampler left out: nothing below it is recorded in the writer either."""
_TRACEPARENT = "traceparent"
_propagator = TraceContextTextMapPropagator()


def carry(current: object) -> str | None:
    """A picklable form of what ``Telemetry.current()`` returned: a ``traceparent``,
    :data:`LEFT_OUT`, or None (no trace: telemetry off, or no tracer provider)."""
    if current is UNSAMPLED:
        return LEFT_OUT
    if not isinstance(current, Context):
        return None
    if not trace.get_current_span(current).get_span_context().is_valid:
        return None
    carrier: dict[str, str] = {}
    _propagator.inject(carrier, current)
    return carrier.get(_TRACEPARENT)


def resumed(carried: str | None) -> AbstractContextManager[object]:
    """A block in which the calling thread continues the trace :func:`carry` handed over:
    spans made in it (and ``Telemetry.current()`` taken in it) belong to that trace."""
    if carried is None:
        return nullcontext()
    if carried == LEFT_OUT:
        return Untraced()
    return _attached(_propagator.extract({_TRACEPARENT: carried}))


@contextmanager
def _attached(context: Context) -> Iterator[None]:
    token = otel_context.attach(context)
    try:
        yield
    finally:
        otel_context.detach(token)


class MetricDeltas(msgspec.Struct):
    """What a writer process's instruments gathered since its last take."""

    refused: dict[tuple[str, ...], int]
    verify: dict[tuple[str, ...], list[float]]
    grouped: dict[tuple[str, ...], list[float]]


def take_deltas(metrics: NodeMetrics) -> MetricDeltas | None:
    """What the writer's instruments gathered since the last take (None: nothing). The
    writer counts appended events nowhere: its commits reach the serving process, whose
    own commit listener counts them."""
    deltas = MetricDeltas(
        metrics.events_refused.take(),
        metrics.verify_seconds.take(),
        metrics.group_commit_events.take(),
    )
    return deltas if deltas.refused or deltas.verify or deltas.grouped else None


def add_deltas(metrics: NodeMetrics, deltas: MetricDeltas) -> None:
    """Add what a writer process gathered to the serving process's instruments."""
    for values, n in deltas.refused.items():
        metrics.events_refused.add(values, n)
    metrics.verify_seconds.merge(deltas.verify)
    metrics.group_commit_events.merge(deltas.grouped)


def flush_traces() -> None:
    """Export the spans still waiting in this process (a writer process about to exit)."""
    provider = trace.get_tracer_provider()
    flush = getattr(provider, "force_flush", None)
    if callable(flush):
        flush()
