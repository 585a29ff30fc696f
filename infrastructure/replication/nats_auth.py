"""Who may do what on the node's NATS: node identities write, other services only read.

Without authorization any local process (in a cluster: any client) could
publish into a coop's stream, fill the parked table, or front-run a
``Nats-Msg-Id``. So every nats-server the node runs has users:

- the **node** user (``icn-node``) may publish anywhere, ``icn.>`` and the
  JetStream API included (streams, its durable consumers, acks);
- **read-only** users (``icn nats user add NAME --read-only``) may look up
  streams, read messages, and create, pull from and ack only consumers *named
  after themselves* (or ephemeral ones the server names, such as an ordered
  consumer): never publish into ``icn.>``, change a stream, or pull from or
  ack a node's durable consumer (which would steal its messages).

Reader names are lowercase, so no reader can be named like a node's durable
consumer (a DID key part, ``z6Mk…``, always has capitals).

The users and their generated passwords live in ``<data-dir>/nats-users.json``
(mode 0600); :func:`server_config` turns them into the server's
``authorization`` block (JSON is valid nats-server config). Passwords are
never logged and never put on a command line.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec

from icn.application.errors import ApplicationError

NODE_USER = "icn-node"
USERS_FILE = "nats-users.json"
READER_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")

NODE_PERMISSIONS: dict[str, Any] = {"publish": {"allow": [">"]}, "subscribe": {"allow": [">"]}}
"""A node publishes events, manages streams and its consumers, acks: everything."""


def reader_permissions(name: str) -> dict[str, Any]:
    """What a read-only user ``name`` may publish (JetStream API requests) and subscribe to."""
    return {
        "publish": {
            "allow": [
                "$JS.API.INFO",
                "$JS.API.STREAM.NAMES",
                "$JS.API.STREAM.LIST",
                "$JS.API.STREAM.INFO.*",
                "$JS.API.STREAM.MSG.GET.*",
                "$JS.API.DIRECT.GET.>",
                "$JS.API.CONSUMER.CREATE.*",  # ephemeral: the server picks the name
                f"$JS.API.CONSUMER.CREATE.*.{name}",
                f"$JS.API.CONSUMER.CREATE.*.{name}.>",
                f"$JS.API.CONSUMER.DURABLE.CREATE.*.{name}",
                f"$JS.API.CONSUMER.INFO.*.{name}",
                f"$JS.API.CONSUMER.DELETE.*.{name}",
                f"$JS.API.CONSUMER.MSG.NEXT.*.{name}",
                f"$JS.ACK.*.{name}.>",
                "$JS.FC.>",  # flow control replies of push (ordered) consumers
            ]
        },
        "subscribe": {"allow": ["_INBOX.>"]},
    }


class NatsUserError(ApplicationError):
    """A NATS user cannot be added as asked."""

    code = "nats-user-invalid"


class NatsUserExists(NatsUserError):
    """That reader exists already (its password is not shown again)."""

    code = "nats-user-exists"


class NatsUser(msgspec.Struct, frozen=True):
    """One user of the node's NATS and its password."""

    user: str
    password: str


class NatsUsers(msgspec.Struct):
    """The node user and the read-only users of one data dir."""

    node: NatsUser
    readers: list[NatsUser] = msgspec.field(default_factory=list)


def new_password() -> str:
    """A fresh random password (256 bits, URL-safe: no quoting trouble in any config)."""
    return secrets.token_urlsafe(32)


def users_path(data_dir: Path) -> Path:
    """Where a data dir keeps its NATS users."""
    return Path(data_dir) / USERS_FILE


def load_users(data_dir: Path) -> NatsUsers | None:
    """The data dir's users, or None before ``icn node init`` made them."""
    try:
        return msgspec.json.decode(users_path(data_dir).read_bytes(), type=NatsUsers)
    except FileNotFoundError:
        return None


def ensure_users(data_dir: Path) -> NatsUsers:
    """The data dir's users, generating the node user the first time."""
    users = load_users(data_dir)
    if users is None:
        users = NatsUsers(node=NatsUser(NODE_USER, new_password()))
        save_users(data_dir, users)
    return users


def save_users(data_dir: Path, users: NatsUsers) -> None:
    """Write the users file atomically, mode 0600 from its first byte."""
    Path(data_dir).mkdir(parents=True, exist_ok=True, mode=0o700)
    write_secret(users_path(data_dir), msgspec.json.format(msgspec.json.encode(users)))


def write_secret(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``: a 0600 temporary file renamed over it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def add_reader(data_dir: Path, name: str) -> NatsUser:
    """Create the read-only user ``name`` with a fresh password and return it."""
    if not READER_NAME.fullmatch(name) or name == NODE_USER:
        raise NatsUserError(
            f"a reader's name is 1-32 characters of a-z, 0-9, '_' and '-', starting with a "
            f"letter, and not {NODE_USER!r} (it also names the reader's consumers): {name!r}"
        )
    users = ensure_users(data_dir)
    if any(r.user == name for r in users.readers):
        raise NatsUserExists(f"NATS user {name!r} exists already")
    reader = NatsUser(name, new_password())
    users.readers.append(reader)
    save_users(data_dir, users)
    return reader


def authorization(users: NatsUsers) -> dict[str, Any]:
    """The ``authorization`` block for these users."""
    entries = [
        {"user": users.node.user, "password": users.node.password,
         "permissions": NODE_PERMISSIONS},
        *({"user": r.user, "password": r.password, "permissions": reader_permissions(r.user)}
          for r in users.readers),
    ]  # fmt: skip
    return {"users": entries}


def server_config(users: NatsUsers, extra: str = "") -> str:
    """A nats-server config file: ``extra`` (e.g. a cluster block) plus the users."""
    return f"{extra}authorization: {json.dumps(authorization(users), indent=2)}\n"


ENV_USER = "ICN_NATS_USER"
ENV_PASSWORD = "ICN_NATS_PASSWORD"
ENV_PASSWORD_FILE = "ICN_NATS_PASSWORD_FILE"


def credentials_from_env(env: Mapping[str, str] = os.environ) -> NatsUser | None:
    """How a node logs in to a NATS it does not run (``ICN_NATS_URL``), or None.

    ``ICN_NATS_USER`` with ``ICN_NATS_PASSWORD`` or, better, ``ICN_NATS_PASSWORD_FILE``
    (a file only the node's user reads). Read where used, never kept in settings.
    """
    user = env.get(ENV_USER, "").strip()
    if not user:
        return None
    password = env.get(ENV_PASSWORD, "")
    if not password and env.get(ENV_PASSWORD_FILE):
        password = Path(env[ENV_PASSWORD_FILE]).read_text().strip()
    if not password:
        raise NatsUserError(f"{ENV_USER} is set but neither {ENV_PASSWORD} nor {ENV_PASSWORD_FILE}")
    return NatsUser(user, password)
