"""``icn.toml``: a real node takes its port from it; ``icn config show`` says where each value
came from and prints no secret; a bad file stops the node before it serves."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import httpx
from support.nodes import free_port

JWT_IN_FILE = "jwt-secret-from-the-config-file-0123456789"


def _wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        try:
            return httpx.get(url, timeout=1).json()
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("node did not become healthy")


def test_a_node_takes_its_port_and_secrets_from_icn_toml(
    node_dir: Path, icn_path: str, icn_process_env: dict
) -> None:
    port = free_port()
    secrets = node_dir / "secrets"
    secrets.mkdir(mode=0o700)
    (secrets / "passphrase").write_text(icn_process_env["ICN_PASSPHRASE"] + "\n")
    (secrets / "passphrase").chmod(0o600)
    (node_dir / "icn.toml").write_text(
        f'http_port = {port}\njwt_secret = "{JWT_IN_FILE}"\nreplication = false\n'
        'passphrase_file = "secrets/passphrase"\n'  # the node key's, relative to the file
    )
    env = dict(icn_process_env)
    del env["ICN_JWT_SECRET"], env["ICN_PASSPHRASE"]  # the file's must be the ones used
    proc = subprocess.Popen(
        [icn_path, "node", "run", "--data-dir", str(node_dir)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        health = _wait_healthy(f"http://127.0.0.1:{port}/v1/health", proc)
        assert health["status"] == "ok"
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err.decode()
    assert f"http://127.0.0.1:{port}".encode() in out
    assert JWT_IN_FILE.encode() not in out + err


def test_the_environment_wins_over_the_file(
    node_dir: Path, icn_path: str, icn_process_env: dict
) -> None:
    in_file, in_env = free_port(), free_port()
    (node_dir / "icn.toml").write_text(f"http_port = {in_file}\nreplication = false\n")
    env = dict(icn_process_env, ICN_HTTP_PORT=str(in_env))
    proc = subprocess.Popen(
        [icn_path, "node", "run", "--data-dir", str(node_dir)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert _wait_healthy(f"http://127.0.0.1:{in_env}/v1/health", proc)["status"] == "ok"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)
    assert proc.returncode == 0


def test_config_show_names_sources_and_redacts_secrets(icn, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "icn.toml").write_text(
        'http_port = 9191\njwt_secret = "a-very-secret-jwt-value-of-32-bytes-or-more"\n'
        'database_url = "postgresql://icn:pg-password-42@db/icn"\n'
    )
    env = {"ICN_DATA_DIR": str(data), "ICN_CHECKPOINT_EVERY": "9"}
    shown = json.loads(icn("config", "show", "--json", env=env).stdout)
    assert shown["config_file"] == str(data / "icn.toml")
    rows = {r["key"]: r for r in shown["settings"]}
    assert (rows["http_port"]["value"], rows["http_port"]["source"]) == (9191, "file")
    assert (rows["checkpoint_every"]["value"], rows["checkpoint_every"]["source"]) == (9, "env")
    assert (rows["http_host"]["value"], rows["http_host"]["source"]) == ("127.0.0.1", "default")
    assert rows["passphrase"]["source"] == "env" and rows["passphrase"]["value"] == "***"
    assert rows["jwt_secret"]["value"] == "***"
    assert rows["database_url"]["value"] == "postgresql://icn:***@db/icn"
    text = icn("config", "show", env=env)
    for secret in (b"a-very-secret-jwt", b"pg-password-42", b"e2e-test-passphrase"):
        assert secret not in text.stdout + text.stderr
    assert b"http_port" in text.stdout and b"[file]" in text.stdout


def test_a_bad_file_is_refused_naming_the_file_and_key(
    icn, node_dir: Path, icn_path: str, icn_process_env: dict
) -> None:
    path = node_dir / "icn.toml"
    path.write_text("http_port = 8081\nhttp_prot = 8082\n")
    refused = icn("config", "show", "--data-dir", str(node_dir), check=1)
    assert f"{path}: unknown key 'http_prot'".encode() in refused.stderr
    proc = subprocess.run(
        [icn_path, "node", "run", "--data-dir", str(node_dir)],
        env=icn_process_env,
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert b"Traceback" not in proc.stderr
    assert b"unknown key 'http_prot'" in proc.stderr
