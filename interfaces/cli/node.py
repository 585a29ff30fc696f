"""``icn node``: create a node's data directory and run it."""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path
from typing import Annotated, Any

import typer

from icn.application.checkpoint_schedule import CheckpointSchedule
from icn.application.checkpoints import CheckpointPolicy
from icn.infrastructure.passphrase import resolve_passphrase
from icn.interfaces.bootstrap import (
    CATCH_UP_PROGRESS_FROM,
    NODE_KEY,
    Node,
    build_node,
    init_node,
    is_initialised,
)
from icn.interfaces.cli.common import (
    DataDir,
    Json,
    data_dir_of,
    err,
    out,
    print_json,
    progress_bar,
    settings_for,
)
from icn.interfaces.cli.node_replication import Nats, Serve, status, sync

app = typer.Typer(help="Run and manage this node.", no_args_is_help=True)
app.command("status")(status)
app.command("sync")(sync)


@app.command("init")
def init(data_dir: DataDir = None, json: Json = False) -> None:
    """Create the store and the node's own identity (passphrase from ICN_PASSPHRASE)."""
    settings = settings_for(data_dir)
    existed = is_initialised(settings)
    did = init_node(settings)
    if json:
        print_json({"data_dir": str(settings.data_dir), "node_did": did, "created": not existed})
    elif existed:
        out.print(f"node already initialised in {settings.data_dir}: {did}")
    else:
        out.print(f"initialised node {did} in {settings.data_dir}")


@app.command("run")
def run(
    data_dir: DataDir = None,
    host: Annotated[
        str | None,
        typer.Option("--host", envvar="ICN_HTTP_HOST", help="Address to listen on (127.0.0.1)."),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(
            "--port", envvar="ICN_HTTP_PORT", min=0, max=65535, help="Port to listen on (8080)."
        ),
    ] = None,
    nats: Nats = None,
    serve: Serve = None,
    no_replication: Annotated[
        bool, typer.Option("--no-replication", help="No NATS: serve this node alone.")
    ] = False,
    detach: Annotated[
        bool,
        typer.Option(
            "--detach",
            help="Run in the background (log: DATA_DIR/node.log); return once /v1/health "
            "answers. Stop it with `icn node stop`.",
        ),
    ] = False,
    wait: Annotated[
        float, typer.Option("--wait", min=1, help="With --detach: seconds to wait for health.")
    ] = 120,
    executor: Annotated[
        bool,
        typer.Option(
            "--executor",
            help="Also run the compute tasks placed on this node, in every coop where it is "
            "a registered executor (docs/compute.md).",
        ),
    ] = False,
) -> None:
    """Serve the node in the foreground until SIGINT or SIGTERM (or in the background)."""
    if detach and executor:
        raise typer.BadParameter("not with --detach", param_hint="'--executor'")
    if detach:
        run_detached(data_dir, host, port, nats, serve or [], no_replication, wait)
        return
    import uvicorn

    from icn.interfaces.http.app import create_app
    from icn.interfaces.http.auth import jwt_secret
    from icn.interfaces.http.interpreter import settle_for_serving
    from icn.interfaces.http.rate_limit import RateLimits
    from icn.interfaces.http.server import ForegroundServer
    from icn.interfaces.http.telemetry import node_log_config
    from icn.interfaces.writer_process import WRITER_DIED, WriterProcess

    settings = settings_for(data_dir)
    secret = jwt_secret()  # refuse to start without a strong token secret
    served = build_node(
        settings,
        nats=nats,
        serve=serve or [],
        replication=not no_replication,
        writer_process=settings.writer_process,
    )
    node, replication, writer = served.node, served.replication, served.writer
    try:
        read_models_before_serving(node)
        passphrase = resolve_passphrase()
        bind_host = host or settings.http_host
        bind_port = settings.http_port if port is None else port
        # Bound before anything picks a port of its own (the embedded nats-server's is
        # any free one): a port chosen free by the caller stays this node's.
        listening = _listen(bind_host, bind_port)
        bind_port = listening.getsockname()[1]
        if isinstance(writer, WriterProcess):
            writer.passphrase = passphrase  # it signs the checkpoints
            writer.on_death = _stop_serving
            writer.begin()  # it builds its half while this process builds the app
        key = node.keystore.unlock(NODE_KEY, passphrase)
        policy = CheckpointPolicy(settings.checkpoint_every, settings.checkpoint_seconds)
        schedule: CheckpointSchedule | None = None
        if not isinstance(writer, WriterProcess):
            schedule = CheckpointSchedule(node.store, node.checkpoints(key), policy, node.clock_ms)
        app = create_app(
            node,
            schedule,
            jwt_secret=secret,
            cors_origins=settings.cors_origins,
            behind_tls=settings.behind_tls,
            challenge_ttl_s=settings.auth_challenge_ttl_s,
            rate_limits=RateLimits.from_settings(settings),
            replication=replication,
            feed=served.feed,
            writer=writer,
        )
        config = uvicorn.Config(
            app,
            host=bind_host,
            port=bind_port,
            log_level="info",
            access_log=settings.http_access_log,
            timeout_graceful_shutdown=10,
            **node_log_config(),
        )
        replication_url = replication.url if replication else "off"
        if isinstance(writer, WriterProcess):
            writer.start()  # before serving: what stops it is told as the CLI tells errors
            replication_url = writer.replication_url or "off"
        out.print(f"ICN node {node.node_did}")
        out.print(f"  data:   {settings.data_dir} ({node.store.database.redacted()})")
        out.print(f"  API:    http://{bind_host}:{bind_port}/v1  (health: /v1/health)")
        out.print(f"  OpenAPI: http://{bind_host}:{bind_port}/schema")
        out.print(f"  checkpoints every {policy.every_events} events or {policy.every_seconds:g} s")
        out.print(f"  replication: {replication_url}")
        if isinstance(writer, WriterProcess):
            out.print(f"  writer: process {writer.pid}")
        settle_for_serving()  # reads must not wait on collections of the start-up heap
        executors = _executors(executor, key, bind_port, node, settings.data_dir)
        try:
            ForegroundServer(config).run(sockets=[listening])
        finally:
            if executors is not None:
                executors.stop()
    finally:
        if writer is not None:
            writer.stop()  # already stopped by the app, unless serving never began
        node.close()
    if isinstance(writer, WriterProcess) and writer.failed:
        err.print(f"error: the node's writer process (pid {writer.pid}) died; the node stopped")
        raise typer.Exit(WRITER_DIED)


def _listen(host: str, port: int) -> socket.socket:
    """The API's listening socket, bound now (uvicorn listens on it once it serves)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        err.print(f"error: cannot listen on {host}:{port}: {exc.strerror or exc}")
        raise typer.Exit(1) from None
    return sock


def _stop_serving() -> None:
    """The writer died: stop serving as on SIGTERM (``run`` then exits non-zero)."""
    os.kill(os.getpid(), signal.SIGTERM)


def _executors(on: bool, key: Any, port: int, node: Any, home: Path) -> Any:
    """``--executor``: the thread that runs this node's placed tasks through its own API."""
    if not on:
        return None
    if port == 0:
        raise typer.BadParameter("--executor needs a fixed port", param_hint="'--port'")
    from icn.interfaces.cli.compute_executor import NodeExecutors

    return NodeExecutors(key, f"http://127.0.0.1:{port}", node.store, home / "compute").start()


def run_detached(
    data_dir: Path | None,
    host: str | None,
    port: int | None,
    nats: str | None,
    serve: list[str],
    no_replication: bool,
    wait: float,
) -> None:
    """``icn node run`` with the same options as a background process; print its pid and URL."""
    from icn.interfaces.cli.node_detach import LOG_NAME, health_url, start_detached

    settings = settings_for(data_dir)
    bind_host = host or settings.http_host
    bind_port = settings.http_port if port is None else port
    if bind_port == 0:
        raise typer.BadParameter("--detach needs a fixed port to wait on", param_hint="'--port'")
    home = settings.data_dir.resolve()
    args = ["--data-dir", str(home), "--host", bind_host, "--port", str(bind_port)]
    args += ["--nats", nats] if nats else []
    for coop in serve:
        args += ["--serve", coop]
    args += ["--no-replication"] if no_replication else []
    url = health_url(bind_host, bind_port)
    pid = start_detached(args, home, url, wait)
    base = url.removesuffix("/v1/health")
    out.print(f"node running in the background: pid {pid}, {base}/v1")
    out.print(f"  log: {home / LOG_NAME}; stop it with: icn node stop")


@app.command("stop")
def stop(
    data_dir: DataDir = None,
    timeout: Annotated[
        float, typer.Option("--timeout", min=1, help="Seconds to wait for it to stop.")
    ] = 30,
) -> None:
    """Stop the node running on this data dir (SIGTERM to the pid holding its lock) and wait
    until it has stopped; nothing to do (exit 0) when none runs."""
    from icn.interfaces.cli.node_detach import stop as stop_node

    home = data_dir_of(data_dir)
    pid = stop_node(home, timeout)
    if pid is None:
        out.print(f"no node running on {home}")
    else:
        out.print(f"stopped node (pid {pid})")


def read_models_before_serving(node: Node) -> None:
    """Bring the read models up to the whole log before serving: from then on the writer
    projects each commit before answering it, and reads no longer catch up themselves.

    Usually nothing or a few events. Read models dropped at open (an earlier layout) are
    rebuilt from the log, and a large import made while the node was stopped is applied,
    with progress: a bar on a terminal, a line every 5 s otherwise.
    """
    from icn.infrastructure.store.read_models import ReadSide

    side = ReadSide(node.store)
    try:
        behind = 0
        for coop in node.store.coops():  # a projection without a position starts at -1
            positions = side.models.positions(coop)
            start = min(positions.get(p.name, -1) for p in side.runner.projections)
            behind += node.store.tree_size(coop) - 1 - start
        if node.rebuilding:
            out.print(
                f"  read models: new layout for {', '.join(node.rebuilding)}; "
                "rebuilding from the log"
            )
        elif behind < CATCH_UP_PROGRESS_FROM:
            side.runner.catch_up()
            return
        with progress_bar("read models", behind, lines_every_s=5) as advance:
            report = side.runner.catch_up(on_progress=advance)
        out.print(f"  read models: {report.events:,} events in {report.seconds:,.1f} s")
    finally:
        side.close()
    node.rebuilding = []
