"""``icn node run --detach`` returns once the node answers; ``icn node stop`` stops it.

The README's tour runs ``icn login`` on the line after starting the node, so
``--detach`` must not return before ``/v1/health`` answers; and ``node stop``
must not return before the node has let go of its data dir.
"""

from __future__ import annotations

import re
import stat
from pathlib import Path

import httpx
from support.nodes import free_port

from icn.interfaces.cli.node_detach import exited, running_pid


def test_detach_returns_when_healthy_and_stop_waits_for_the_end(
    icn, node_dir: Path, icn_process_env: dict
) -> None:
    port = free_port()
    env = {"ICN_JWT_SECRET": icn_process_env["ICN_JWT_SECRET"]}
    started = icn(
        "node", "run", "--detach", "--data-dir", str(node_dir), "--port", str(port), env=env
    )
    text = started.stdout.decode()
    pid = int(re.search(r"pid (\d+)", text).group(1))  # type: ignore[union-attr]
    assert f"http://127.0.0.1:{port}/v1" in text
    try:
        # No waiting here: the command returned, so the node answers now.
        health = httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=5).json()
        assert health["status"] == "ok"
        assert running_pid(node_dir) == pid
        log = node_dir / "node.log"
        assert stat.S_IMODE(log.stat().st_mode) == 0o600
        assert "ICN node did:icn:" in log.read_text()
    finally:
        stopped = icn("node", "stop", "--data-dir", str(node_dir))
    assert f"stopped node (pid {pid})" in stopped.stdout.decode()
    assert running_pid(node_dir) is None
    assert exited(pid), f"pid {pid} still runs after icn node stop returned"
    # A deliberate close of the NATS connections is not a lost server: no warning for it.
    assert "NATS: disconnected" not in (node_dir / "node.log").read_text()
    again = icn("node", "stop", "--data-dir", str(node_dir))
    assert "no node running" in again.stdout.decode()


def test_a_node_that_cannot_start_is_reported_with_its_log(icn, node_dir: Path) -> None:
    port = free_port()
    refused = icn(
        "node", "run", "--detach", "--no-replication", "--data-dir", str(node_dir),
        "--port", str(port), check=1,
    )  # fmt: skip
    err = refused.stderr.decode()
    assert "node-not-started" in err
    assert "ICN_JWT_SECRET" in err  # the child's own reason, from the end of node.log
    assert running_pid(node_dir) is None
