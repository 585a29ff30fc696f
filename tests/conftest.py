"""Fixtures every test layer shares: where the repository and the spec's test vectors are.

The spec (and its vectors) live in the shared folder beside the repository,
``<repo>/../shared``; tests read them in place so the vectors are never copied
and can never drift from the spec.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from nacl.signing import SigningKey
from sqlalchemy.engine import make_url

REPO_ROOT = Path(__file__).resolve().parents[1]
"""The repository root (the folder holding ``pyproject.toml``)."""

SHARED_DIR = (REPO_ROOT / ".." / "shared").resolve()
VECTORS_DIR = SHARED_DIR / "spec" / "vectors"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root, for tests that build or install the package."""
    return REPO_ROOT


@pytest.fixture(scope="session")
def vectors_dir() -> Path:
    """The spec's test vectors (keys.json, ok.jsonl, faults.jsonl, expected.json, merkle.json)."""
    if not (VECTORS_DIR / "keys.json").is_file():
        pytest.fail(f"spec test vectors not found at {VECTORS_DIR}")
    return VECTORS_DIR


@pytest.fixture(scope="session")
def vector_keys(vectors_dir: Path) -> dict[str, SigningKey]:
    """The vectors' signing keys by name (alice, bob, ..., coop, node1)."""
    keys = json.loads((vectors_dir / "keys.json").read_text())
    return {name: SigningKey(bytes.fromhex(entry["seed"])) for name, entry in keys.items()}


class PgCluster:
    """A running PostgreSQL server and the socket folder it listens on."""

    def __init__(self, server: Any) -> None:
        self.server = server
        host = make_url(server.get_uri()).query.get("host")
        if isinstance(host, tuple):
            host = host[0]
        if not host:
            raise RuntimeError(f"pgserver gave no socket folder: {server.get_uri()}")
        self.socket_dir = str(host)

    def psql(self, sql: str) -> str:
        """Run SQL as the superuser on the maintenance database."""
        return str(self.server.psql(sql))

    def create_database(self) -> str:
        """A fresh, empty database; returns its name."""
        name = f"t_{uuid.uuid4().hex}"
        self.psql(f"CREATE DATABASE {name};")
        return name

    def drop_database(self, name: str) -> None:
        """Drop a database even if a pool still holds connections to it."""
        self.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE);")

    def url(self, name: str) -> str:
        """The URL a node would be configured with: host is the socket folder, no password."""
        return f"postgresql+psycopg://postgres:@/{name}?host={quote(self.socket_dir, safe='/')}"


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """One PostgreSQL server for the whole session (started on first use).

    Its data lives in a folder of its own, not under pytest's ``tmp_path``:
    when run as root, pgserver runs the server as a separate user, and any
    other pytest session resets ``/tmp/pytest-of-<user>`` to mode 0700, which
    would pull the data folder from under the running server.
    """
    import pgserver  # installed by the test extras: no PostgreSQL means a failure, not a skip

    parent = Path(tempfile.mkdtemp(prefix="icn-test-pg-"))
    server = pgserver.get_server(parent / "data", cleanup_mode="stop")
    try:
        yield PgCluster(server)
    finally:
        server.cleanup()
        shutil.rmtree(parent, ignore_errors=True)
