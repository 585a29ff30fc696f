"""One node per data dir; its nats-server dies with it, sees no secret; nobody else reads it.

Real ``icn`` processes on a real data dir: a second writer is refused with
exit 2 while a node runs, readers still work, the lock of a node killed with
SIGKILL is taken over, the node's nats-server does not outlive it and never
sees ``ICN_PASSPHRASE`` or ``ICN_JWT_SECRET``, and loose modes are fixed at start.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support.coops import two_coop_log, write_jsonl
from support.nodes import free_port

from icn.infrastructure.data_dir import DataDirBusy, DataDirLock

PASSPHRASE_MARK = "e2e-test-passphrase"


def _alive(pid: int) -> bool:
    """Running (a zombie waiting to be reaped counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _start(icn_path: str, env: dict, data: Path, *extra: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen(
        [icn_path, "node", "run", "--data-dir", str(data), "--port", str(port), *extra],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/ready", timeout=1).status_code == 200:
                return proc, port
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "node did not become ready"
        time.sleep(0.1)


@pytest.fixture
def running(node_dir: Path, icn_path: str, icn_process_env: dict) -> Iterator[subprocess.Popen]:
    """A node serving ``node_dir`` without NATS; SIGKILLed after the test if still alive."""
    proc, _ = _start(icn_path, icn_process_env, node_dir, "--no-replication")
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def test_a_second_writer_is_refused_with_exit_2_while_readers_still_work(
    icn, node_dir: Path, running: subprocess.Popen, tmp_path: Path, icn_path: str,
    icn_process_env: dict,
) -> None:  # fmt: skip
    log = write_jsonl(tmp_path / "coops.jsonl", two_coop_log(3))
    d = ["--data-dir", str(node_dir)]
    started = time.monotonic()
    second = subprocess.run(
        [icn_path, "node", "run", *d, "--port", str(free_port()), "--no-replication"],
        env=icn_process_env, capture_output=True, timeout=30,
    )  # fmt: skip
    assert second.returncode == 2
    assert time.monotonic() - started < 10, "the second node waited instead of leaving at once"
    message = f"another node (pid {running.pid}) is using {node_dir}"
    assert message in second.stderr.decode().replace("\n", "")
    for args in (["log", "import", str(log)], ["log", "checkpoint", "--coop", "food-coop"]):
        refused = icn(*args, *d, check=2)
        assert message in refused.stderr.decode().replace("\n", "")
    # Reading works beside the running node.
    icn("node", "status", *d, "--json")
    icn("id", "show", *d)
    assert running.poll() is None, "the refused commands disturbed the running node"


def test_the_lock_of_a_killed_node_is_taken_over(
    icn, node_dir: Path, running: subprocess.Popen, tmp_path: Path
) -> None:
    log = write_jsonl(tmp_path / "coops.jsonl", two_coop_log(3))
    running.send_signal(signal.SIGKILL)
    running.wait(10)
    assert (node_dir / "node.lock").read_text().strip() == str(running.pid)  # left behind
    icn("log", "import", str(log), "--data-dir", str(node_dir))
    assert (node_dir / "node.lock").read_text().strip() != str(running.pid)


def test_the_lock_is_exclusive_across_open_files_and_names_its_holder(tmp_path: Path) -> None:
    first = DataDirLock(tmp_path).acquire()
    with pytest.raises(DataDirBusy) as refused:
        DataDirLock(tmp_path).acquire()
    assert refused.value.pid == os.getpid() and refused.value.code == "data-dir-busy"
    first.release()
    with DataDirLock(tmp_path) as again:
        assert again.held


def _nats_pid(data: Path) -> int:
    ports = list((data / "nats").glob("nats-server_*.ports"))
    assert ports, "the node started no nats-server"
    pids = [int(p.stem.rsplit("_", 1)[1]) for p in ports]
    live = [pid for pid in pids if _alive(pid)]
    assert len(live) == 1, pids
    return live[0]


def test_the_nats_server_dies_with_a_killed_node_and_never_sees_its_secrets(
    node_dir: Path, icn_path: str, icn_process_env: dict, tmp_path: Path
) -> None:
    secret_file = tmp_path / "passphrase"
    secret_file.write_text(PASSPHRASE_MARK)
    env = dict(icn_process_env, ICN_PASSPHRASE_FILE=str(secret_file), ICN_JWT_SECRET_FILE="x")
    proc, _ = _start(icn_path, env, node_dir)
    try:
        nats_pid = _nats_pid(node_dir)
        environ = Path(f"/proc/{nats_pid}/environ").read_bytes().split(b"\0")
        names = {entry.split(b"=", 1)[0] for entry in environ if entry}
        for name in (b"ICN_PASSPHRASE", b"ICN_PASSPHRASE_FILE", b"ICN_JWT_SECRET",
                     b"ICN_JWT_SECRET_FILE"):  # fmt: skip
            assert name not in names
        blob = b"\0".join(environ)
        assert icn_process_env["ICN_JWT_SECRET"].encode() not in blob
        assert PASSPHRASE_MARK.encode() not in blob
        assert b"ICN_" not in blob
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    deadline = time.monotonic() + 10
    while _alive(nats_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(nats_pid), f"nats-server {nats_pid} outlived its node (kill -9)"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_loose_modes_of_an_existing_data_dir_are_fixed_at_start_with_a_warning(
    icn, node_dir: Path, tmp_path: Path
) -> None:
    log = write_jsonl(tmp_path / "coops.jsonl", two_coop_log(3))
    icn("log", "import", str(log), "--data-dir", str(node_dir))
    files = [p for p in node_dir.rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert {"icn.sqlite3", "node.lock", "nats-users.json"} <= names, names
    assert any(p.parent.name == "keys" for p in files)
    # Made by this node: already tight.
    assert _mode(node_dir) == 0o700
    assert all(_mode(p) == 0o600 for p in files), {p.name: oct(_mode(p)) for p in files}
    # An operator (or a restore) loosened them.
    node_dir.chmod(0o755)
    for p in files:
        p.chmod(0o644)
    (node_dir / "keys").chmod(0o755)
    proc = icn("log", "checkpoint", "--coop", "food-coop", "--data-dir", str(node_dir))
    warning = proc.stderr.decode()
    assert "readable by others" in warning and "icn.sqlite3" in warning
    assert PASSPHRASE_MARK not in warning
    assert _mode(node_dir) == 0o700 and _mode(node_dir / "keys") == 0o700
    after = [p for p in node_dir.rglob("*") if p.is_file()]
    assert all(_mode(p) == 0o600 for p in after), {p.name: oct(_mode(p)) for p in after}
