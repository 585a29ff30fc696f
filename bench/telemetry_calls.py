"""What telemetry adds to one single post, measured on the calls alone: every instrument
and span call the write path makes for one post, and the HTTP middleware around a request.

Usage: ``python bench/telemetry_calls.py [--posts N] [--blocks N] [--per-post-ms MS]``.

``bench/telemetry.py`` measures whole nodes, and on a shared, loaded machine its rounds
move by more than the 5 % budget; this one times only what telemetry adds, in one process,
with the modes interleaved block by block so drift in the machine's load falls on each:

- ``off``: what ``ICN_TELEMETRY=off`` leaves (the do-nothing port, no middleware);
- ``on``: the default (the measures, the middleware, the appended-events listener);
- ``traced, left out``: a tracer provider set up as ``setup_tracing`` sets it up, the root
  left out (what 95 % of the writes cost with ``ICN_OTLP_ENDPOINT`` set and the default
  sample of 0.05);
- ``traced, recorded``: the same provider recording the write: eight spans through the
  batch span processor, encoded as the OTLP exporter encodes them (protobuf), flushed at
  the end of each block (not sent: the HTTP post of a batch of spans is left out).

Reported: the median µs per post of each mode, what it adds to ``off``, and that as a share
of a node's CPU time per single post (``--per-post-ms``, from bench/telemetry.py's ``off``).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import append_section, machine_info, markdown_table, print_table, utc_now  # noqa: E402
from opentelemetry import trace  # noqa: E402
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans  # noqa: E402
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import (  # noqa: E402
    BatchSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased  # noqa: E402

from icn.application.append import CommittedEvent  # noqa: E402
from icn.application.ports import NO_TELEMETRY, Telemetry  # noqa: E402
from icn.infrastructure import telemetry  # noqa: E402
from icn.infrastructure.telemetry import Measures, NodeMetrics, OtelTelemetry  # noqa: E402
from icn.interfaces.http.telemetry import TelemetryMiddleware, count_appended  # noqa: E402

DOCS = HERE.parent / "docs" / "benchmarks.md"
ROUTE = "/v1/coops/{coop}/events"
SCOPE: dict[str, Any] = {"type": "http", "method": "POST", "path_template": ROUTE}
EVENT = [CommittedEvent("food-coop", 7, "e" * 64, "ledger.EntryRecorded", "did:key:z", b"{}", 1)]


async def _app(scope: Any, receive: Any, send: Any) -> None:
    """The rest of the request, as cheap as possible: an answer in two messages."""
    await send({"type": "http.response.start", "status": 201, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


async def _send(message: Any) -> None:
    pass


def _post(
    t: Telemetry, listener: Callable[[list[CommittedEvent]], None] | None
) -> Callable[[], Any]:
    """The telemetry calls of one single post, in the order the write path makes them
    (interfaces/http/events.py, application/group_commit.py, application/append.py)."""

    async def handler(scope: Any, receive: Any, send: Any) -> None:
        handed = t.current()  # the request's trace, for the writer thread
        with t.span("icn.verify", {"icn.events": 1}, parent=handed):
            t.verified(0.0001, 1)
        queued = t.current()  # GroupCommit.enqueue
        t.grouped(1)
        with t.span("icn.group_commit", {"icn.requests": 1, "icn.events": 1}, parent=queued):
            with (
                t.span("icn.commit", {"icn.attempt": 0}),
                t.span("icn.judge"),
                t.span("icn.sequence", {"icn.events": 1}),
            ):
                pass
            with t.span("icn.project", {"icn.events": 1}):
                if listener is not None:
                    listener(EVENT)
        with t.span("icn.deliver"):
            pass
        await _app(scope, receive, send)

    return handler


class _Encoded(SpanExporter):
    """Encodes each batch as the OTLP/HTTP exporter does, and sends it nowhere."""

    spans = 0

    def export(self, spans: Any) -> SpanExportResult:
        batch: list[ReadableSpan] = list(spans)
        encode_spans(batch).SerializeToString()
        type(self).spans += len(batch)
        return SpanExportResult.SUCCESS


def _timed(app: Any, posts: int) -> float:
    """CPU seconds of ``posts`` requests through ``app`` (one event loop, no I/O)."""

    async def run() -> None:
        for _ in range(posts):
            await app(SCOPE, None, _send)

    started = time.process_time()
    asyncio.run(run())
    return time.process_time() - started


def main(argv: list[str]) -> None:
    assert __doc__ is not None
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--posts", type=int, default=20_000, help="posts per block (20,000)")
    p.add_argument("--blocks", type=int, default=15, help="blocks per mode, interleaved (15)")
    p.add_argument(
        "--per-post-ms", type=float, default=1.2,
        help="a node's CPU ms per single post with telemetry off (bench/telemetry.py)",
    )  # fmt: skip
    a = p.parse_args(argv)
    metrics = NodeMetrics()
    on = TelemetryMiddleware(_post(Measures(metrics), count_appended(metrics)), metrics)
    # As setup_tracing installs it: roots chosen by root_sampled() (here: every root while
    # "recorded" runs, none otherwise), then recorded by the provider, children following.
    provider = TracerProvider(sampler=ParentBased(ALWAYS_ON))
    # A queue that holds a whole block's spans: none is dropped when the encoding thread
    # falls behind, so every recorded span is paid for.
    provider.add_span_processor(BatchSpanProcessor(_Encoded(), max_queue_size=1 << 20))
    trace.set_tracer_provider(provider)  # from here, middlewares made trace
    traced = TelemetryMiddleware(_post(OtelTelemetry(metrics), count_appended(metrics)), metrics)
    modes = {"off": _post(NO_TELEMETRY, None), "on": on, "traced, left out": traced,
             "traced, recorded": traced}  # fmt: skip
    times: dict[str, list[float]] = {m: [] for m in modes}
    loads = [Path("/proc/loadavg").read_text().split()[:3]]
    for b in range(a.blocks):
        names = list(modes)
        for name in names[b % len(names) :] + names[: b % len(names)]:
            recorded = name == "traced, recorded"
            telemetry._root_share = 1.0 if recorded else 0.0
            posts = a.posts // 10 if recorded else a.posts  # ~100 times dearer
            started = time.process_time()
            _timed(modes[name], posts)
            provider.force_flush()
            times[name].append((time.process_time() - started) / posts * 1e6)
    assert _Encoded.spans >= 8 * a.blocks * (a.posts // 10), _Encoded.spans
    loads.append(Path("/proc/loadavg").read_text().split()[:3])
    med = {m: statistics.median(v) for m, v in times.items()}
    budget_us = a.per_post_ms * 1000 * 0.05
    head = ["mode", "µs per post (median)", "added to off, µs", "share of a post", "5 % budget"]
    rows = [
        [m, f"{med[m]:.2f}", f"{med[m] - med['off']:+.2f}",
         f"{(med[m] - med['off']) / (a.per_post_ms * 1000):+.2%}",
         f"{budget_us:.0f} µs" if m != "off" else ""]
        for m in modes
    ]  # fmt: skip
    print_table(f"telemetry calls of one single post, {a.blocks} blocks of {a.posts}", head, rows)
    facts = {
        **machine_info(),
        "command": " ".join(["python bench/telemetry_calls.py", *argv]),
        "load average (1, 5, 15 min)": f"at the start {' '.join(loads[0])}, at the end"
        f" {' '.join(loads[1])} (2 cores, shared)",
        "what": "the telemetry calls one single post makes (7 span calls, 2 current(), the"
        " verify and group-size histograms, the appended-events listener) and the HTTP"
        " middleware, around an ASGI app that only answers; CPU time of one process (all"
        f" its threads), modes interleaved in {a.blocks} blocks of {a.posts} posts each"
        f" ({a.posts // 10} when recorded)",
        "share of a post": f"the µs added over {a.per_post_ms} ms, a node's CPU time per single"
        " post with telemetry off (bench/telemetry.py)",
    }
    text = "\n".join(f"- {k}: {v}" for k, v in facts.items())
    text += "\n\n" + markdown_table(head, rows)
    append_section(DOCS, f"Telemetry calls per single post (bench/telemetry_calls.py), {utc_now()}",
                   text)  # fmt: skip
    print(f"results appended to {DOCS}")


if __name__ == "__main__":
    main(sys.argv[1:])
