"""``icn node run --detach`` and ``icn node stop``: a node in the background, for scripts.

``icn node run &`` returns before the node listens, so the next line of a
script (``icn login``) fails. ``--detach`` starts the same ``icn node run``
as a child in its own session, logging to ``<data-dir>/node.log``, and
returns only once ``/v1/health`` answers (or says why the child died, with
the end of its log). No pid file is needed: a running node holds the data
dir's lock (``node.lock``), which also records its pid, so ``icn node stop``
finds the node there, sends SIGTERM, and waits until the kernel frees the
lock, i.e. until the node (and its nats-server) has fully stopped.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from icn.application.errors import ApplicationError

LOG_NAME = "node.log"
LOCK_NAME = "node.lock"  # icn.infrastructure.data_dir.LOCK_NAME


class NodeNotStarted(ApplicationError):
    """The detached node exited, or did not answer in time (exit 1, with its log's end)."""

    code = "node-not-started"


class NodeNotStopped(ApplicationError):
    """The node did not stop within the timeout after SIGTERM."""

    code = "node-not-stopped"


def health_url(host: str, port: int) -> str:
    """Where a node bound to ``host:port`` answers health (a wildcard is asked locally)."""
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/v1/health"


def start_detached(args: list[str], data_dir: Path, url: str, timeout_s: float) -> int:
    """Start ``icn node run ARGS`` in its own session; return its pid once ``url`` answers."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    log_path = data_dir / LOG_NAME
    start = log_path.stat().st_size if log_path.exists() else 0
    argv = [sys.executable, "-m", "icn.interfaces.cli.main", "node", "run", *args]
    with log_path.open("ab") as log:
        child = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # the shell's Ctrl-C and hang-up are not the node's
        )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise NodeNotStarted(
                f"the node exited with {child.returncode}; its log ({log_path}) ends:\n"
                + _tail(log_path, start)
            )
        if _answers(url):
            return child.pid
        time.sleep(0.1)
    child.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        child.wait(timeout=10)
    raise NodeNotStarted(
        f"no answer from {url} within {timeout_s:g} s; stopped it. Its log ({log_path}) ends:\n"
        + _tail(log_path, start)
    )


def running_pid(data_dir: Path) -> int | None:
    """The pid of the process holding the data dir's lock, or ``None`` when none does.

    Probed with a shared, non-blocking ``flock``: it fails exactly while a writer
    holds the exclusive lock, and taking it changes nothing in the file.
    """
    path = data_dir / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.pread(fd, 32, 0).decode(errors="replace").strip()
            return int(text) if text.isdigit() else None
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def stop(data_dir: Path, timeout_s: float) -> int | None:
    """SIGTERM the node of ``data_dir`` and wait until it has let go of the data dir.

    Returns the pid stopped, or ``None`` when no node was running.
    """
    pid = running_pid(data_dir)
    if pid is None:
        return None
    if not _is_node_run(pid):
        raise NodeNotStopped(f"pid {pid} holds {data_dir} but is not `icn node run`; not stopped")
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        # The lock is freed when the store closes, a moment before the process ends.
        if running_pid(data_dir) is None and exited(pid):
            return pid
        time.sleep(0.1)
    raise NodeNotStopped(f"pid {pid} has not stopped {timeout_s:g} s after SIGTERM")


def exited(pid: int) -> bool:
    """Whether ``pid`` has ended (a zombie, not yet reaped by its new parent, has)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] == "Z"


def _is_node_run(pid: int) -> bool:
    """Whether ``pid`` runs ``icn node run`` (a lock held by ``icn log import`` is not ours to
    stop); ``True`` where ``/proc`` cannot tell."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True
    return any(a == b"node" and b == b"run" for a, b in itertools.pairwise(argv))


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as reply:
            return bool(reply.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _tail(path: Path, start: int, lines: int = 20) -> str:
    with path.open("rb") as f:
        f.seek(start)
        text = f.read().decode(errors="replace")
    return "\n".join(text.rstrip().splitlines()[-lines:])
