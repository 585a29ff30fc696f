"""The outbox relay's publisher on JetStream: how many of a page the stream acknowledged."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

from icn.application.relay import OutboxItem
from icn.infrastructure.replication.publisher import Outgoing, Published, PublishFailed

log = logging.getLogger("icn.replication")


class PublishesMany(Protocol):
    """A :class:`~.publisher.JetStreamPublisher`, or a :class:`~.link.NatsLink` that will
    have one once connected."""

    async def publish_many(self, items: Sequence[Outgoing]) -> list[Published]: ...


class JetStreamOutbox:
    """The relay's :class:`~icn.application.relay.OutboxPublisher` on a JetStream publisher."""

    def __init__(self, publisher: PublishesMany) -> None:
        self._publisher = publisher

    async def publish(self, items: Sequence[OutboxItem]) -> int:
        outgoing = [
            Outgoing(i.coop, i.event_id, i.event_type, i.author, i.wire, i.trusted_ms)
            for i in items
        ]
        try:
            await self._publisher.publish_many(outgoing)
        except PublishFailed as exc:
            log.warning("outbox: %s", str(exc).split(". ")[0])
            acked = 0
            for result in exc.results:
                if result is None:
                    break
                acked += 1
            return acked
        return len(items)
