"""``icn`` imports a command's module only when that command runs.

Timing is the bench's job (bench/cli_startup.py); here the property behind
it is checked exactly, in a real process: reading a key's DID loads none of
the heavy libraries the node's other commands need.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from icn.infrastructure.settings import Settings
from icn.interfaces.cli.common import data_dir_of
from icn.interfaces.cli.main import COMMANDS, app

HEAVY = ("sqlalchemy", "eventsourcing", "litestar", "nats", "uvicorn", "httpx", "psycopg")

PROBE = """
import atexit, json, sys
sys.argv = ["icn", *sys.argv[1:]]
atexit.register(lambda: sys.stderr.write("\\nMODULES " + json.dumps(sorted(sys.modules)) + "\\n"))
from icn.interfaces.cli.main import run
run()
"""


def _loaded(args: list[str], env: dict[str, str]) -> set[str]:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *args], env=env, capture_output=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr.decode()
    line = proc.stderr.decode().rsplit("MODULES ", 1)[1]
    return {name.split(".")[0] for name in json.loads(line)}


def test_id_show_imports_nothing_heavy(tmp_path: Path, icn) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ICN_")}
    env.update({"ICN_DATA_DIR": str(tmp_path), "ICN_PASSPHRASE": "startup test passphrase"})
    icn("id", "init", "alice", env={"ICN_DATA_DIR": str(tmp_path)})
    loaded = _loaded(["id", "show", "alice", "--json"], env)
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_every_command_module_loads_on_demand() -> None:
    import typer.main

    group = typer.main.get_command(app)
    assert list(group.commands) == list(COMMANDS)  # type: ignore[attr-defined]
    for name in COMMANDS:
        assert group.commands[name].name == name  # type: ignore[attr-defined]


def test_default_data_dir_is_the_settings_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ICN_DATA_DIR", raising=False)
    assert data_dir_of(None) == Settings().data_dir
