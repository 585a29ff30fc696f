"""How the node connects to NATS: reconnect for ever, and say so quietly.

The publisher and the consumer ride out a NATS restart only if the
connection under them does: nats-py gives up after 60 reconnect attempts by
default and logs every socket error with a traceback. Here the client keeps
trying (every quarter second), buffers what is published meanwhile, and
logs disconnects as one-line warnings.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import nats
from nats.aio.client import Client

from icn.domain.identity.did import did_key_part
from icn.infrastructure.replication.nats_auth import NatsUser, credentials_from_env, ensure_users
from icn.infrastructure.store.replication_schema import CONSUMER_META

log = logging.getLogger(__name__)

RECONNECT_WAIT_S = 0.25


async def _on_error(exc: Exception) -> None:
    # While NATS is down every reconnect attempt fails: one warning (the
    # disconnect) says it, the refused attempts only at debug level.
    level = logging.DEBUG if isinstance(exc, OSError) else logging.WARNING
    log.log(level, "NATS: %s", exc or type(exc).__name__)


async def _on_reconnected() -> None:
    log.info("NATS: reconnected")


async def connect(
    servers: str | Sequence[str], *, name: str = "icn-node", credentials: NatsUser | None = None
) -> Client:
    """A client connection that reconnects without limit to any of ``servers``.

    ``credentials``: the user to log in as (a NATS with authorization refuses anyone else).
    """
    urls = [servers] if isinstance(servers, str) else list(servers)
    login = {"user": credentials.user, "password": credentials.password} if credentials else {}
    opened: list[Client] = []

    async def on_disconnected() -> None:
        # close() marks the client closed before it calls back: a deliberate close
        # (a clean shutdown) is not news; losing the server is.
        if opened and opened[0].is_closed:
            log.debug("NATS: connection closed")
        else:
            log.warning("NATS: disconnected")

    client = await nats.connect(
        servers=urls,
        name=name,
        **login,
        allow_reconnect=True,
        max_reconnect_attempts=-1,
        reconnect_time_wait=RECONNECT_WAIT_S,
        connect_timeout=2,
        error_cb=_on_error,
        disconnected_cb=on_disconnected,
        reconnected_cb=_on_reconnected,
    )
    opened.append(client)
    return client


async def close(nc: Client) -> None:
    """Close ``nc``, also while NATS is away.

    nats-py 2.16 tries to flush what it buffered during a disconnect onto the
    dead socket and raises ``ConnectionResetError`` from ``close()``; by then
    the connection is marked closed and its tasks are cancelled, so the
    error only means the buffered messages are lost, which at-least-once
    delivery already allows for.
    """
    try:
        await nc.close()
    except ConnectionError as exc:
        log.info("NATS: closed with unsent data (%s)", exc)


def nats_urls(setting: str | None) -> list[str] | None:
    """``ICN_NATS_URL`` / ``--nats`` as a list of server URLs (None: run our own)."""
    if not setting:
        return None
    urls = [u.strip() for u in setting.replace(" ", ",").split(",") if u.strip()]
    return urls or None


def credentials_for(data_dir: Path, external: bool) -> NatsUser | None:
    """Who to log in as: ``ICN_NATS_USER`` for a NATS given by URL, else the node user of
    the data dir's own server."""
    return credentials_from_env() if external else ensure_users(data_dir).node


def durable_for(node_did: str, meta: Callable[[str], str | None] | None = None) -> str:
    """A node's consumer name: its DID's key part (the stream already names the coop),
    unless its store names another (``meta``: the store's ``get_meta``; a node restored
    from a backup has a consumer of its own, see ``icn restore``)."""
    own = meta(CONSUMER_META) if meta is not None else None
    return own or did_key_part(node_did)
