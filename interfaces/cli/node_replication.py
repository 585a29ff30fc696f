"""``icn node status`` and ``icn node sync``: replication seen from the command line.

Both work on a data directory whether or not its node is running. NATS is
the one given (``--nats`` / ``ICN_NATS_URL``), else the node's own
nats-server if it is running; ``sync`` starts that server for the duration
of the command when nothing runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from typing import Annotated, Any

import nats
import typer
from nats.aio.client import Client
from rich.table import Column, Table

from icn.application.errors import ApplicationError
from icn.application.intake import Intake, IntakeCounts
from icn.application.relay import LeafRuns, OutboxRelay
from icn.infrastructure.replication.config import ACK_WAIT_S
from icn.infrastructure.replication.connection import (
    close,
    connect,
    credentials_for,
    durable_for,
    nats_urls,
)
from icn.infrastructure.replication.consumer import Delivered, DurableCoopConsumer
from icn.infrastructure.replication.dead_letters import TRANSIENT_ERRORS, record_dead_letter
from icn.infrastructure.replication.local_nats import (
    local_nats_server,
    running_local_nats,
    stop_orphaned_nats,
)
from icn.infrastructure.replication.nats_server import LocalNatsServer
from icn.infrastructure.replication.numbers import coop_numbers
from icn.infrastructure.replication.outbox import JetStreamOutbox
from icn.infrastructure.replication.publisher import JetStreamPublisher
from icn.infrastructure.replication.streams import default_replicas, ensure_stream
from icn.infrastructure.settings import Settings
from icn.infrastructure.store.parked import SqlReplicationState
from icn.interfaces.bootstrap import Node, open_node
from icn.interfaces.cli.common import DataDir, Json, out, print_json, progress_bar, settings_for

Nats = Annotated[
    str | None,
    typer.Option(
        "--nats",
        help="NATS server URL(s), comma-separated (default: ICN_NATS_URL, else the node's own).",
        show_default=False,
    ),
]
Serve = Annotated[
    list[str] | None,
    typer.Option("--serve", help="Also a coop this node does not hold yet (repeatable)."),
]


class ReplicationUnavailable(ApplicationError):
    """NATS could not be reached, or catching up did not finish in time."""

    code = "replication-unavailable"


async def _quiet(_exc: Exception) -> None:
    return None


async def _close_quietly(nc: Client) -> None:
    """Close without the "disconnected" warning the connection logs for a lost server."""
    logger = logging.getLogger("icn.infrastructure.replication.connection")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        await close(nc)
    finally:
        logger.setLevel(level)


def _served(node: Node, settings: Settings, serve: list[str] | None) -> list[str]:
    return list(dict.fromkeys([*node.store.coops(), *settings.serve, *(serve or [])]))


def status(nats_url: Nats = None, data_dir: DataDir = None, json: Json = False) -> None:
    """Per coop: log size, stream position, consumer lag, outbox backlog, parked, quarantined,
    rejected, dead letters; ``degraded`` while a coop has dead letters."""
    settings = settings_for(data_dir)
    node = open_node(settings)
    try:
        report = asyncio.run(_status(node, settings, nats_url))
    finally:
        node.close()
    if json:
        print_json(report)
        return
    nats_line = report["nats"]
    if not report["replication"]:
        out.print("replication: off (ICN_REPLICATION=false)")
    if nats_line["url"] is None:
        where = "NATS: the node's own server is not running (it starts with the node)"
    elif nats_line["connected"]:
        where = f"NATS {nats_line['url']}: connected"
    else:
        where = f"NATS {nats_line['url']}: NOT reachable ({nats_line.get('error', '')})"
    out.print(f"node {report['node']}: {report['status']}", markup=False)
    out.print(where, markup=False)
    # Short headers, and a coop name that is never cut: the table must fit a terminal of
    # 80 columns (a CI log, a phone's SSH app); --json has the long names.
    names = [str(c) for c in report["coops"]]
    table = Table(
        Column("coop", no_wrap=True, min_width=max((len(n) for n in names), default=4)),
        "status", "size", "stream", "lag", "outbox", "parked", "forks", "rejected", "dead",
        box=None,
    )  # fmt: skip
    for coop, c in report["coops"].items():
        table.add_row(
            coop,
            c.get("status", "ok"),
            str(c["size"]),
            _num(c.get("stream_seq")),
            _num(c.get("consumer_lag")),
            _num(c.get("outbox_backlog")),
            str(c.get("parked", 0)),
            str(c.get("quarantined", 0)),
            str(c.get("rejected", 0)),
            str(c.get("dead_letters", 0)),
        )
    out.print(table)


def _num(value: int | None) -> str:
    return "?" if value is None else str(value)


async def _status(node: Node, settings: Settings, nats_url: str | None) -> dict[str, Any]:
    urls = nats_urls(nats_url or settings.nats_url)
    login = credentials_for(settings.data_dir, external=urls is not None)
    if urls is None and (local := running_local_nats(settings.data_dir)):
        urls = [local]
    nc: Client | None = None
    error = ""
    if urls:
        try:
            nc = await nats.connect(
                servers=urls, allow_reconnect=False, connect_timeout=2, error_cb=_quiet,
                **({"user": login.user, "password": login.password} if login else {}),
            )  # fmt: skip
        except Exception as exc:
            error = str(exc) or type(exc).__name__
    state = SqlReplicationState(node.store)
    durable = durable_for(node.node_did, node.store.get_meta)
    coops: dict[str, Any] = {}
    try:
        for coop in _served(node, settings, None):
            numbers = await coop_numbers(nc, state, coop, durable)
            coops[coop] = {"size": node.store.tree_size(coop), **_plain(numbers)}
    finally:
        state.close()
        if nc is not None:
            await close(nc)
    degraded = any(c.get("dead_letters") for c in coops.values())
    return {
        "node": node.node_did,
        "status": "degraded" if degraded else "ok",
        "replication": settings.replication,
        "nats": {
            "url": ",".join(urls) if urls else None,
            "connected": nc is not None,
            **({"error": error} if error else {}),
        },
        "coops": coops,
    }


def _plain(struct: Any) -> dict[str, Any]:
    import msgspec

    return dict(msgspec.to_builtins(struct))


def sync(
    nats_url: Nats = None,
    serve: Serve = None,
    timeout: Annotated[
        float, typer.Option("--timeout", min=1, help="Give up after this many seconds.")
    ] = 600,
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """Catch up: publish this node's unsent events, then commit what the streams hold.

    Consumes from the node's durable position until every message each stream
    held when the command started is committed (the lag is then 0, unless
    other nodes kept publishing meanwhile; ``lag`` in the output says).
    """
    settings = settings_for(data_dir)
    node = open_node(settings, writer=True)
    try:
        report = asyncio.run(_sync(node, settings, nats_url, serve, timeout))
    finally:
        node.close()
    if json:
        print_json(report)
        return
    for coop, c in report["coops"].items():
        out.print(
            f"{coop}: published {c['published']}, received {c['received']} "
            f"(accepted {c['accepted']}, duplicates {c['duplicates']}, parked {c['parked']}, "
            f"rejected {c['rejected']}, forks {c['forks']}), lag {c['lag']}",
            markup=False,
        )


@contextlib.asynccontextmanager
async def _nats_for(settings: Settings, nats_url: str | None) -> Any:
    """A connection to the configured NATS, or to the node's own (started if need be)."""
    urls = nats_urls(nats_url or settings.nats_url)
    login = credentials_for(settings.data_dir, external=urls is not None)
    local: LocalNatsServer | None = None
    if urls is None:
        running = running_local_nats(settings.data_dir)
        if running:
            urls = [running]
        else:

            def start() -> LocalNatsServer:
                stop_orphaned_nats(settings.data_dir)
                return local_nats_server(settings.data_dir)

            local = await asyncio.to_thread(start)
            local.spawn()  # on this (main) thread: its death signal lasts as long as we do
            await asyncio.to_thread(local.wait_ready)
            urls = [local.url]
    try:
        try:
            nc = await asyncio.wait_for(connect(urls, name="icn-sync", credentials=login), 10)
        except TimeoutError:
            raise ReplicationUnavailable(f"NATS is not reachable at {','.join(urls)}") from None
        try:
            yield nc, ",".join(urls)
        finally:
            await _close_quietly(nc)
    finally:
        if local is not None:
            await asyncio.to_thread(local.stop)


async def _sync(
    node: Node,
    settings: Settings,
    nats_url: str | None,
    serve: list[str] | None,
    timeout: float,
) -> dict[str, Any]:
    coops = _served(node, settings, serve)
    state = SqlReplicationState(node.store)
    # No relay runs while this consumes (it published before): nobody would ask the intake
    # which ids came from the stream, so it remembers none (200,000 would hold 22 MiB).
    intake = Intake(
        node.append, state, node.clock_ms,
        max_rejected=settings.rejected_max, remember=0,
    )  # fmt: skip
    durable = durable_for(node.node_did, node.store.get_meta)
    totals = {coop: IntakeCounts() for coop in coops}
    published: dict[str, int] = {}
    lags: dict[str, int] = {}
    give_up_at = time.monotonic() + timeout
    try:
        async with _nats_for(settings, nats_url) as (nc, url):
            # Nor does anything here ask the relay what it published (100,000 ids). The
            # leaves the intake appends are noted as runs: the last pump passes them.
            received = LeafRuns()
            relay = OutboxRelay(
                state, state, JetStreamOutbox(JetStreamPublisher(nc)),
                received_at=received.holds, remember=0,
            )  # fmt: skip
            for coop in coops:
                await ensure_stream(nc.jetstream(), coop, default_replicas(nc))
                published[coop] = (await relay.pump(coop)).published
                await relay.flush(coop)

            async def dead_letter(coop: str, d: Delivered, tries: int, exc: BaseException) -> None:
                await asyncio.to_thread(
                    record_dead_letter, state, coop, d, tries, exc, settings.rejected_max,
                    node.clock_ms(),
                )  # fmt: skip

            def consumer_of(coop: str) -> DurableCoopConsumer:
                return DurableCoopConsumer(
                    nc, durable, coop, ack_wait=ACK_WAIT_S,
                    dead_letter=functools.partial(dead_letter, coop),
                    max_attempts=settings.dead_letter_after, transient=TRANSIENT_ERRORS,
                )  # fmt: skip

            consumers = {coop: consumer_of(coop) for coop in coops}
            js = nc.jetstream()
            # Catch up to where each stream is now; events published meanwhile (other
            # nodes keep writing) are the running node's business, not this command's.
            targets: dict[str, int] = {}
            for coop, consumer in consumers.items():
                await consumer.ensure()  # create or bind
                targets[coop] = (await js.stream_info(consumer.stream)).state.last_seq
                lags[coop] = await consumer.pending()

            async def behind(coop: str) -> int:
                info = await js.consumer_info(consumers[coop].stream, durable)
                floor = info.ack_floor.stream_seq if info.ack_floor else 0
                lags[coop] = (info.num_pending or 0) + (info.num_ack_pending or 0)
                return 0 if floor >= targets[coop] else lags[coop]

            stop = asyncio.Event()
            node.append.add_commit_listener(received.committed)  # only the intake writes now
            with progress_bar("sync", sum(lags.values()), lines_every_s=5) as advance:
                skew_ms = settings.max_clock_skew_s * 1000

                async def handle(coop: str, batch: list[Delivered]) -> None:
                    messages = [d.data for d in batch]
                    times = [d.trusted_ms(skew_ms) for d in batch]
                    receive = functools.partial(
                        intake.receive, stream_seq=lambda i: batch[i].stream_seq
                    )
                    counts = await asyncio.to_thread(receive, coop, messages, times)
                    totals[coop].add(counts)
                    advance(len(batch))

                tasks = [
                    asyncio.create_task(c.run(functools.partial(handle, coop), stop))
                    for coop, c in consumers.items()
                ]
                try:
                    while True:
                        remaining = [await behind(coop) for coop in coops]
                        if not any(remaining):
                            break
                        if time.monotonic() > give_up_at:
                            raise ReplicationUnavailable(
                                f"still {sum(remaining)} messages behind after {timeout:g} s"
                            )
                        await asyncio.sleep(0.1)
                finally:
                    stop.set()
                    await asyncio.gather(*tasks, return_exceptions=True)
                    node.append.remove_commit_listener(received.committed)
            # Past what the intake appended, so no later relay publishes it back to the
            # stream it came from (a second copy once the duplicate window has passed);
            # whatever another process appended meanwhile goes out now.
            for coop in coops:
                published[coop] += (await relay.pump(coop)).published
                await relay.flush(coop)
    finally:
        state.close()
    return {
        "nats": url,
        "coops": {
            coop: {"published": published.get(coop, 0), "lag": lags.get(coop, 0)}
            | totals[coop].as_dict()
            for coop in coops
        },
    }
