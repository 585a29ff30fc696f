"""Follow a coop's ledger events over NATS and verify each one (see docs/subscribing.md).

Usage: NATS_USER=... NATS_PASSWORD=... python examples/subscriber.py NATS_URL COOP [COUNT]

The credentials are a read-only user (``icn nats user add NAME --read-only``),
taken from the environment so the password never shows in a process list.
"""

import asyncio
import os
import sys

import nats
from nats.js.api import DeliverPolicy

from icn.domain.events import verify


async def follow(url: str, coop: str, count: int | None) -> None:
    nc = await nats.connect(
        url, user=os.environ.get("NATS_USER"), password=os.environ.get("NATS_PASSWORD")
    )
    sub = await nc.jetstream().subscribe(
        f"icn.{coop}.ledger.>", ordered_consumer=True, deliver_policy=DeliverPolicy.ALL
    )
    seen = 0
    async for msg in sub.messages:
        try:
            event = verify(msg.data)  # id and signature, no node needed
        except ValueError as exc:
            print(f"REJECTED {msg.subject}: {exc}", flush=True)
            continue
        print(f"verified {event.type} {event.author} #{event.seq} {event.body}", flush=True)
        seen += 1
        if count is not None and seen >= count:
            break
    await nc.close()


if __name__ == "__main__":
    limit = int(sys.argv[3]) if len(sys.argv) > 3 else None
    asyncio.run(follow(sys.argv[1], sys.argv[2], limit))
