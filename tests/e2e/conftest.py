"""Run the real ``icn`` entry point in a subprocess, as a person would."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from nacl.signing import SigningKey
from support.nodes import coop_log, member_keys

ICN = str(Path(sys.executable).with_name("icn"))
PASSPHRASE = "e2e-test-passphrase"
JWT_SECRET = "e2e-test-jwt-secret-of-at-least-32-bytes"


def run_icn(
    *args: str, env: dict[str, str] | None = None, input: bytes | None = None, check: int | None = 0
) -> subprocess.CompletedProcess[bytes]:
    """Run ``icn`` with a clean ICN_* environment; assert the exit code when ``check`` is set."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("ICN_")}
    full_env.update({"ICN_PASSPHRASE": PASSPHRASE, "COLUMNS": "200"})
    full_env.update(env or {})
    proc = subprocess.run([ICN, *args], env=full_env, input=input, capture_output=True, timeout=120)
    if check is not None:
        assert proc.returncode == check, (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
    assert b"Traceback" not in proc.stderr, proc.stderr.decode()
    return proc


@pytest.fixture
def icn() -> Callable[..., subprocess.CompletedProcess[bytes]]:
    """The runner, as a fixture."""
    return run_icn


@pytest.fixture
def node_dir(tmp_path: Path) -> Path:
    """An initialised node data directory."""
    d = tmp_path / "node"
    run_icn("node", "init", "--data-dir", str(d))
    return d


@pytest.fixture
def icn_process_env() -> dict[str, str]:
    """Environment for an ``icn`` process started with Popen (long-running commands)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ICN_")}
    env["ICN_PASSPHRASE"] = PASSPHRASE
    env["ICN_JWT_SECRET"] = JWT_SECRET
    return env


@pytest.fixture
def icn_path() -> str:
    """The installed ``icn`` console script."""
    return ICN


@pytest.fixture(scope="module")
def icn_env_module() -> dict[str, str]:
    """Module-scoped twin of ``icn_process_env``, for servers shared by a module's tests."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ICN_")}
    env.update({"ICN_PASSPHRASE": PASSPHRASE, "ICN_JWT_SECRET": JWT_SECRET})
    # Modules that log in many times in a few seconds are not testing rate
    # limits; test_http_rate_limits.py sets its own, strict ones.
    env.update({"ICN_RATE_AUTH_BURST": "100000", "ICN_RATE_AUTH_PER_S": "100000"})
    return env


@pytest.fixture(scope="module")
def icn_path_module() -> str:
    """The installed ``icn`` console script (module scope)."""
    return ICN


@pytest.fixture(scope="session")
def members() -> dict[str, SigningKey]:
    """Keys of food-coop's founding members in :func:`coop_log_file` (alice is admin)."""
    return member_keys()


@pytest.fixture(scope="session")
def coop_log_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid log to import (``support.nodes.coop_log``): food-coop with ``members``, bike-coop."""
    return coop_log(tmp_path_factory.mktemp("logs") / "coops.jsonl")
