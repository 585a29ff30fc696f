"""Where traced telemetry's cost of a single post goes: the real write path in one process,
the modes interleaved block by block, CPU time of the process (every thread) per post.

Usage: ``python bench/telemetry_writes.py [--posts N] [--blocks N] [--modes a,b,...]
[--dry]``.

``bench/telemetry.py`` compares whole nodes, one after another; on a shared machine their
rounds move by more than the 5 % budget, and py-spy's share of a traced node in telemetry
code (~2 %) did not explain what they showed. Here each mode is its own node (its own
SQLite store and group-commit thread) in this process, fed the same pre-signed single
posts, 50 members at once; a block of posts goes to each mode in turn, the order rotating,
and ``time.process_time`` over a block counts every thread (the writers, the span
processor's exporter thread). The post is the HTTP handler's part of ``POST .../events``:
the telemetry middleware (for the modes that have it), verification, the group commit
(judging, sequencing, commit, projection, the commit listeners), the live streams' span;
what the HTTP server and the routing add is the same in every mode and is left out.

Modes (each the node's own objects, as ``create_app`` makes them):

- ``off``: ``ICN_TELEMETRY=off`` (no middleware, the do-nothing port);
- ``on``: metrics and the middleware, no tracer provider (no span);
- ``traced-none``: ``traced`` with no root recorded (``ICN_TRACE_SAMPLE=0``);
- ``traced``: ``on`` + the provider ``setup_tracing`` installs (5 % of roots, the
  batch span processor, the OTLP/HTTP exporter posting to a collector in another process);
- ``traced-drop``: the same provider but an exporter that drops each batch (what encoding
  and posting cost is ``traced`` minus this);
- ``traced-all``: every root recorded and exported as ``traced`` (what one recorded write
  costs, times 20).

Also per mode: garbage collections per block by generation and the CPU time they took
(``gc.callbacks``), so that garbage made by spans shows beside the CPU it costs.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _common as common  # noqa: E402
import api  # noqa: E402
from nacl.signing import SigningKey  # noqa: E402
from opentelemetry import trace  # noqa: E402
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import (  # noqa: E402
    BatchSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased  # noqa: E402

from icn.application.group_commit import GroupCommit  # noqa: E402
from icn.application.parallel import shared_verifier  # noqa: E402
from icn.domain.identity.did import did_from_public_key  # noqa: E402
from icn.infrastructure import telemetry  # noqa: E402
from icn.infrastructure.settings import Settings  # noqa: E402
from icn.infrastructure.telemetry import (  # noqa: E402
    DEFAULT_TRACE_SAMPLE,
    Measures,
    NodeMetrics,
    OtelTelemetry,
    _SpanSink,
)
from icn.interfaces.bootstrap import build_node, init_node  # noqa: E402
from icn.interfaces.http.auth import Principal  # noqa: E402
from icn.interfaces.http.events import _append  # noqa: E402
from icn.interfaces.http.telemetry import TelemetryMiddleware, count_appended  # noqa: E402

DOCS = HERE.parent / "docs" / "benchmarks.md"
MODES = ["off", "on", "traced-none", "traced", "traced-drop", "traced-all"]
ROUTE = "/v1/coops/{coop}/events"
MEMBERS = api.MEMBERS["single"]


class _Drop(SpanExporter):
    """Takes each batch and does nothing with it."""

    def export(self, spans: Any) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def _collector() -> tuple[subprocess.Popen[str], str]:
    """An OTLP/HTTP collector in a process of its own (its CPU is not this process's)."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import _otlp, time\n"
        "with _otlp.collector(lambda b: None) as url:\n"
        "    print(url, flush=True)\n"
        "    sys.stdin.read()\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(HERE)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


class Mode:
    """One mode's node and the request handler in front of it."""

    def __init__(self, name: str, root: Path, founding: bytes, tracer: Any, sink: Any) -> None:
        self.name = name
        settings = Settings(data_dir=root / name)
        init_node(settings)
        served = build_node(settings, replication=False)
        self.node = served.node
        self.feed = served.feed
        self.node.append.append_inspected(shared_verifier().inspect([founding]))
        metrics = None if name == "off" else NodeMetrics()
        if metrics is not None:
            if tracer is None:
                port: Any = Measures(metrics)
            else:
                port = OtelTelemetry(metrics)
                port._tracer, port._sink = tracer, sink
            self.node.append.telemetry = port
            self.node.append.add_commit_listener(count_appended(metrics))
        self.writer = GroupCommit(self.node.append)
        self.writer.start()
        self.app: Callable[..., Any] = self._handler
        if metrics is not None:
            middleware = TelemetryMiddleware(self._handler, metrics)
            middleware.tracer = tracer  # this mode's provider, not the global one
            middleware.sink = sink
            self.app = middleware
        self.share = {"traced-all": 1.0, "traced-none": 0.0}.get(name, DEFAULT_TRACE_SAMPLE)
        self.tracing = tracer is not None

    async def _handler(self, scope: Any, receive: Any, send: Any) -> None:
        line, who = scope["icn.line"], scope["icn.who"]
        await _append(self.writer, [line], api.COOP, who)
        with self.writer.telemetry.span("icn.deliver"):
            self.feed.notify(api.COOP)
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    def close(self) -> None:
        self.writer.stop()
        self.node.close()


async def _send(message: Any) -> None:
    pass


async def _block(
    mode: Mode, chains: list[list[bytes]], whos: list[Principal], at: int, n: int
) -> None:
    """Posts ``at .. at + n`` of every member's chain, the members at once."""

    async def member(m: int) -> None:
        for line in chains[m][at : at + n]:
            scope = {"type": "http", "method": "POST", "path_template": ROUTE,
                     "icn.line": line, "icn.who": whos[m]}  # fmt: skip
            await mode.app(scope, None, _send)

    await asyncio.gather(*(member(m) for m in range(len(chains))))


class GcClock:
    """CPU time spent in garbage collection, and collections by generation."""

    def __init__(self) -> None:
        self.started = 0.0
        self.cpu = 0.0
        self.counts = [0, 0, 0]
        gc.callbacks.append(self._note)

    def _note(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self.started = time.thread_time()
        else:
            self.cpu += time.thread_time() - self.started
            self.counts[info["generation"]] += 1

    def take(self) -> tuple[float, list[int]]:
        cpu, counts = self.cpu, self.counts
        self.cpu, self.counts = 0.0, [0, 0, 0]
        return cpu, counts


def main(argv: list[str]) -> None:
    assert __doc__ is not None
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--posts", type=int, default=20, help="posts per member per block (20)")
    p.add_argument("--blocks", type=int, default=12, help="blocks per mode (12)")
    p.add_argument(
        "--modes", default="off,on,traced,traced-drop", help="comma-separated, off first"
    )
    p.add_argument("--dry", action="store_true", help="print only; append nothing to the docs")
    a = p.parse_args(argv)
    names = [m for m in MODES if m in a.modes.split(",")]
    os.environ.setdefault("ICN_PASSPHRASE", "bench-telemetry-writes-passphrase")
    loads = [os.getloadavg()]
    per_member = a.posts * a.blocks
    collector, endpoint = _collector()
    with (
        common.progress_bar() as progress,
        tempfile.TemporaryDirectory(prefix="icn-bench-tw-") as t,
    ):
        with common.chunks_progress(
            progress, "signing events (untimed)", MEMBERS * per_member
        ) as adv:
            phases, founding = api.generate({"single": per_member}, adv)
        chains = phases["single"].chains
        whos = [
            Principal(did_from_public_key(bytes(SigningKey(s).verify_key)), api.COOP,
                      ("events:write",))
            for s in phases["single"].seeds
        ]  # fmt: skip
        resource = telemetry.node_resource("icn-node")
        providers: dict[str, TracerProvider] = {}
        otlp = f"{endpoint}/v1/traces"
        for name, exporter in (("traced", OTLPSpanExporter(endpoint=otlp)),
                               ("traced-none", OTLPSpanExporter(endpoint=otlp)),
                               ("traced-drop", _Drop()),
                               ("traced-all", OTLPSpanExporter(endpoint=otlp))):  # fmt: skip
            providers[name] = TracerProvider(resource=resource, sampler=ParentBased(ALWAYS_ON))
            providers[name].add_span_processor(BatchSpanProcessor(exporter))
        trace.set_tracer_provider(providers["traced"])  # what tracing() asks of the node
        modes = {}
        for name in names:
            tracer = providers[name].get_tracer("icn") if name in providers else None
            modes[name] = Mode(name, Path(t), founding, tracer,
                               _SpanSink.of(tracer) if tracer else None)  # fmt: skip
        gc.collect()
        gc.freeze()  # as settle_for_serving
        gc.set_threshold(5000, *gc.get_threshold()[1:])
        clock = GcClock()
        cpu: dict[str, list[float]] = {m: [] for m in names}
        gcs: dict[str, list[tuple[float, list[int]]]] = {m: [] for m in names}
        loop = asyncio.new_event_loop()
        with common.chunks_progress(progress, "blocks", a.blocks * len(names)) as advance:
            for b in range(a.blocks):
                turn = b % len(names)
                for name in names[turn:] + names[:turn]:
                    mode = modes[name]
                    telemetry._root_share = mode.share
                    clock.take()
                    started = time.process_time()
                    loop.run_until_complete(_block(mode, chains, whos, b * a.posts, a.posts))
                    cpu[name].append((time.process_time() - started) / (a.posts * MEMBERS))
                    gcs[name].append(clock.take())
                    advance(1)
        for name in names:
            modes[name].close()
        for provider in providers.values():
            provider.shutdown()
        loop.close()
    collector.communicate("")
    loads.append(os.getloadavg())
    report(a, names, cpu, gcs, loads)


def report(
    a: argparse.Namespace, names: Sequence[str], cpu: dict[str, list[float]],
    gcs: dict[str, list[tuple[float, list[int]]]], loads: list[tuple[float, float, float]],
) -> None:  # fmt: skip
    med = {m: statistics.median(v) * 1e6 for m, v in cpu.items()}
    base = med["off"]
    head = ["mode", "CPU µs per post (median)", "added to off", "ratio to off",
            "per-block ratios (min / median / max)", "GC µs per post",
            "collections per block (gen 0/1/2)"]  # fmt: skip
    rows = []
    for m in names:
        ratios = sorted(x / o for x, o in zip(cpu[m], cpu["off"], strict=True))
        gc_us = statistics.median(g[0] for g in gcs[m]) / (a.posts * MEMBERS) * 1e6
        counts = [statistics.median(g[1][i] for g in gcs[m]) for i in range(3)]
        rows.append([
            m, f"{med[m]:.1f}", f"{med[m] - base:+.1f} µs", f"{med[m] / base:.3f}",
            f"{ratios[0]:.3f} / {statistics.median(ratios):.3f} / {ratios[-1]:.3f}",
            f"{gc_us:.1f}", "/".join(f"{c:g}" for c in counts),
        ])  # fmt: skip
    common.print_table(
        f"the write path per single post, {a.blocks} blocks of {a.posts * MEMBERS}", head, rows
    )
    facts = {
        **common.machine_info(),
        "command": " ".join(["python bench/telemetry_writes.py", *sys.argv[1:]]),
        "load average (1, 5, 15 min)": "at the start {:.2f} {:.2f} {:.2f}, at the end"
        " {:.2f} {:.2f} {:.2f} (2 cores, shared)".format(*loads[0], *loads[1]),
        "what": f"{MEMBERS} members posting single events at once into one node per mode"
        " (SQLite, no replication) in one process: middleware, verification, group commit,"
        " projection, listeners, the deliver span; CPU time of the process (every thread)"
        f" per post; {a.blocks} blocks of {a.posts} posts per member per mode, the order"
        " rotating; per-block ratios pair each block with off's block of the same round",
    }
    text = "\n".join(f"- {k}: {v}" for k, v in facts.items())
    text += "\n\n" + common.markdown_table(head, rows)
    if a.dry:
        return
    common.append_section(
        DOCS, f"Telemetry on the write path (bench/telemetry_writes.py), {common.utc_now()}", text
    )
    print(f"results appended to {DOCS}")


if __name__ == "__main__":
    main(sys.argv[1:])
