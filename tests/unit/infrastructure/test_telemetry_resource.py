"""The node's span resource is hashed once, and is otherwise the resource the SDK makes:
what the OTLP encoder sends for a span carrying it is byte for byte what it sends for the
SDK's own ``Resource`` with the same attributes."""

from __future__ import annotations

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, TraceFlags

from icn.infrastructure.telemetry import node_resource


def _span(resource: Resource, n: int) -> ReadableSpan:
    trace_id = (n + 1) << 64 | 5
    return ReadableSpan(
        "icn.commit",
        SpanContext(trace_id, n + 7, False, TraceFlags(1)),
        SpanContext(trace_id, n + 3, False, TraceFlags(1)),
        resource,
        {"icn.attempt": 0},
        start_time=1,
        end_time=2,
        instrumentation_scope=InstrumentationScope("icn"),
    )


def test_the_node_resource_equals_and_hashes_as_the_sdk_resource_it_copies() -> None:
    resource = node_resource("icn-node")
    same = Resource(dict(resource.attributes), resource.schema_url)
    assert resource.attributes["service.name"] == "icn-node"
    assert resource == same and same == resource
    assert hash(resource) == hash(same)
    assert resource != Resource({"service.name": "another"})


def test_spans_with_the_node_resource_encode_as_with_the_sdk_resource() -> None:
    resource = node_resource("icn-node")
    same = Resource(dict(resource.attributes), resource.schema_url)
    ours = encode_spans([_span(resource, n) for n in range(3)]).SerializeToString()
    sdks = encode_spans([_span(same, n) for n in range(3)]).SerializeToString()
    assert ours == sdks
    assert b"icn-node" in ours
