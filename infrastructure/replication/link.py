"""A NATS connection that exists before it is connected.

A running node's parts are all built before its event loop runs
(``interfaces/bootstrap.build_node``), but a NATS client connects only on a
running loop. So the parts hold a :class:`NatsLink`, which the supervisor
connects at start and closes at stop; before and after that it holds no
client, and publishing through it fails the way a NATS that is away does.

``thread``: the link runs an event loop of its own in a daemon thread of that
name. The node's sequenced writes publish on such a link: on the main loop
they waited behind the HTTP requests it serves (single-post p50 +12-20 ms at
500/s).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

from nats.aio.client import Client

from icn.infrastructure.replication.connection import close, connect
from icn.infrastructure.replication.nats_auth import NatsUser
from icn.infrastructure.replication.publisher import (
    JetStreamPublisher,
    Outgoing,
    Published,
    PublishFailed,
)

T = TypeVar("T")
CLOSE_TIMEOUT_S = 5.0


class NatsLink:
    """One NATS connection, on the caller's loop or on a loop of its own (``thread``)."""

    def __init__(self, *, thread: str | None = None) -> None:
        self._thread_name = thread
        self._thread: threading.Thread | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        """Where the connection lives (None: not connected)."""
        self.client: Client | None = None
        self.publisher: JetStreamPublisher | None = None
        """Publishes on :attr:`client`, from :attr:`loop` only."""

    @property
    def connected(self) -> bool:
        """Connected now (a reconnecting client is not)."""
        client = self.client
        return client is not None and client.is_connected

    async def connect(
        self, urls: Sequence[str], *, name: str, credentials: NatsUser | None
    ) -> Client:
        """Connect (reconnecting for ever, see :mod:`.connection`) on the link's loop."""
        if self._thread_name is None:
            self.loop = asyncio.get_running_loop()
            client = await connect(urls, name=name, credentials=credentials)
        else:
            loop = asyncio.new_event_loop()
            self._thread = threading.Thread(
                target=loop.run_forever, name=self._thread_name, daemon=True
            )
            self._thread.start()
            self.loop = loop
            client = await self._on_own_loop(connect(urls, name=name, credentials=credentials))
        self.client = client
        self.publisher = JetStreamPublisher(client)
        return client

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Run ``coro`` on the link's loop, from another thread."""
        loop = self.loop
        if loop is None or loop.is_closed():
            coro.close()
            raise PublishFailed("not connected to NATS", [])
        return asyncio.run_coroutine_threadsafe(coro, loop)

    async def publish_many(self, items: Sequence[Outgoing]) -> list[Published]:
        """For the outbox relay, on the link's loop: see
        :meth:`JetStreamPublisher.publish_many`; not connected: nothing goes out."""
        publisher = self.publisher
        if publisher is None:
            raise PublishFailed("not connected to NATS", [None] * len(items))
        return await publisher.publish_many(items)

    async def close(self) -> None:
        """Close the connection (bounded, on its own loop) and stop that loop's thread."""
        client, thread, loop = self.client, self._thread, self.loop
        self.publisher, self.client, self._thread, self.loop = None, None, None, None
        if thread is None:
            if client is not None:
                await close(client)
            return
        assert loop is not None
        if client is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    asyncio.wrap_future(asyncio.run_coroutine_threadsafe(close(client), loop)),
                    CLOSE_TIMEOUT_S,
                )
        loop.call_soon_threadsafe(loop.stop)
        await asyncio.to_thread(thread.join, CLOSE_TIMEOUT_S)
        if not thread.is_alive():
            loop.close()

    async def _on_own_loop(self, coro: Coroutine[Any, Any, T]) -> T:
        return await asyncio.wrap_future(self.submit(coro))
