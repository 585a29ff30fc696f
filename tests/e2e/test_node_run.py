"""``icn node run``: serves health, checkpoints on its own, stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from support.coops import two_coop_log, write_jsonl
from support.nodes import free_port


def _wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        try:
            return httpx.get(url, timeout=1).json()
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("node did not become healthy")


@pytest.fixture
def log(tmp_path: Path) -> Path:
    """food-coop (29 events) and bike-coop (2 events), every line ok for a node."""
    return write_jsonl(tmp_path / "coops.jsonl", two_coop_log(29))


def test_a_running_node_serves_health_and_checkpoints_every_n_events(
    icn, node_dir: Path, log: Path, icn_path: str, icn_process_env: dict
) -> None:
    port = free_port()
    env = dict(icn_process_env, ICN_CHECKPOINT_EVERY="5", ICN_CHECKPOINT_SECONDS="3600")
    icn("log", "import", str(log), "--data-dir", str(node_dir))
    proc = subprocess.Popen(
        [icn_path, "node", "run", "--data-dir", str(node_dir), "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        health = _wait_healthy(f"http://127.0.0.1:{port}/v1/health", proc)
        assert health["status"] == "ok"
        assert health["node"].startswith("did:icn:")
        assert health["uptime_s"] >= 0
        # Another process (the CLI) may not write the store while the node runs: exit 2.
        refused = icn("log", "import", str(log), "--data-dir", str(node_dir), check=2)
        assert f"another node (pid {proc.pid})".encode() in refused.stderr
        deadline = time.monotonic() + 20
        checkpoints: list = []
        while time.monotonic() < deadline and not checkpoints:
            time.sleep(0.5)
            audit = json.loads(
                icn(
                    "audit", "verify", "--coop", "food-coop", "--data-dir", str(node_dir), "--json"
                ).stdout
            )
            checkpoints = [c for c in audit["checkpoints"] if c["own"]]
        assert checkpoints, "the node issued no checkpoint after 29 new events (N=5)"
        assert checkpoints[0]["size"] == 29 and checkpoints[0]["matches"]
        ready = httpx.get(f"http://127.0.0.1:{port}/v1/ready", timeout=5).json()
        assert ready["coops"]["food-coop"]["size"] == 30
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err.decode()
    assert b"Traceback" not in err
    assert f"http://127.0.0.1:{port}".encode() in out


def test_a_checkpoint_is_also_issued_after_t_seconds(
    icn, node_dir: Path, log: Path, icn_path: str, icn_process_env: dict
) -> None:
    port = free_port()
    env = dict(icn_process_env, ICN_CHECKPOINT_EVERY="100000", ICN_CHECKPOINT_SECONDS="1")
    icn("log", "import", str(log), "--data-dir", str(node_dir))
    proc = subprocess.Popen(
        [icn_path, "node", "run", "--data-dir", str(node_dir), "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_healthy(f"http://127.0.0.1:{port}/v1/health", proc)
        deadline = time.monotonic() + 20
        sizes: list[int] = []
        while time.monotonic() < deadline and len(sizes) < 2:
            time.sleep(0.5)
            audit = json.loads(
                icn(
                    "audit", "verify", "--coop", "bike-coop", "--data-dir", str(node_dir), "--json"
                ).stdout
            )
            sizes = [c["size"] for c in audit["checkpoints"] if c["own"]]
            food = json.loads(
                icn(
                    "audit", "verify", "--coop", "food-coop", "--data-dir", str(node_dir), "--json"
                ).stdout
            )
            sizes += [c["size"] for c in food["checkpoints"] if c["own"]]
        assert sorted(sizes) == [2, 29]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=20)
    assert proc.returncode == 0


def test_the_node_refuses_to_start_without_a_strong_token_secret(
    icn, node_dir: Path, icn_path: str, icn_process_env: dict
) -> None:
    env = dict(icn_process_env, ICN_JWT_SECRET="too-short")
    proc = subprocess.run(
        [icn_path, "node", "run", "--data-dir", str(node_dir), "--port", str(free_port())],
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert b"ICN_JWT_SECRET" in proc.stderr and b"Traceback" not in proc.stderr
