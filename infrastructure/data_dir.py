"""The data directory: one writer at a time, and nobody else may read it.

Two processes writing one store was found to break a running node: a second
``icn node run`` on the same directory stopped the first one's nats-server
and kept serving beside it. So ``icn node run`` and every command that
writes the store hold an exclusive :func:`fcntl.flock` on ``node.lock``
inside the directory for as long as they run. ``flock`` belongs to the open
file, so the kernel releases it when its holder dies, however it dies: a
lock "left" by a killed node is simply free, and the next holder takes it.
The lock file keeps the holder's pid, so a refusal can say who holds it.

The directory holds the keystore, the SQLite file (and its ``-wal``/``-shm``),
NATS credentials and the nats-server's store: it is 0700 and its files are
0600. A directory made before that rule (or by hand, or restored from a
backup with looser modes) is fixed at start, with one warning naming the
paths, never their content.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import stat
from pathlib import Path

from icn.application.errors import ApplicationError

log = logging.getLogger(__name__)

LOCK_NAME = "node.lock"
DIR_MODE = 0o700
FILE_MODE = 0o600
_LOOSE = stat.S_IRWXG | stat.S_IRWXO


class DataDirBusy(ApplicationError):
    """Another process (a running node, an import) holds the data directory's lock."""

    code = "data-dir-busy"

    def __init__(self, data_dir: Path, pid: int | None) -> None:
        who = f"pid {pid}" if pid is not None else "pid unknown"
        super().__init__(f"another node ({who}) is using {data_dir}")
        self.data_dir = data_dir
        self.pid = pid


class DataDirLock:
    """An exclusive, non-blocking ``flock`` on ``<data_dir>/node.lock``, holding our pid."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.path = self.data_dir / LOCK_NAME
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """True while this object holds the lock."""
        return self._fd is not None

    def acquire(self) -> DataDirLock:
        """Take the lock now, or raise :class:`DataDirBusy` naming the holder's pid."""
        if self._fd is not None:
            return self
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
        # O_CLOEXEC (Python's default): an exec'd child such as nats-server never holds it.
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            raise DataDirBusy(self.data_dir, pid) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        """Give the lock up (the pid stays in the file; a stale pid means nothing)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __enter__(self) -> DataDirLock:
        return self.acquire()

    def __exit__(self, *_exc: object) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        return int(os.pread(fd, 32, 0).decode().strip())
    except (OSError, ValueError):
        return None


_held: dict[Path, DataDirLock] = {}


def hold_data_dir(data_dir: Path) -> DataDirLock:
    """Take the data dir's lock for the rest of this process (a CLI command's lifetime).

    Taking it twice in one process is a no-op; the kernel drops it when the process ends.
    """
    key = Path(data_dir).resolve()
    lock = _held.get(key)
    if lock is None:
        lock = DataDirLock(data_dir).acquire()
        _held[key] = lock
    return lock


def secure_data_dir(data_dir: Path) -> list[Path]:
    """Make ``data_dir`` 0700, every folder in it 0700 and every file 0600.

    Returns the paths whose modes were looser (and are now fixed), after one
    warning listing them. A missing directory is left alone (``init`` makes it).
    """
    root = Path(data_dir)
    if not root.is_dir():
        return []
    fixed: list[Path] = []
    if _tighten(root, DIR_MODE):
        fixed.append(root)
    for folder, dirs, files in os.walk(root):
        base = Path(folder)
        for name in dirs:
            if _tighten(base / name, DIR_MODE):
                fixed.append(base / name)
        for name in files:
            if _tighten(base / name, FILE_MODE):
                fixed.append(base / name)
    if fixed:
        shown = ", ".join(str(p) for p in fixed[:10]) + (" …" if len(fixed) > 10 else "")
        log.warning(
            "data dir %s: %d path(s) were readable by others; now %o/%o: %s",
            root, len(fixed), DIR_MODE, FILE_MODE, shown,
        )  # fmt: skip
    return fixed


def _tighten(path: Path, mode: int) -> bool:
    """chmod ``path`` to ``mode`` if group or others have any access (never follows links)."""
    try:
        st = path.lstat()
    except OSError:
        return False  # gone meanwhile (a -shm file, a nats temp file)
    if stat.S_ISLNK(st.st_mode) or not st.st_mode & _LOOSE:
        return False
    with contextlib.suppress(OSError):
        path.chmod(mode)
        return True
    return False
