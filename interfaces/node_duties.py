"""The node's timed duties: checkpoints and the coops' settlements and demurrage.

They run where the node writes: in the serving process (``create_app``'s lifespan),
or in its writer process (:mod:`icn.interfaces.writer_process`). This module imports
no HTTP framework, so that the writer's start-up does not pay for one.
"""

from __future__ import annotations

import asyncio
import logging
import os

from icn.application.checkpoint_schedule import CheckpointSchedule
from icn.application.errors import StoreBusy
from icn.infrastructure.passphrase import ENV_PASSPHRASE, ENV_PASSPHRASE_FILE, resolve_passphrase
from icn.interfaces.bootstrap import Node
from icn.interfaces.http.log_feed import LogFeed

log = logging.getLogger("icn.node")
TICK_S = 1.0
"""How often the checkpoint schedule is asked whether a checkpoint is due."""


async def checkpoint_loop(schedule: CheckpointSchedule) -> None:
    while True:
        try:
            for cp in await asyncio.to_thread(schedule.tick):
                log.info(
                    "checkpoint %s size %d root %s", cp.coop, cp.size, cp.root,
                    extra={"coop": cp.coop},
                )  # fmt: skip
        except StoreBusy as exc:  # the stream or the store is away for now: no traceback
            log.warning("checkpoint postponed: %s", exc)
        except Exception:  # keep serving; the next tick retries
            log.exception("checkpoint tick failed")
        await asyncio.sleep(TICK_S)


async def duties_loop(node: Node, feed: LogFeed, interval_s: float) -> None:
    """Settlements and demurrage, signed by the coop keys this node keeps (never a prompt)."""
    if not (os.environ.get(ENV_PASSPHRASE) or os.environ.get(ENV_PASSPHRASE_FILE)):
        log.warning("coop duties off: set ICN_PASSPHRASE or ICN_PASSPHRASE_FILE to sign them")
        return
    duties = None
    reported: set[tuple[str, str, str]] = set()
    while True:
        try:
            duties = duties or node.duties(resolve_passphrase())
            for event in await asyncio.to_thread(duties.run, node.clock_ms()):
                log.info(
                    "coop duty %s %s %s", event.coop, event.type, event.id,
                    extra={"coop": event.coop},
                )  # fmt: skip
                feed.notify(event.coop)
            for coop, what, exc in duties.failures:
                if (coop, what, str(exc)) not in reported:  # once each, not every round
                    reported.add((coop, what, str(exc)))
                    log.warning(
                        "coop duty refused in %s: %s: %s", coop, what, exc, extra={"coop": coop}
                    )
        except Exception:  # keep serving; the next round retries
            log.exception("coop duties failed")
        await asyncio.sleep(interval_s)
