"""Single posts on ``icn dev cluster`` (three NATS servers, R3 streams) against a single
node (its embedded nats-server, R1), in one run, and where the time of one post goes.

Usage: ``python bench/cluster.py [--posts N] [--block N] [--nodes N] [--no-trace]``.

Both set-ups serve the same kind of coop (founded by ``bench/api.py``'s signed workload,
imported into the first node before it starts) and take lone posts: one request in
flight at a time, so every post is a group commit of one event, which a clustered node
puts in the stream as a plain publish with ``Nats-Expected-Last-Sequence``. The two are
posted to in alternating blocks, so drift in the machine's load falls on both.

Two passes, each with fresh nodes: the first untraced (the latencies reported), the
second with every post traced (``ICN_TRACE_SAMPLE=1``, spans exported over OTLP/HTTP to a
collector in this process), whose span durations say where a post's time goes: verify,
judge, sequence (the stream publish and its ack), commit, project, deliver, and the rest
of the HTTP request.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import api  # noqa: E402
from _common import (  # noqa: E402
    append_section,
    chunks_progress,
    machine_info,
    markdown_table,
    print_table,
    progress_bar,
    utc_now,
)
from _otlp import collector  # noqa: E402
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (  # noqa: E402
    ExportTraceServiceRequest,
)

from icn.infrastructure.dev_cluster import ClusterFiles, DevCluster, ensure_secrets  # noqa: E402

DOCS = HERE.parent / "docs" / "benchmarks.md"
MEMBERS = 8
"""Members posting to each set-up (each a chain of its own)."""
POST_SPAN = "POST /v1/coops/{coop}/events"
SPANS = [POST_SPAN, "icn.verify", "icn.group_commit", "icn.judge", "icn.sequence", "icn.commit",
         "icn.project", "icn.deliver"]  # fmt: skip


SpanRow = tuple[str, bytes, str, float]
"""A span as the report reads it: (set-up, trace id, name, duration in ms); the set-up is
the ``icn.bench`` resource attribute its node was started with."""


def span_rows(body: bytes, into: list[SpanRow]) -> None:
    """The spans of one OTLP/HTTP trace export, appended to ``into``."""
    request = ExportTraceServiceRequest.FromString(body)
    for rs in request.resource_spans:
        attrs = {a.key: a.value.string_value for a in rs.resource.attributes}
        for ss in rs.scope_spans:
            for s in ss.spans:
                ms = (s.end_time_unix_nano - s.start_time_unix_nano) / 1e6
                into.append((attrs.get("icn.bench", ""), s.trace_id, s.name, ms))


@contextlib.contextmanager
def single_node(root: Path, founded: Path, extra: dict[str, str]) -> Iterator[str]:
    """One ``icn node run`` on its embedded nats-server (bench/api.py's node)."""
    plain = api.node_env
    api.node_env = lambda: {**plain(), **extra, "OTEL_RESOURCE_ATTRIBUTES": "icn.bench=single"}
    try:
        with api.running_node(root, founded) as (base, _):
            yield base
    finally:
        api.node_env = plain


@contextlib.contextmanager
def dev_cluster(root: Path, founded: Path, nodes: int, extra: dict[str, str]) -> Iterator[str]:
    """``icn dev cluster --nodes N`` serving the bench coop, founded on node1 before it
    starts (the cluster then seeds no demo); yields node1's URL."""
    files = ClusterFiles(root)
    ensure_secrets(files)
    env = {**api.node_env(), **extra, "ICN_PASSPHRASE_FILE": str(files.passphrase)}
    env.pop("ICN_PASSPHRASE", None)
    data = str(files.node(1))
    for args in (
        ["node", "init", "--data-dir", data],
        ["log", "import", str(founded), "--data-dir", data],
    ):
        subprocess.run([str(api.ICN), *args], env=env, check=True, capture_output=True, timeout=120)
    environ = {**api.node_env(), **extra, "OTEL_RESOURCE_ATTRIBUTES": "icn.bench=cluster"}
    cluster = DevCluster(root, nodes=nodes, http_port=0, coop=api.COOP, environ=environ)
    cluster.start()
    try:
        yield cluster.nodes[0].base_url
    finally:
        cluster.stop()


def post_block(client: httpx.Client, token: str, lines: list[bytes]) -> list[float]:
    """Post ``lines`` one at a time; each one's latency in ms."""
    url = f"/v1/coops/{api.COOP}/events"
    headers = {"Authorization": token, "Content-Type": "application/json"}  # "Bearer …"
    took = []
    for line in lines:
        started = time.perf_counter()
        r = client.post(url, content=line, headers=headers)
        took.append((time.perf_counter() - started) * 1e3)
        if r.status_code != 201:
            raise SystemExit(f"a post was refused ({r.status_code}): {r.text[:500]}")
    return took


def login(client: httpx.Client, seed: bytes) -> str:
    import asyncio

    import _api_load as load

    async def one() -> str:
        async with httpx.AsyncClient(base_url=str(client.base_url), timeout=30) as c:
            return str(await load.login(c, seed, api.COOP))

    return asyncio.run(one())


def run_pass(
    tmp: Path, founded: Path, phases: dict[str, api.Phase], a: argparse.Namespace,
    extra: dict[str, str], progress: Any, label: str,
) -> dict[str, list[float]]:  # fmt: skip
    """Both set-ups side by side, posted to in alternating blocks; latencies by set-up."""
    took: dict[str, list[float]] = {"single": [], "cluster": []}
    with (
        single_node(tmp / f"{label}-single", founded, extra) as single,
        dev_cluster(tmp / f"{label}-cluster", founded, a.nodes, extra) as clustered,
        httpx.Client(base_url=single, timeout=30) as s_client,
        httpx.Client(base_url=clustered, timeout=30) as c_client,
    ):
        targets = {"single": s_client, "cluster": c_client}
        tokens = {
            name: [login(client, seed) for seed in phases[name].seeds]
            for name, client in targets.items()
        }
        chains = {name: [iter(c) for c in phases[name].chains] for name in targets}
        blocks = a.posts // a.block
        with chunks_progress(progress, f"{label}: lone posts", 2 * blocks) as advance:
            for b in range(blocks):
                order = ["single", "cluster"] if b % 2 == 0 else ["cluster", "single"]
                for name in order:
                    member = b % MEMBERS
                    lines = [next(chains[name][member]) for _ in range(a.block)]
                    took[name] += post_block(targets[name], tokens[name][member], lines)
                    advance(1)
    return took


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: list[str]) -> None:
    assert __doc__ is not None
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--posts", type=int, default=400, help="lone posts per set-up and pass (400)")
    p.add_argument("--block", type=int, default=20, help="posts per alternating block (20)")
    p.add_argument("--nodes", type=int, default=3, help="nodes of the dev cluster (3)")
    p.add_argument("--no-trace", action="store_true", help="skip the traced pass")
    a = p.parse_args(argv)
    load_start = os.getloadavg()
    per_member = (a.posts // a.block // MEMBERS + 1) * a.block
    api.MEMBERS["single"] = api.MEMBERS["cluster"] = MEMBERS
    sizes = {"single": per_member, "cluster": per_member}
    results: dict[str, dict[str, list[float]]] = {}
    spans: list[SpanRow] = []
    with (
        progress_bar() as progress,
        tempfile.TemporaryDirectory(prefix="icn-bench-cluster-") as t,
        collector(lambda body: span_rows(body, spans)) as endpoint,
    ):
        tmp = Path(t)
        for name in ["untraced"] if a.no_trace else ["untraced", "traced"]:
            # Signed just before each pass (fresh nodes, a coop founded anew): their times
            # are the node's now, as a member's would be.
            with chunks_progress(
                progress, f"{name}: signing (untimed)", 2 * MEMBERS * per_member
            ) as adv:
                phases, founding = api.generate(sizes, adv)
            founded = tmp / f"{name}-founded.jsonl"
            founded.write_bytes(founding + b"\n")
            extra = {} if name == "untraced" else {
                "ICN_OTLP_ENDPOINT": endpoint, "ICN_TRACE_SAMPLE": "1",
            }  # fmt: skip
            results[name] = run_pass(tmp, founded, phases, a, extra, progress, name)
        time.sleep(6)  # the batch span processors export every 5 s (nodes stopped: flushed)
    report(results, spans, a, load_start)


def report(
    results: dict[str, dict[str, list[float]]], spans: list[SpanRow], a: argparse.Namespace,
    load_start: tuple[float, float, float],
) -> None:  # fmt: skip
    head = ["pass", "set-up", "posts", "p50 ms", "p90 ms", "p99 ms", "max ms", "p50 / single"]
    rows = []
    for pass_name, took in results.items():
        base = statistics.median(took["single"])
        for name, values in took.items():
            rows.append([
                pass_name, name, str(len(values)), f"{statistics.median(values):.2f}",
                f"{pct(values, 0.9):.2f}", f"{pct(values, 0.99):.2f}", f"{max(values):.2f}",
                f"{statistics.median(values) / base:.2f}",
            ])  # fmt: skip
    print_table("lone single posts: dev cluster against a single node", head, rows)
    text_tables = markdown_table(head, rows)
    posts = {(setup, tid) for setup, tid, name, _ in spans if name == POST_SPAN}
    by: dict[tuple[str, str], list[float]] = defaultdict(list)
    for setup, tid, name, ms in spans:
        if (setup, tid) in posts:  # a post's own trace (not another node's replication)
            by[(setup, name)].append(ms)
    if by:
        shead = ["span", "single p50 ms", "cluster p50 ms", "single p99 ms", "cluster p99 ms"]
        srows = []
        for name in SPANS:
            s, c = by.get(("single", name), []), by.get(("cluster", name), [])
            if s or c:
                srows.append([
                    name,
                    *(f"{statistics.median(v):.2f}" if v else "" for v in (s, c)),
                    *(f"{pct(v, 0.99):.2f}" if v else "" for v in (s, c)),
                ])  # fmt: skip
        print_table("where a traced post's time goes (span durations)", shead, srows)
        text_tables += "\n\n" + markdown_table(shead, srows)
    facts = {
        **machine_info(),
        "command": " ".join(["python bench/cluster.py", *sys.argv[1:]]),
        "load average (1, 5, 15 min)": "at the start {:.2f} {:.2f} {:.2f}, at the end"
        " {:.2f} {:.2f} {:.2f} (2 cores, shared)".format(*load_start, *os.getloadavg()),
        "single": "icn node run on its embedded nats-server (one server, R1 stream)",
        "cluster": f"icn dev cluster --nodes {a.nodes}: three nats-server in one JetStream"
        " cluster (R3 stream, users), posts to node1, every node on SQLite",
        "posts": f"{a.posts} lone posts per set-up and pass, one in flight, blocks of {a.block}"
        " alternating between the set-ups; the latency is the client's (httpx, keep-alive)",
        "traced pass": "fresh nodes with ICN_TRACE_SAMPLE=1 and an OTLP/HTTP collector in the"
        " bench: span durations of every post (each span includes those below it: the"
        " group commit holds judge, sequence, commit and project)",
    }
    text = "\n".join(f"- {k}: {v}" for k, v in facts.items()) + "\n\n" + text_tables
    append_section(DOCS, f"Clustered single posts (bench/cluster.py), {utc_now()}", text)
    print(f"results appended to {DOCS}")


if __name__ == "__main__":
    main(sys.argv[1:])
