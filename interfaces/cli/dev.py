"""``icn dev cluster``: a replicated cluster on this machine in one command, for development.

The processes are :class:`icn.infrastructure.dev_cluster.DevCluster`'s; this
command chooses the folder (a temporary one, removed afterwards, unless
``--data-dir``), prints where everything is, and waits for Ctrl-C or SIGTERM,
after which nothing it started is left running.
"""

from __future__ import annotations

import shutil
import signal
import tempfile
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

from icn.interfaces.cli.common import err, out

if TYPE_CHECKING:
    from icn.infrastructure.dev_cluster import DevCluster

app = typer.Typer(help="Tools for developing ICN.", no_args_is_help=True)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM stops the cluster exactly as Ctrl-C does."""
    raise KeyboardInterrupt


@app.command("cluster")
def cluster(
    nodes: Annotated[
        int, typer.Option("--nodes", min=1, max=9, help="How many nodes (ports PORT, PORT+1, ...).")
    ] = 3,
    postgres: Annotated[
        bool,
        typer.Option(
            "--postgres", help="The last node keeps its store in PostgreSQL (the pgserver wheel)."
        ),
    ] = False,
    cluster_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            file_okay=False,
            help="Keep the cluster (stores, secrets) in this folder, to start it again later"
            " (default: a temporary folder, removed when the cluster stops).",
        ),
    ] = None,
    port: Annotated[
        int,
        typer.Option("--port", min=0, max=65535, help="The first node's HTTP port (0: any free)."),
    ] = 8080,
    coop: Annotated[str, typer.Option("--coop", help="The demo coop's id.")] = "demo",
) -> None:
    """Three NATS servers (JetStream cluster, R3 streams, users required), NODES nodes on
    them and a demo coop served by all, until Ctrl-C; then everything is stopped."""
    from icn.infrastructure.dev_cluster import DevCluster, DevClusterError
    from icn.infrastructure.replication.nats_server import NatsServerError
    from icn.interfaces.cli.writes import check_coop_id

    check_coop_id(coop)
    temporary = cluster_dir is None
    base = Path(tempfile.mkdtemp(prefix="icn-cluster-")) if cluster_dir is None else cluster_dir
    dev = DevCluster(base, nodes=nodes, postgres=postgres, http_port=port, coop=coop)
    # Both explicitly: a shell script's background job starts with SIGINT ignored.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    failed = ""
    try:
        out.print(f"starting {nodes} nodes on 3 NATS servers in {dev.files.base} ...", markup=False)
        dev.start()
        _print_cluster(dev, temporary)
        while True:
            time.sleep(1)
            for node in dev.nodes:
                if node.proc is not None and node.proc.poll() is not None:
                    out.print(
                        f"{node.name} exited with code {node.proc.returncode}: see {node.log_path}",
                        markup=False,
                    )
                    node.proc = None
    except KeyboardInterrupt:
        pass
    except (DevClusterError, NatsServerError) as exc:
        failed = str(exc)
    finally:
        # A second Ctrl-C must not cut the stopping short and leave processes behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        started = dev.nats is not None
        if started:
            out.print("stopping: nodes, then NATS" + (", then PostgreSQL" if postgres else ""))
        dev.stop()
        if temporary:
            shutil.rmtree(base, ignore_errors=True)
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if started:
        kept = f"; removed {base}" if temporary else f"; kept {base}"
        out.print(f"stopped{kept}", markup=False)
    if failed:
        err.print(f"error (dev-cluster-failed): {failed}", markup=False, highlight=False)
        raise typer.Exit(1)


def _print_cluster(dev: DevCluster, temporary: bool) -> None:
    f = dev.files
    keep = "temporary: removed when stopped" if temporary else "kept: start again with --data-dir"
    out.print(f"ICN dev cluster in {f.base} ({keep})", markup=False)
    out.print("NATS (JetStream cluster, coop streams R3):", markup=False)
    for index, url in enumerate(dev.nats_urls, start=1):
        out.print(f"  n{index}  {url}", markup=False)
    for node in dev.nodes:
        out.print(f"{node.name} ({node.database}, pid {node.pid}):", markup=False)
        out.print(f"  API:       {node.base_url}/v1", markup=False)
        out.print(f"  dashboard: {node.base_url}/", markup=False)
        out.print(f"  metrics:   {node.metrics_url}", markup=False)
        out.print(f"  data dir:  {node.data_dir}  log: {node.log_path}", markup=False)
    if dev.postgres is not None:
        out.print(f"PostgreSQL: {dev.postgres.url}", markup=False)
    out.print("credential files (secrets are not printed):", markup=False)
    out.print(f"  keystore passphrase:  {f.passphrase}  (ICN_PASSPHRASE_FILE)", markup=False)
    out.print(f"  API token secret:     {f.jwt_secret}  (ICN_JWT_SECRET_FILE)", markup=False)
    out.print(
        f"  NATS node user:       icn-node, password in {f.nats_password}"
        " (ICN_NATS_USER, ICN_NATS_PASSWORD_FILE)",
        markup=False,
    )
    out.print(f"  NATS users:           {f.nats_users}", markup=False)
    out.print(
        f"demo coop {dev.coop!r}: seeded on node1, served by all {len(dev.nodes)} nodes"
        " (member keys custodial in node1's keystore)",
        markup=False,
    )
    out.print("cluster ready; Ctrl-C stops everything", markup=False)
