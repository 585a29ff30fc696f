"""``make run`` tells a second terminal exactly what to paste, and it works there.

The hint used to be ``icn pay … --key demo-amara`` alone, which a new shell
could not run (no data dir, no passphrase, and the running node holds the
data dir anyway). Here the printed lines are run as printed, by ``sh`` in
an environment that has nothing of ours in it, against the node
``make run`` serves.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from support.nodes import free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_hint_of_make_run_works_in_a_fresh_shell(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ICN_")}
    env["ICN_HTTP_PORT"] = str(port)
    run = subprocess.Popen(
        ["make", "--no-print-directory", "run", f"DATA_DIR={tmp_path / 'dev'}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        assert run.stdout is not None
        lines: list[str] = []
        while not any(line.lstrip().startswith("icn pay") for line in lines):
            line = run.stdout.readline().decode()
            assert line, "make run ended before its hint:\n" + "".join(lines)
            lines.append(line)
        i = next(n for n, line in enumerate(lines) if "In another terminal" in line)
        pasted = [line.strip() for line in lines[i + 1 : i + 3]]
        assert pasted[0].startswith("export ") and pasted[1].startswith("icn pay ")
        _wait_healthy(f"http://127.0.0.1:{port}/v1/health", run)
        fresh = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
        shell = subprocess.run(
            ["sh", "-c", "\n".join(pasted)], env=fresh, capture_output=True, timeout=120
        )
        assert shell.returncode == 0, (shell.stdout.decode(), shell.stderr.decode())
        assert b"paid 1.50 hours to did:icn:" in shell.stdout
    finally:
        os.killpg(run.pid, signal.SIGTERM)
        run.wait(timeout=30)


def _wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "make run ended"
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"no answer from {url}")
