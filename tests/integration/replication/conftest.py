"""Fixtures for the replication transport tests: a real JetStream server per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.nats import start_nats_server

from icn.infrastructure.replication.nats_server import LocalNatsServer


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[LocalNatsServer]:
    """A ``nats-server -js`` on a free loopback port, its store in ``tmp_path``; stopped after."""
    server = start_nats_server(tmp_path)
    try:
        yield server
    finally:
        server.stop()
