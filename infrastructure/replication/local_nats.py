"""The node's own nats-server on its data dir: where it lives, and a leftover one found by PID.

Without ``--nats`` / ``ICN_NATS_URL`` a node runs its own ``nats-server -js``
with its store under ``<data-dir>/nats``. The server writes a ports file named
after its PID there; that file is how ``icn nats user add`` reloads it and how a
node finds (and stops) one left behind, always after ``/proc`` confirms the PID
is a nats-server on that very store, never by name or port alone.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import time
from pathlib import Path

from icn.infrastructure.replication.nats_auth import ensure_users
from icn.infrastructure.replication.nats_server import LocalNatsServer

log = logging.getLogger("icn.replication")


def local_nats_dir(data_dir: Path) -> Path:
    """Where a node's own nats-server keeps its store, log and ports file."""
    return data_dir / "nats"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_our_nats(pid: int, directory: Path) -> bool:
    """True when ``pid`` is a nats-server whose store is ``directory`` (Linux: /proc)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return bool(argv) and argv[0].endswith(b"nats-server") and str(directory).encode() in argv


def _ports_files(directory: Path) -> list[tuple[int, Path]]:
    found = []
    for path in directory.glob("nats-server_*.ports"):
        try:
            found.append((int(path.stem.rsplit("_", 1)[1]), path))
        except ValueError:
            continue
    return found


def running_local_nats(data_dir: Path) -> str | None:
    """The client URL of a live nats-server running on this data dir's store, if any."""
    directory = local_nats_dir(data_dir)
    for pid, path in _ports_files(directory):
        if _pid_alive(pid) and _is_our_nats(pid, directory):
            try:
                return str(json.loads(path.read_text())["nats"][0])
            except (OSError, ValueError, KeyError, IndexError):
                continue
    return None


def stop_orphaned_nats(data_dir: Path, timeout: float = 10.0) -> None:
    """Stop a nats-server left running on this store by a node that was killed (-9).

    The server runs in a session of its own (so a Ctrl-C meant for the node
    does not reach it first), which also means it outlives a node killed
    without a chance to stop it. Its ports file names its PID; it is stopped
    by that PID only after /proc confirms it is a nats-server on this store.
    """
    directory = local_nats_dir(data_dir)
    for pid, path in _ports_files(directory):
        if not _pid_alive(pid) or not _is_our_nats(pid, directory):
            with contextlib.suppress(OSError):
                path.unlink()
            continue
        log.warning("stopping nats-server %d left running on %s", pid, directory)
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _pid_alive(pid) and _is_our_nats(pid, directory):
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                break
            time.sleep(0.05)
        with contextlib.suppress(OSError):
            path.unlink()


def local_nats_server(data_dir: Path) -> LocalNatsServer:
    """The node's own nats-server (not started), requiring the data dir's NATS users."""
    return LocalNatsServer(local_nats_dir(data_dir), users=ensure_users(data_dir))


def reload_local_nats(data_dir: Path) -> bool:
    """Have the node's running nats-server (if any) apply the data dir's current users.

    Rewrites its config (0600) and sends SIGHUP to the PID its ports file names, once
    /proc confirms that is a nats-server on this store. False: none is running.
    """
    directory = local_nats_dir(data_dir)
    for pid, _path in _ports_files(directory):
        if _pid_alive(pid) and _is_our_nats(pid, directory):
            local_nats_server(data_dir).write_config()
            os.kill(pid, signal.SIGHUP)
            return True
    return False
