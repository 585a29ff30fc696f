"""Stored logins: ``<data-dir>/sessions/<coop>.json``, so later commands reuse a token.

A token is a credential for an hour, so the file is 0600 in a 0700 folder,
written to a temp file and renamed (never half-written, never briefly
world-readable). An expired session is refused here, before a request is
sent, with the one thing to do about it.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import time
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from icn.interfaces.client.errors import SessionError
from icn.interfaces.client.models import Session

_COOP_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
EXPIRY_MARGIN_MS = 30_000
"""A session this close to its end is refused: it would die mid-command."""


class StoredSession(msgspec.Struct, frozen=True):
    """A session and the node that issued it (a token is only good on that node)."""

    url: str
    did: str
    coop: str
    token: str
    expires_at: int

    def __repr__(self) -> str:
        return f"StoredSession(url={self.url!r}, did={self.did!r}, coop={self.coop!r})"

    @property
    def session(self) -> Session:
        """The session, as the client takes it."""
        return Session(self.token, self.expires_at, self.did, self.coop)


def expiry_text(ms: int) -> str:
    """``expires_at`` for people: UTC, to the second."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


class SessionStore:
    """The sessions of one data directory, one file per coop."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / "sessions"

    def __repr__(self) -> str:
        return f"SessionStore({str(self.path)!r})"

    def _file(self, coop: str) -> Path:
        if _COOP_RE.fullmatch(coop) is None:
            raise SessionError("invalid-coop", f"invalid coop id {coop!r}")
        return self.path / f"{coop}.json"

    def save(self, url: str, session: Session) -> Path:
        """Write the session atomically, readable by its owner only."""
        target = self._file(session.coop)
        self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.path, 0o700)  # mkdir's mode is masked by the umask, and exist_ok keeps old
        record = StoredSession(url, session.did, session.coop, session.token, session.expires_at)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(msgspec.json.encode(record) + b"\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        return target

    def load(self, coop: str, *, now_ms: int | None = None) -> StoredSession:
        """The coop's session, if there is one and it has not expired."""
        target = self._file(coop)
        again = f"log in again: icn login --coop {coop}"
        try:
            raw = target.read_bytes()
        except FileNotFoundError:
            raise SessionError("no-session", f"not logged in to {coop}: {again}") from None
        try:
            record = msgspec.json.decode(raw, type=StoredSession)
        except msgspec.DecodeError:
            raise SessionError(
                "bad-session", f"session file {target} is unreadable: {again}"
            ) from None
        if record.coop != coop:
            raise SessionError(
                "bad-session", f"session file {target} is for {record.coop!r}: {again}"
            )
        now = time.time_ns() // 1_000_000 if now_ms is None else now_ms
        if record.expires_at - EXPIRY_MARGIN_MS <= now:
            raise SessionError(
                "session-expired",
                f"the session for {coop} expired at {expiry_text(record.expires_at)}: {again}",
            )
        return record
