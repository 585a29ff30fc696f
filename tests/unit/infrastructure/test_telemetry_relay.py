"""Telemetry across the writer process's pipe: a trace handed down and continued, figures
handed up and added, log lines that carry the trace they were written in.

Spans come from a tracer provider of the test's own (not the process's global one, which
tests/integration/replication/test_telemetry_traces.py installs once with its exporter).
"""

from __future__ import annotations

import json
import logging
import pickle

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from icn.infrastructure.telemetry import UNSAMPLED, NodeMetrics, OtelTelemetry
from icn.infrastructure.telemetry_relay import (
    LEFT_OUT,
    add_deltas,
    carry,
    resumed,
    take_deltas,
)
from icn.interfaces.writer_process import WriterLogFormatter


def test_a_trace_handed_down_is_continued_and_one_left_out_stays_out() -> None:
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("POST /v1/coops/{coop}/events") as request:
        carried = carry(otel_context.get_current())
    sent = request.get_span_context()
    assert isinstance(carried, str) and pickle.loads(pickle.dumps(carried)) == carried
    with resumed(carried):  # in the writer: the request's span is the current one's parent
        here = trace.get_current_span().get_span_context()
        with tracer.start_as_current_span("icn.group_commit") as commit:
            pass
    assert (here.trace_id, here.span_id, here.is_remote) == (sent.trace_id, sent.span_id, True)
    assert commit.parent is not None and commit.parent.span_id == sent.span_id
    assert not trace.get_current_span().get_span_context().is_valid  # detached after
    # Left out by the sampler: so is everything the writer does for it.
    assert carry(UNSAMPLED) == LEFT_OUT
    with resumed(LEFT_OUT):
        assert OtelTelemetry().current() is UNSAMPLED
    # No trace (telemetry off, or no tracer provider): nothing to continue.
    assert carry(None) is None and carry(otel_context.get_current()) is None
    with resumed(None):
        assert not trace.get_current_span().get_span_context().is_valid


def test_the_writers_figures_are_added_to_the_servers_once() -> None:
    writer, server = NodeMetrics(), NodeMetrics()
    try:
        server.events_refused.add(("food-coop", "duplicate"))  # the server's own count
        writer.events_refused.add(("food-coop", "duplicate"), 2)
        writer.events_refused.add(("food-coop", "unknown-member"))
        for seconds in (0.0004, 0.003, 0.2):
            writer.verify_seconds.record(seconds)
        writer.group_commit_events.record(3)
        deltas = take_deltas(writer)
        assert deltas is not None
        add_deltas(server, pickle.loads(pickle.dumps(deltas)))  # as the pipe carries them
        assert take_deltas(writer) is None  # taken: nothing new since
        writer.group_commit_events.record(5)
        later = take_deltas(writer)
        assert later is not None and not later.refused and not later.verify
        add_deltas(server, later)
        assert server.events_refused.totals() == {
            ("food-coop", "duplicate"): 3,
            ("food-coop", "unknown-member"): 1,
        }
        text = server.render().decode()
        assert "icn_verify_seconds_count 3.0" in text
        assert 'icn_verify_seconds_bucket{le="0.0005"} 1.0' in text
        assert 'icn_verify_seconds_bucket{le="0.005"} 2.0' in text
        assert "icn_group_commit_events_count 2.0" in text
        assert "icn_group_commit_events_sum 8.0" in text
    finally:
        writer.shutdown()
        server.shutdown()


def test_the_writers_json_log_lines_carry_the_trace_and_say_whose_they_are() -> None:
    record = logging.LogRecord("icn.replication", logging.INFO, __file__, 1, "x %s", ("y",), None)
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("icn.group_commit") as span:
        line = json.loads(WriterLogFormatter().format(record))
    context = span.get_span_context()
    assert line["process"] == "writer" and line["msg"] == "x y"
    assert line["trace_id"] == format(context.trace_id, "032x")
    assert line["span_id"] == format(context.span_id, "016x")
