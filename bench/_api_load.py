"""The load generator of ``bench/api.py``: its own process, so the node serves alone.

Usage: ``python bench/_api_load.py SPEC.json`` (the spec is written by ``bench/api.py``);
it starts ``python bench/_api_load.py --reads JOB.json`` itself for the read phases.

Logs every member in (each must be a member of the founded coop, or the run
stops with the node's refusal), then runs the phases against the node at ``spec["base"]``
and writes one JSON document of raw results to ``spec["out"]``. Prints one
line per finished step on stdout (``step NAME``), which ``bench/api.py`` turns
into progress. Every latency is taken with ``time.monotonic()`` in this
process; open-loop latencies run from the *scheduled* send time, so a server
that falls behind is charged for the queue it causes (no coordinated
omission).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import sys
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import msgspec
from _common import machine_busy_s
from nacl.signing import SigningKey

from icn.domain.identity.did import did_from_public_key

BATCH = 100
CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
JSON = {"content-type": "application/json"}
LIMITS = httpx.Limits(max_connections=8, max_keepalive_connections=8)


class _Id(msgspec.Struct):
    id: str


class _Page(msgspec.Struct):
    events: list[msgspec.Raw]


class _Problem(msgspec.Struct):
    code: str = ""


_id_of = msgspec.json.Decoder(_Id)
_page_of = msgspec.json.Decoder(_Page)
_problem_of = msgspec.json.Decoder(_Problem)


def kind_of(r: httpx.Response) -> str:
    """A refusal for the report: status and problem ``code``, e.g. ``403 not-a-member``."""
    try:
        code = _problem_of.decode(r.content).code
    except msgspec.DecodeError:
        code = ""
    return f"{r.status_code} {code}".strip()


def step(name: str) -> None:
    """Tell ``bench/api.py`` a step finished."""
    print(f"step {name}", flush=True)


def process_cpu(pid: int) -> float | None:
    """CPU seconds (user + system, all threads) of process ``pid`` and every process under
    it so far (a writer process, verifier workers, an embedded nats-server: the node's
    CPU in either layout); None off Linux."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        own = (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, ValueError, IndexError):
        return None
    return own + sum(process_cpu(c) or 0.0 for c in _children(pid))


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            found += [int(c) for c in (task / "children").read_text().split()]
    except (OSError, ValueError):
        pass
    return found


class Meter:
    """Wall time, this process's CPU, the node's CPU and other processes' over one phase.

    Other processes' cores say whether a latency was the node's or the machine's: on
    a shared 2-core machine, one core busy elsewhere halves what node and generator get.
    """

    def __init__(self, node_pid: int) -> None:
        self.node_pid = node_pid
        self.wall = time.monotonic()
        self.cpu = time.process_time()
        self.node = process_cpu(node_pid)
        self.busy = machine_busy_s()

    def stop(self) -> dict[str, float | None]:
        wall = time.monotonic() - self.wall
        node = process_cpu(self.node_pid)
        load = time.process_time() - self.cpu
        node_cpu = None if node is None or self.node is None else node - self.node
        others = machine_busy_s() - self.busy - load - (node_cpu or 0.0)
        return {
            "wall_s": wall,
            "load_cores": load / wall,
            "node_cpu_s": node_cpu,
            "others_cores": max(0.0, others / wall),
            "load_1m": os.getloadavg()[0],
        }


class Errors:
    """Failed requests: a count per kind and the first few answers, for the report."""

    def __init__(self) -> None:
        self.kinds: Counter[str] = Counter()
        self.samples: list[str] = []

    def note(self, kind: str, text: str = "") -> None:
        self.kinds[kind] += 1
        if len(self.samples) < 3:
            self.samples.append(f"{kind} {text[:200]}".strip())

    def summary(self) -> dict[str, Any]:
        total = sum(self.kinds.values())
        return {"errors": total, "kinds": dict(self.kinds), "samples": self.samples}


def ms(seconds: list[float]) -> list[float]:
    return sorted(s * 1000 for s in seconds)


def pct(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return None
    rank = max(1, min(len(sorted_values), int(-(-q * len(sorted_values) // 1))))
    return sorted_values[rank - 1]


def latency_summary(seconds: list[float]) -> dict[str, float | None]:
    values = ms(seconds)
    return {"p50_ms": pct(values, 0.50), "p99_ms": pct(values, 0.99), "max_ms": pct(values, 1.0)}


async def post(client: httpx.AsyncClient, url: str, body: bytes, token: str, errors: Errors) -> Any:
    """POST ``body``; the parsed answer on 201, else None with the failure noted."""
    try:
        r = await client.post(url, content=body, headers={**JSON, "authorization": token})
    except httpx.HTTPError as exc:
        errors.note(type(exc).__name__, str(exc))
        return None
    if r.status_code != 201:
        errors.note(kind_of(r), r.text)
        return None
    return r


async def login(client: httpx.AsyncClient, seed: bytes, coop: str) -> str:
    """DID login; returns the ``Bearer …`` header value."""
    key = SigningKey(seed)
    did = did_from_public_key(bytes(key.verify_key))
    ch = await client.post("/v1/auth/challenge", json={"did": did})
    ch.raise_for_status()
    nonce = ch.json()["nonce"]
    sig = key.sign(b"icn-auth-v1:" + bytes.fromhex(nonce)).signature.hex()
    body = {"did": did, "nonce": nonce, "signature": sig, "coop": coop}
    r = await client.post("/v1/auth/verify", json=body)
    if r.status_code != 200:  # e.g. 403 not-a-member: the coop was not founded with this member
        raise SystemExit(f"login of {did} to {coop} refused: {kind_of(r)}: {r.text[:300]}")
    return f"Bearer {r.json()['token']}"


async def gather_limited(jobs: list[Callable[[], Awaitable[Any]]], limit: int) -> list[Any]:
    sem = asyncio.Semaphore(limit)

    async def run(job: Callable[[], Awaitable[Any]]) -> Any:
        async with sem:
            return await job()

    return await asyncio.gather(*(run(j) for j in jobs))


async def sleep_until(t: float) -> None:
    delay = t - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)


# -- phases --------------------------------------------------------------------------


Send = Callable[[int, bytes], Awaitable[bool]]
"""Post one line for member ``m``; True when the node answered 201."""


def httpx_sender(
    clients: list[httpx.AsyncClient], url: str, tokens: list[str], errors: Errors
) -> Send:
    async def send(m: int, line: bytes) -> bool:
        return await post(clients[m], url, line, tokens[m], errors) is not None

    return send


def aiohttp_sender(
    session: aiohttp.ClientSession, url: str, tokens: list[str], errors: Errors
) -> Send:
    """Posts through aiohttp: its C parser costs the generator a fraction of httpx's CPU
    per request, and the generator shares the machine with the node it measures."""

    async def send(m: int, line: bytes) -> bool:
        try:
            async with session.post(
                url, data=line, headers={**JSON, "authorization": tokens[m]}
            ) as r:
                body = await r.read()
                if r.status != 201:
                    errors.note(f"{r.status} {_problem_of.decode(body).code}", body.decode())
                    return False
                return True
        except (aiohttp.ClientError, msgspec.DecodeError) as exc:
            errors.note(type(exc).__name__, str(exc))
            return False

    return send


async def open_loop_posts(
    send: Send,
    chains: list[list[bytes]],
    rate: float,
    on_send: Callable[[bytes], None] | None = None,
) -> tuple[list[float], list[float], float]:
    """Post every chain's events one per request, request ``i`` scheduled at ``i / rate``.

    Request ``i`` belongs to member ``i % M``; a member's requests go in order
    (its chain must), so one the server is late with delays that member's next
    one, and the delay counts: latency is taken from the scheduled time.
    Returns (latencies of the answered requests, the generator's own send lags: of
    requests not held back by their member's previous post, elapsed).
    """
    members = len(chains)
    latencies: list[float] = []
    lags: list[float] = []
    last_done = 0.0
    t0 = time.monotonic() + 0.05

    async def member(m: int) -> None:
        nonlocal last_done
        previous_done = 0.0
        for k, line in enumerate(chains[m]):
            scheduled = t0 + (k * members + m) / rate
            await sleep_until(scheduled)
            started = time.monotonic()
            if previous_done <= scheduled:  # not held back by this member's previous post
                lags.append(started - scheduled)
            if on_send is not None:
                on_send(line)
            ok = await send(m, line)
            done = previous_done = time.monotonic()
            last_done = max(last_done, done)
            if ok:
                latencies.append(done - scheduled)

    await asyncio.gather(*(member(m) for m in range(members)))
    return latencies, lags, last_done - t0


async def single_phase(spec: dict[str, Any], ph: dict[str, Any]) -> Any:
    errors = Errors()
    meter = Meter(spec["node_pid"])
    connector = aiohttp.TCPConnector(limit=64, limit_per_host=64)
    async with aiohttp.ClientSession(
        base_url=spec["base"], connector=connector, timeout=aiohttp.ClientTimeout(total=30)
    ) as session:
        send = aiohttp_sender(session, spec["events_url"], ph["tokens"], errors)
        latencies, lags, elapsed = await open_loop_posts(send, ph["chains"], spec["rate"])
    requests = sum(len(c) for c in ph["chains"])
    return {
        "offered_per_s": spec["rate"],
        "requests": requests,
        "achieved_per_s": len(latencies) / elapsed,
        **latency_summary(latencies),
        "lag_p99_ms": pct(ms(lags), 0.99),
        "lag_samples": len(lags),
        **errors.summary(),
        **meter.stop(),
    }


async def batch_phase(spec: dict[str, Any], ph: dict[str, Any]) -> Any:
    """Batches of 100 from ``concurrency`` members at once, closed loop, until the deadline.

    A later call goes on where the last stopped (``ph["posted"]``: batches each member
    has had stored), so a second batch phase posts new events, not refused replays.
    """
    bodies = [
        [b"[" + b",".join(chain[i : i + BATCH]) + b"]" for i in range(0, len(chain), BATCH)]
        for chain in ph["chains"]
    ]
    posted: list[int] = ph.setdefault("posted", [0] * len(bodies))
    queue = deque(m for m in range(len(bodies)) if posted[m] < len(bodies[m]))
    errors = Errors()
    latencies: list[float] = []
    stored = 0
    last_done = 0.0
    meter = Meter(spec["node_pid"])
    t0 = time.monotonic()
    deadline = t0 + spec["duration"]

    async def worker() -> None:
        nonlocal stored, last_done
        while queue and time.monotonic() < deadline:
            m = queue.popleft()
            for body in bodies[m][posted[m] :]:
                if time.monotonic() >= deadline:
                    return
                started = time.monotonic()
                r = await post(ph["clients"][m], spec["events_url"], body, ph["tokens"][m], errors)
                last_done = time.monotonic()
                if r is None:
                    posted[m] = len(bodies[m])  # the rest would only be refused as a gap
                    break
                posted[m] += 1
                latencies.append(last_done - started)
                stored += len(r.json()["events"])

    await asyncio.gather(*(worker() for _ in range(spec["batch_concurrency"])))
    elapsed = last_done - t0
    return {
        "events": stored,
        "requests": len(latencies),
        "events_per_s": stored / elapsed,
        "exhausted": not queue and time.monotonic() < deadline,
        **latency_summary(latencies),
        **errors.summary(),
        **meter.stop(),
        "wall_s": elapsed,
    }


async def log_size(client: httpx.AsyncClient, coop: str) -> int:
    r = await client.get("/v1/ready")
    r.raise_for_status()
    return int(r.json()["coops"].get(coop, {"size": 0})["size"])


async def read_phase(spec: dict[str, Any], ph: dict[str, Any]) -> Any:
    """``GET events?after=<random>&limit=100`` scheduled at a constant rate, open loop.

    Request ``i`` goes out with member ``i % M``'s client and token.
    """
    clients, tokens = ph["clients"], ph["tokens"]
    size = await log_size(clients[0], spec["coop"])
    rng = random.Random(7)
    n = int(spec["read_rate"] * spec["duration"])
    errors = Errors()
    latencies: list[float] = []
    last_done = 0.0

    async def one(scheduled: float, after: int, m: int) -> None:
        nonlocal last_done
        params, auth = {"after": after, "limit": BATCH}, {"authorization": tokens[m]}
        try:
            r = await clients[m].get(spec["events_url"], params=params, headers=auth)
        except httpx.HTTPError as exc:
            errors.note(type(exc).__name__, str(exc))
            return
        done = time.monotonic()
        last_done = max(last_done, done)
        if r.status_code != 200:
            errors.note(kind_of(r), r.text)
        elif len(_page_of.decode(r.content).events) != BATCH:
            errors.note("short-page", f"after={after}")
        else:
            latencies.append(done - scheduled)

    meter = Meter(spec["node_pid"])
    t0 = time.monotonic() + 0.05
    tasks = []
    for i in range(n):
        scheduled = t0 + i / spec["read_rate"]
        await sleep_until(scheduled)
        after = rng.randrange(-1, max(size - BATCH, 0))
        tasks.append(asyncio.create_task(one(scheduled, after, i % len(tokens))))
    await asyncio.gather(*tasks)
    return {
        "log_size": size,
        "offered_per_s": spec["read_rate"],
        "requests": n,
        "achieved_per_s": len(latencies) / (last_done - t0),
        **latency_summary(latencies),
        **errors.summary(),
        **meter.stop(),
    }


HEALTH_RATE = 50.0
"""``GET /v1/health`` per second beside the read phases: no I/O, no auth, so its latency is
the serving process's own wait (event loop, GIL), whatever the store does."""


async def health_phase(spec: dict[str, Any]) -> Any:
    """``GET /v1/health`` at :data:`HEALTH_RATE`, open loop, for the phase's duration."""
    errors = Errors()
    latencies: list[float] = []
    n = int(HEALTH_RATE * spec["duration"])
    async with httpx.AsyncClient(base_url=spec["base"], timeout=30, limits=LIMITS) as client:

        async def one(scheduled: float) -> None:
            try:
                r = await client.get("/v1/health")
            except httpx.HTTPError as exc:
                errors.note(type(exc).__name__, str(exc))
                return
            if r.status_code != 200:
                errors.note(kind_of(r), r.text)
            else:
                latencies.append(time.monotonic() - scheduled)

        t0 = time.monotonic() + 0.05
        tasks = []
        for i in range(n):
            scheduled = t0 + i / HEALTH_RATE
            await sleep_until(scheduled)
            tasks.append(asyncio.create_task(one(scheduled)))
        await asyncio.gather(*tasks)
    return {"requests": n, **latency_summary(latencies), **errors.summary()}


async def read_sse(response: httpx.Response, arrivals: dict[str, float]) -> None:
    """Note when each event arrives on the stream, by event id (time of the chunk)."""
    buffer = b""
    async for chunk in response.aiter_raw():
        at = time.monotonic()
        buffer += chunk
        while b"\n\n" in buffer:
            block, buffer = buffer.split(b"\n\n", 1)
            for line in block.split(b"\n"):
                if line.startswith(b"data: "):
                    arrivals.setdefault(_id_of.decode(line[6:]).id, at)


async def sse_phase(spec: dict[str, Any], ph: dict[str, Any]) -> Any:
    """One subscriber; events posted open loop; latency = arrival − the POST's send time.

    Each member's first event is a warm-up, posted and awaited on the stream
    before measuring, so the subscription is known to be live.
    """
    coop, url, tokens, clients = spec["coop"], spec["events_url"], ph["tokens"], ph["clients"]
    after = await log_size(clients[0], coop) - 1
    arrivals: dict[str, float] = {}
    sent: dict[str, float] = {}
    errors = Errors()
    timeout = httpx.Timeout(10, read=None)
    async with (
        httpx.AsyncClient(base_url=spec["base"], timeout=timeout) as sse,
        sse.stream("GET", f"/v1/coops/{coop}/stream", params={"after": after},
                   headers={"authorization": tokens[0]}) as response,
    ):  # fmt: skip
        if response.status_code != 200:
            raise SystemExit(f"SSE subscribe answered {response.status_code}")
        reader = asyncio.create_task(read_sse(response, arrivals))
        warm = [chain[0] for chain in ph["chains"]]
        for m, line in enumerate(warm):
            if await post(clients[m], url, line, tokens[m], errors) is None:
                raise SystemExit(f"SSE warm-up post failed: {errors.samples}")
        warm_ids = {_id_of.decode(line).id for line in warm}
        deadline = time.monotonic() + 10
        while not warm_ids <= arrivals.keys() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        if not warm_ids <= arrivals.keys():
            raise SystemExit("SSE warm-up events never arrived on the stream")

        def on_send(line: bytes) -> None:
            sent[_id_of.decode(line).id] = time.monotonic()

        meter = Meter(spec["node_pid"])
        chains = [chain[1:] for chain in ph["chains"]]
        send = httpx_sender(clients, url, tokens, errors)
        await open_loop_posts(send, chains, spec["sse_rate"], on_send)
        wait_until = time.monotonic() + 5
        while not sent.keys() <= arrivals.keys() and time.monotonic() < wait_until:
            await asyncio.sleep(0.01)
        usage = meter.stop()
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
            await reader
    delivered = [arrivals[i] - t for i, t in sent.items() if i in arrivals]
    return {
        "rate_per_s": spec["sse_rate"],
        "posted": len(sent),
        "delivered": len(delivered),
        "missing": len(sent) - len(delivered),
        **latency_summary(delivered),
        **errors.summary(),
        **usage,
    }


class ReaderProcess:
    """The read and health phases in a process of their own.

    A reader and a batch poster are different clients; in one asyncio process a read's
    latency would include the poster's own work (encoding 100-event bodies, decoding the
    answers) ahead of it on this generator's event loop: the node is not what it waited
    for. The reader gets the members' tokens (it logs nobody in), opens its own clients,
    says ``ready``, and starts its phases when told ``go``.
    """

    def __init__(self, proc: asyncio.subprocess.Process, results: Path) -> None:
        self.proc = proc
        self.results = results

    @classmethod
    async def start(cls, spec: dict[str, Any], ph: dict[str, Any], job: Path) -> ReaderProcess:
        results = job.with_suffix(".out.json")
        job.write_text(json.dumps({**spec, "tokens": ph["tokens"], "out": str(results)}))
        proc = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--reads", str(job),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert proc.stdout is not None
        if (await proc.stdout.readline()).strip() != b"ready":
            raise SystemExit(f"the reader process did not start ({await proc.wait()})")
        return cls(proc, results)

    async def run(self) -> tuple[Any, Any]:
        """Start the phases now; their results (reads, health) once they end."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"go\n")
        await self.proc.stdin.drain()
        if await self.proc.wait() != 0:
            raise SystemExit(f"the reader process failed ({self.proc.returncode})")
        done = json.loads(self.results.read_text())
        return done["reads"], done["health"]


async def reads_main(job_path: str) -> None:
    """``--reads JOB``: the reader process's side of :class:`ReaderProcess`."""
    job = json.loads(Path(job_path).read_text())
    tokens = job["tokens"]
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                httpx.AsyncClient(base_url=job["base"], timeout=30, limits=LIMITS)
            )
            for _ in tokens
        ]
        ph = {"clients": clients, "tokens": tokens}
        for client in clients:  # each connected before the clock starts, as the poster's are
            (await client.get("/v1/health")).raise_for_status()
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        reads, health = await asyncio.gather(read_phase(job, ph), health_phase(job))
    Path(job["out"]).write_text(json.dumps({"reads": reads, "health": health}))


async def reads_alongside(
    spec: dict[str, Any], ph: dict[str, Any], batches: dict[str, Any] | None
) -> tuple[Any, Any, Any]:
    """The reads (and health probes) from a reader process, while this process posts
    ``batches`` (None: nothing); (reads, batch results or None, health)."""
    out = Path(spec["out"]).with_suffix(".reader.json")
    reader = await ReaderProcess.start(spec, ph, out)
    if batches is not None and spec.get("poster_nice"):  # the last phase: never undone
        os.nice(spec["poster_nice"])
    meter = Meter(spec["node_pid"])
    if batches is None:
        (reads, health), posted = await reader.run(), None
    else:
        (reads, health), posted = await asyncio.gather(reader.run(), batch_phase(spec, batches))
    whole = meter.stop()
    # Other processes' cores: the machine's busy time less the node's and both generators'.
    reader_cores = reads["load_cores"] * reads["wall_s"] / whole["wall_s"]
    reads["others_cores"] = max(0.0, whole["others_cores"] - reader_cores)
    return reads, posted, health


async def main(spec: dict[str, Any]) -> dict[str, Any]:
    """Log every member in with its own client, run the phases, close everything."""
    raw = msgspec.msgpack.decode(Path(spec["workload"]).read_bytes())
    phases: dict[str, dict[str, Any]] = {
        name: {"seeds": ph["seeds"], "chains": ph["chains"]} for name, ph in raw.items()
    }
    async with contextlib.AsyncExitStack() as stack:
        for ph in phases.values():
            # One client (pool) per member: one httpx pool shared by many
            # connections costs the generator several ms of CPU per request.
            ph["clients"] = [
                await stack.enter_async_context(
                    httpx.AsyncClient(base_url=spec["base"], timeout=30, limits=LIMITS)
                )
                for _ in ph["seeds"]
            ]
            jobs = [
                lambda c=c, s=s: login(c, s, spec["coop"])
                for c, s in zip(ph["clients"], ph["seeds"], strict=True)
            ]
            ph["tokens"] = await gather_limited(jobs, 8)
        step("login")
        results: dict[str, Any] = {}
        results["single"] = await single_phase(spec, phases["single"])
        step("single")
        if not spec.get("reads_only"):  # --writer-ab: no SSE phase
            results["sse"] = await sse_phase(spec, phases["sse"])
            step("sse")
        results["batch"] = await batch_phase(spec, phases["batch"])
        step("batch")
        results["reads"], _, results["health"] = await reads_alongside(spec, phases["single"], None)
        step("reads")
        # The same reads while batches post: what a reader waits for while the node writes.
        during = await reads_alongside(spec, phases["single"], phases["batch"])
        results["reads_writing"], results["batch_reading"], results["health_writing"] = during
        step("reads while writing")
    return results


if __name__ == "__main__":
    if sys.argv[1] == "--reads":
        asyncio.run(reads_main(sys.argv[2]))
    else:
        spec = json.loads(Path(sys.argv[1]).read_text())
        Path(spec["out"]).write_text(json.dumps(asyncio.run(main(spec))))
