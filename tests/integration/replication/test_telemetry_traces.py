"""Traces over real HTTP and a real nats-server: the span tree of one post, and of one
replicated batch on the receiving node, recorded by an in-memory span exporter.

Two nodes, each a real uvicorn server in a thread of this process (so the test can hold
the tracer provider), replicating one coop through one nats-server. Alice posts one
payment to node A over HTTP; its trace runs from the HTTP request through verification,
the group commit (judging, sequencing into the coop's stream, the commit, the commit
listeners) to the live streams' notice. Node B receives it: intake, verify, append.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from support.coops import CoopScript, key_for
from support.nodes import bearer, free_port, login

from icn.infrastructure.replication.config import ReplicationConfig
from icn.infrastructure.replication.nats_server import LocalNatsServer
from icn.infrastructure.settings import Settings
from icn.infrastructure.telemetry import UNSAMPLED, JsonLogFormatter, NodeMetrics, OtelTelemetry
from icn.interfaces.bootstrap import build_node, init_node
from icn.interfaces.http.app import create_app
from icn.interfaces.http.telemetry import TelemetryMiddleware

COOP = "trace-coop"
POST_ROUTE = "POST /v1/coops/{coop}/events"

_exporter = InMemorySpanExporter()
_provider_lock = threading.Lock()


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """The process's tracer provider (installed once: OpenTelemetry allows one), exporting
    to memory; emptied before each test."""
    with _provider_lock:
        if not isinstance(trace.get_tracer_provider(), TracerProvider):
            provider = TracerProvider()
            provider.add_span_processor(SimpleSpanProcessor(_exporter))
            trace.set_tracer_provider(provider)
    _exporter.clear()
    yield _exporter
    _exporter.clear()


class Served:
    """A node's app under a real uvicorn server, in a thread."""

    def __init__(self, directory: Path, nats_url: str) -> None:
        settings = Settings(data_dir=directory)
        init_node(settings)
        config = ReplicationConfig(nats=[nats_url], serve=[COOP])
        served = build_node(settings, config=config)
        self.node, self.replication = served.node, served.replication
        app = create_app(
            self.node, None, jwt_secret=b"t" * 32, replication=served.replication,
            feed=served.feed,
        )  # fmt: skip
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", log_config=None)
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "server did not start"
            time.sleep(0.05)

    def log(self) -> list[str]:
        return [e.event_id for e in self.node.store.entries(COOP)]

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.node.close()


def tree(spans: list[ReadableSpan], root: ReadableSpan) -> dict[str, object]:
    """``{name: {child name: ...}}`` below ``root``, in the root's trace."""
    assert root.context is not None
    children = [
        s for s in spans
        if s.parent is not None and s.parent.span_id == root.context.span_id
        and s.context is not None and s.context.trace_id == root.context.trace_id
    ]  # fmt: skip
    return {c.name: tree(spans, c) for c in sorted(children, key=lambda s: s.start_time or 0)}


def wait_for(check: object, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_one_post_and_one_replicated_batch_are_whole_traces(
    tmp_path: Path, nats_server: LocalNatsServer, spans: InMemorySpanExporter,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("ICN_PASSPHRASE", "trace test passphrase, long enough")
    a = Served(tmp_path / "a", nats_server.url)
    b = Served(tmp_path / "b", nats_server.url)
    try:
        s = CoopScript(COOP)
        founded = s.found({"alice": ["admin"], "bob": []})
        assert a.node.append.append([founded.wire_bytes()])[0].stored
        wait_for(lambda: b.log() == [founded.id])
        token = login(a.base, key_for("alice"), COOP)
        spans.clear()

        pay = s.pay("alice", "bob", 5)
        headers = {**bearer(token), "Content-Type": "application/json"}
        r = httpx.post(f"{a.base}/v1/coops/{COOP}/events", content=pay.wire_bytes(),
                       headers=headers)  # fmt: skip
        assert r.status_code == 201, r.text
        wait_for(lambda: b.log() == [founded.id, pay.id])
        # B's batch span ends just after its append; give it that moment.
        wait_for(lambda: any(
            x.name == "icn.replication.batch" and (x.attributes or {}).get("icn.coop") == COOP
            and any(c.name == "icn.append" for c in spans.get_finished_spans()
                    if c.parent is not None and x.context is not None
                    and c.parent.span_id == x.context.span_id)
            for x in spans.get_finished_spans()
        ))  # fmt: skip
        finished = list(spans.get_finished_spans())

        posts = [x for x in finished if x.name == POST_ROUTE]
        assert len(posts) == 1
        post = posts[0]
        assert post.parent is None and post.kind == trace.SpanKind.SERVER
        assert (post.attributes or {})["http.response.status_code"] == 201
        assert (post.attributes or {})["http.route"] == "/v1/coops/{coop}/events"
        assert tree(finished, post) == {
            "icn.verify": {},
            "icn.group_commit": {
                "icn.commit": {"icn.judge": {"icn.sequence": {}}},
                "icn.project": {},
            },
            "icn.deliver": {},
        }
        # Crossed to the writer thread and back: one trace.
        assert post.context is not None
        in_trace = [
            x
            for x in finished
            if x.context is not None and x.context.trace_id == post.context.trace_id
        ]
        assert len(in_trace) == 8

        batches = [
            x for x in finished
            if x.name == "icn.replication.batch" and x.parent is None
            and tree(finished, x).get("icn.append")
        ]  # fmt: skip
        assert batches, [x.name for x in finished]
        assert tree(finished, batches[-1]) == {
            "icn.intake": {},
            "icn.verify": {},
            "icn.append": {"icn.commit": {"icn.judge": {}}, "icn.project": {}},
        }
        assert (batches[-1].attributes or {})["icn.coop"] == COOP
        assert batches[-1].context is not None
        assert batches[-1].context.trace_id != post.context.trace_id  # a trace of its own
    finally:
        b.stop()
        a.stop()


def test_a_group_commit_of_several_posts_links_every_post(
    tmp_path: Path, nats_server: LocalNatsServer, spans: InMemorySpanExporter,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """Posts arriving together are written by one group commit: its span continues the
    first post's trace and links to each of the others', so every post's trace shows the
    commit that wrote it."""
    monkeypatch.setenv("ICN_PASSPHRASE", "trace test passphrase, long enough")
    names = [f"m{i}" for i in range(8)]
    a = Served(tmp_path / "a", nats_server.url)
    try:
        s = CoopScript(COOP)
        founded = s.found({"alice": ["admin"], **{n: [] for n in names}})
        assert a.node.append.append([founded.wire_bytes()])[0].stored
        tokens = {n: login(a.base, key_for(n), COOP) for n in names}
        url = f"{a.base}/v1/coops/{COOP}/events"

        async def post_together() -> list[int]:
            async with httpx.AsyncClient(timeout=30) as client:
                answers = await asyncio.gather(*(
                    client.post(url, content=s.pay(n, "alice", 1).wire_bytes(), headers={
                        **bearer(tokens[n]), "Content-Type": "application/json"})
                    for n in names
                ))  # fmt: skip
            return [r.status_code for r in answers]

        grouped: list[ReadableSpan] = []
        for _ in range(20):  # concurrent posts share a commit unless each beat the next one
            spans.clear()
            assert asyncio.run(post_together()) == [201] * len(names)
            wait_for(lambda: len([x for x in spans.get_finished_spans()
                                  if x.name == POST_ROUTE]) == len(names))  # fmt: skip
            finished = list(spans.get_finished_spans())
            grouped = [x for x in finished if x.name == "icn.group_commit"
                       and (x.attributes or {}).get("icn.requests", 1) > 1]  # fmt: skip
            if grouped:
                break
        assert grouped, "no group commit ever held two posts"
        posts = {x.context.span_id: x for x in finished if x.name == POST_ROUTE and x.context}
        carried: set[int] = set()
        for commit in grouped:
            assert commit.parent is not None and commit.parent.span_id in posts
            linked = [link.context.span_id for link in commit.links]
            assert len(linked) == (commit.attributes or {})["icn.requests"] - 1
            assert set(linked) <= set(posts) and commit.parent.span_id not in linked
            carried |= {commit.parent.span_id, *linked}
        singles = [x for x in finished if x.name == "icn.group_commit" and x not in grouped]
        for commit in singles:
            assert commit.parent is not None and not commit.links
            carried.add(commit.parent.span_id)
        assert carried == set(posts)  # every post's commit is in its trace or links to it
    finally:
        a.stop()


def test_below_a_root_the_sampler_left_out_no_span_is_made(
    spans: InMemorySpanExporter,
) -> None:
    """The sampler decides at a trace's root; a write it left out makes no span below, in
    its own thread or in the writer thread it hands ``current()`` to, unless the group
    commit also carries a traced write (then it follows that one)."""
    telemetry = OtelTelemetry()
    unsampled = SpanContext(0x1F, 0x2F, is_remote=False, trace_flags=TraceFlags(0))
    # The parent was not sampled: neither is "root", nor anything below it.
    with trace.use_span(NonRecordingSpan(unsampled)), telemetry.span("root"):
        handed = telemetry.current()
        with telemetry.span("child"), telemetry.span("grandchild"):
            pass
    assert handed is UNSAMPLED
    # In the writer thread:
    with telemetry.span("icn.group_commit", parent=handed), telemetry.span("icn.commit"):
        pass
    assert spans.get_finished_spans() == ()
    with telemetry.span("traced write"):
        traced = telemetry.current()
    with (
        telemetry.span("icn.group_commit", parent=handed, links=[traced]),
        telemetry.span("icn.commit"),
    ):
        pass
    names = {x.name: x for x in spans.get_finished_spans()}
    assert set(names) == {"traced write", "icn.group_commit", "icn.commit"}
    write, commit = names["traced write"].context, names["icn.group_commit"]
    assert commit.parent is not None and write is not None
    assert commit.parent.span_id == write.span_id and not commit.links


def test_a_json_log_line_carries_the_trace_it_was_written_in(
    spans: InMemorySpanExporter,
) -> None:
    record = logging.LogRecord("icn.node", logging.WARNING, __file__, 1, "coop duty %s", ("x",),
                               None)  # fmt: skip
    record.coop = "food-coop"
    with trace.get_tracer("test").start_as_current_span("outer") as span:
        line = json.loads(JsonLogFormatter().format(record))
    context = span.get_span_context()
    assert line["trace_id"] == format(context.trace_id, "032x")
    assert line["span_id"] == format(context.span_id, "016x")
    assert (line["level"], line["logger"], line["msg"], line["coop"]) == (
        "warning", "icn.node", "coop duty x", "food-coop",
    )  # fmt: skip
    assert line["ts"].endswith("Z")
    outside = json.loads(JsonLogFormatter().format(record))
    assert "trace_id" not in outside and "span_id" not in outside


def test_spans_below_a_recorded_root_are_whole_spans(
    spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Below a recorded root the spans skip the SDK's span machinery: each still reaches
    the exporter with its parent, attributes, times, resource and scope, names itself in
    log lines, and records an exception that leaves it as the SDK would. A root that
    root_sampled() leaves out makes nothing at all."""
    telemetry = OtelTelemetry()
    record = logging.LogRecord("icn.node", logging.INFO, __file__, 1, "judged", (), None)
    with telemetry.span("write"):
        with telemetry.span("icn.commit", {"icn.attempt": 2}):
            line = json.loads(JsonLogFormatter().format(record))
        with pytest.raises(ValueError, match="no such coop"), telemetry.span("icn.judge"):
            raise ValueError("no such coop")
    found = {x.name: x for x in spans.get_finished_spans()}
    assert set(found) == {"write", "icn.commit", "icn.judge"}
    write, commit, judge = found["write"], found["icn.commit"], found["icn.judge"]
    assert write.context is not None and commit.context is not None
    assert tree(list(found.values()), write) == {"icn.commit": {}, "icn.judge": {}}
    assert dict(commit.attributes or {}) == {"icn.attempt": 2}
    assert commit.resource == write.resource and commit.instrumentation_scope is not None
    assert (commit.start_time or 0) <= (commit.end_time or 0) <= (write.end_time or 0)
    assert line["span_id"] == format(commit.context.span_id, "016x")
    assert line["trace_id"] == format(write.context.trace_id, "032x")
    assert commit.status.is_ok and not judge.status.is_ok
    assert [e.name for e in judge.events] == ["exception"]
    assert (judge.events[0].attributes or {})["exception.message"] == "no such coop"
    spans.clear()
    monkeypatch.setattr("icn.infrastructure.telemetry._root_share", 0.0)
    with telemetry.span("write"):
        assert telemetry.current() is UNSAMPLED
        with telemetry.span("icn.commit"):
            pass
    assert spans.get_finished_spans() == ()


def test_the_server_span_made_without_the_sdk_says_what_the_sdk_span_said(
    spans: InMemorySpanExporter,
) -> None:
    """The request's root is made by the middleware itself when the sampler records every
    root: a SERVER span with no parent, its route, method and status code, status ERROR on
    a 5xx or an exception (named in the status, with no exception event, as the SDK span
    with ``record_exception=False`` was), and the spans below in its trace."""
    metrics = NodeMetrics()
    telemetry = OtelTelemetry(metrics)

    def app(status: int, fail: bool) -> Any:
        async def answer(scope: Any, receive: Any, send: Any) -> None:
            with telemetry.span("icn.verify", parent=telemetry.current()):
                line = json.loads(JsonLogFormatter().format(
                    logging.LogRecord("icn.node", logging.INFO, __file__, 1, "x", (), None)
                ))  # fmt: skip
            seen.append(line)
            if fail:
                raise RuntimeError("the store is away")
            await send({"type": "http.response.start", "status": status, "headers": []})
            await send({"type": "http.response.body", "body": b"{}"})

        return TelemetryMiddleware(answer, metrics)

    async def sent(message: Any) -> None:
        pass

    seen: list[dict[str, str]] = []
    scope = {"type": "http", "method": "POST", "path_template": "/v1/coops/{coop}/events"}
    asyncio.run(app(201, False)(scope, None, sent))
    asyncio.run(app(503, False)(scope, None, sent))
    with pytest.raises(RuntimeError, match="store is away"):
        asyncio.run(app(201, True)(scope, None, sent))
    finished = list(spans.get_finished_spans())
    roots = [x for x in finished if x.name == POST_ROUTE]
    assert len(roots) == 3 and len(finished) == 6
    for root, code in zip(roots, (201, 503, 500), strict=True):
        assert root.parent is None and root.kind == trace.SpanKind.SERVER
        assert root.context is not None and root.context.trace_flags.sampled
        assert dict(root.attributes or {}) == {
            "http.request.method": "POST", "http.route": "/v1/coops/{coop}/events",
            "http.response.status_code": code,
        }  # fmt: skip
        assert tree(finished, root) == {"icn.verify": {}}
        assert not root.events
    ok, unavailable, failed = roots
    assert ok.status.status_code == trace.StatusCode.UNSET
    assert unavailable.status.status_code == trace.StatusCode.ERROR
    assert failed.status.status_code == trace.StatusCode.ERROR
    assert failed.status.description == "RuntimeError: the store is away"
    assert len({r.context.trace_id for r in roots if r.context is not None}) == 3
    verify = [x.context for x in finished if x.name == "icn.verify"]
    assert verify[0] is not None and ok.context is not None
    assert seen[0]["span_id"] == format(verify[0].span_id, "016x")
    assert seen[0]["trace_id"] == format(ok.context.trace_id, "032x")
