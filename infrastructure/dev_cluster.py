"""A whole cluster on one machine, for development: three NATS servers, N nodes, a demo coop.

``icn dev cluster`` is a thin command over :class:`DevCluster`, and the chaos
e2e test drives the very same class, so what a developer runs is what was
tested. This module only controls processes; what the nodes do is theirs:

- three ``nats-server -js`` in one JetStream cluster (:class:`LocalNatsCluster`),
  each with its own store, all requiring the node user (:mod:`.replication.nats_auth`);
  the nodes' coop streams come out R3 (``streams.default_replicas``);
- N ``icn node run`` processes on consecutive ports, all given every NATS URL and
  ``--serve <coop>``; with ``postgres`` the last one keeps its store in PostgreSQL
  (a server from the ``pgserver`` wheel, as the tests run it);
- the demo coop, seeded once on the first node before it starts (``icn demo seed
  --if-empty``); the others get it from the stream.

Everything lives under one folder: the secrets (passphrase, token secret, NATS
users: 0600 files, named by ``*_FILE`` variables, never put on a command line or
printed), ``nats/n1..n3``, ``node1..nodeN`` and ``postgres``. Stopping goes
nodes first (their last publishes still reach NATS), then the NATS servers, then
PostgreSQL, each by the PID it was started with. Every child runs in a session of
its own (a Ctrl-C reaches only the cluster, which stops them in that order) and,
on Linux, gets SIGTERM should the cluster process die (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from icn.infrastructure.replication.nats_auth import ensure_users, write_secret
from icn.infrastructure.replication.nats_server import HOST, LocalNatsCluster, _death_signal

NATS_SERVERS = 3
DEMO_COOP = "demo"
PG_DATABASE = "icn"

OWNED_ENV = frozenset(
    {
        "ICN_PASSPHRASE", "ICN_PASSPHRASE_FILE", "ICN_JWT_SECRET", "ICN_JWT_SECRET_FILE",
        "ICN_NATS_URL", "ICN_NATS_USER", "ICN_NATS_PASSWORD", "ICN_NATS_PASSWORD_FILE",
        "ICN_DATA_DIR", "ICN_DATABASE_URL", "ICN_HTTP_HOST", "ICN_HTTP_PORT", "ICN_SERVE",
        "ICN_CONFIG", "ICN_METRICS_ADDR",
    }
)  # fmt: skip
"""Variables the cluster sets for its nodes itself; the caller's own are not passed on (a
developer's ``ICN_DATA_DIR`` or ``ICN_DATABASE_URL`` must not point three nodes at one
store). Every other ``ICN_*`` (rate limits, checkpoint timing, log format) is."""


class DevClusterError(RuntimeError):
    """The cluster could not be started as asked (a port taken, a node that did not start)."""


@dataclass(frozen=True)
class ClusterFiles:
    """Where a cluster folder keeps each thing."""

    base: Path

    @property
    def passphrase(self) -> Path:
        """The keystores' passphrase (``ICN_PASSPHRASE_FILE`` of every node)."""
        return self.base / "passphrase"

    @property
    def jwt_secret(self) -> Path:
        """The API token secret shared by the nodes (``ICN_JWT_SECRET_FILE``)."""
        return self.base / "jwt-secret"

    @property
    def nats_users(self) -> Path:
        """Every NATS user and password (the servers' ``authorization``)."""
        return self.base / "nats-users.json"

    @property
    def nats_password(self) -> Path:
        """The node user's password alone (``ICN_NATS_PASSWORD_FILE``)."""
        return self.base / "nats-node.password"

    @property
    def nats(self) -> Path:
        return self.base / "nats"

    @property
    def postgres(self) -> Path:
        return self.base / "postgres"

    def node(self, index: int) -> Path:
        """Node ``index``'s data dir (1-based)."""
        return self.base / f"node{index}"


def ensure_secrets(files: ClusterFiles) -> None:
    """Generate the cluster's secrets the first time (0600 files); keep them afterwards."""
    files.base.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not files.passphrase.exists():
        write_secret(files.passphrase, secrets.token_urlsafe(32).encode())
    if not files.jwt_secret.exists():
        write_secret(files.jwt_secret, secrets.token_urlsafe(48).encode())
    users = ensure_users(files.base)  # nats-users.json
    write_secret(files.nats_password, users.node.password.encode())


def port_free(port: int) -> bool:
    """True when nothing listens on ``HOST:port`` (0: any port will do)."""
    if port == 0:
        return True
    with socket.socket() as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def get_json(url: str, timeout: float = 2.0) -> dict[str, Any] | None:
    """The JSON body of ``url`` whatever the status (a 503 /v1/ready says why), or None."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            body = resp.read()
    except urllib.error.HTTPError as exc:
        body = exc.read()
    except (urllib.error.URLError, OSError):
        return None
    try:
        value = json.loads(body)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def icn_argv(*args: str) -> list[str]:
    """``icn`` with this interpreter (a venv's, whatever PATH says)."""
    return [sys.executable, "-m", "icn.interfaces.cli.main", *args]


@dataclass
class NodeProcess:
    """One ``icn node run`` of the cluster: its data dir, port, log and process."""

    name: str
    data_dir: Path
    port: int
    argv: list[str]
    env: dict[str, str]
    database: str = "SQLite"
    metrics_port: int = 0
    """Its own ``/metrics`` port: every node defaults to one loopback port, so on one host
    all but the first would serve none."""
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def metrics_url(self) -> str:
        return f"http://{HOST}:{self.metrics_port}/metrics"

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / f"{self.name}.log"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def spawn(self) -> None:
        """Start the process (from a thread that lives as long as the cluster)."""
        if self.pid is not None:
            return
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=self.env, start_new_session=True, preexec_fn=_death_signal(os.getpid()),
            )  # fmt: skip

    def wait_healthy(self, timeout: float) -> None:
        """Until ``/v1/health`` answers; the log's tail in the error if the node exits."""
        deadline = time.monotonic() + timeout
        while True:
            if self.proc is None or self.proc.poll() is not None:
                code = self.proc.returncode if self.proc is not None else None
                raise DevClusterError(
                    f"{self.name} exited with code {code} while starting; last lines of "
                    f"{self.log_path}:\n{self.log_tail()}"
                )
            if get_json(f"{self.base_url}/v1/health", timeout=1) is not None:
                return
            if time.monotonic() > deadline:
                raise DevClusterError(f"{self.name} did not answer /v1/health in {timeout:g} s")
            time.sleep(0.1)

    def start(self, timeout: float = 120) -> None:
        self.spawn()
        self.wait_healthy(timeout)

    def terminate(self) -> None:
        """SIGTERM (the node finishes its batches and exits)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()

    def wait_stopped(self, timeout: float) -> int | None:
        """Wait for the exit; SIGKILL after ``timeout``. The exit code (None: never started)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait()

    def stop(self, timeout: float = 30) -> int | None:
        self.terminate()
        return self.wait_stopped(timeout)

    def kill(self) -> None:
        """SIGKILL, no shutdown at all (the chaos test's crash)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


class Postgres:
    """A PostgreSQL server from the ``pgserver`` wheel, its data under the cluster folder.

    It listens on a Unix socket only (no TCP port), with local trust auth: a URL
    without a password. ``pgserver`` comes with the test extras (``pip install
    -e '.[test]'``); without it ``--postgres`` says so.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._server: Any = None
        self.url = ""

    def start(self) -> str:
        try:
            with warnings.catch_warnings():  # its import warns of a missing XDG_RUNTIME_DIR
                warnings.simplefilter("ignore")
                from pgserver import get_server  # type: ignore[attr-defined]
        except ImportError:
            raise DevClusterError(
                "--postgres runs PostgreSQL from the pgserver wheel, which is not installed: "
                f"{sys.executable} -m pip install pgserver (it comes with the test extras)"
            ) from None
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            self._server = get_server(self.folder / "data", cleanup_mode="stop")
            query = f"SELECT 1 FROM pg_database WHERE datname = '{PG_DATABASE}';"
            known = self._server.psql(query)
            if "(1 row)" not in known:
                self._server.psql(f"CREATE DATABASE {PG_DATABASE};")
        except (OSError, subprocess.SubprocessError) as exc:
            raise DevClusterError(
                f"PostgreSQL did not start ({exc}); its log: {self.folder / 'data' / 'log'}"
            ) from None
        socket_dir = self._socket_dir(str(self._server.get_uri()))
        self.url = (
            f"postgresql+psycopg://postgres:@/{PG_DATABASE}?host={quote(socket_dir, safe='/')}"
        )
        return self.url

    @property
    def pid(self) -> int | None:
        if self._server is None:
            return None
        with contextlib.suppress(Exception):
            return int(self._server.get_pid())
        return None

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.cleanup()

    @staticmethod
    def _socket_dir(uri: str) -> str:
        from urllib.parse import parse_qs, urlsplit

        host = parse_qs(urlsplit(uri).query).get("host", [""])[0]
        if not host:
            raise DevClusterError(f"pgserver gave no socket folder: {uri}")
        return host


class DevCluster:
    """Three NATS servers, ``nodes`` nodes and the demo coop, started and stopped together."""

    def __init__(
        self,
        base: Path,
        *,
        nodes: int = 3,
        postgres: bool = False,
        http_port: int = 8080,
        coop: str = DEMO_COOP,
        environ: dict[str, str] | None = None,
        start_timeout: float = 120.0,
    ) -> None:
        if nodes < 1:
            raise DevClusterError("a cluster needs at least one node")
        self.files = ClusterFiles(Path(base).resolve())
        self.coop = coop
        self.size = nodes
        self.use_postgres = postgres
        self.http_port = http_port
        self.start_timeout = start_timeout
        source = dict(os.environ if environ is None else environ)
        self._environ = {k: v for k, v in source.items() if k.upper() not in OWNED_ENV}
        self.nats: LocalNatsCluster | None = None
        self.postgres: Postgres | None = None
        self.nodes: list[NodeProcess] = []

    @property
    def nats_urls(self) -> list[str]:
        return self.nats.urls if self.nats is not None else []

    def node_env(self) -> dict[str, str]:
        """What every node runs with: the caller's environment (ICN_* it owns removed)
        plus the cluster's credential files."""
        f = self.files
        return {
            **self._environ,
            "ICN_PASSPHRASE_FILE": str(f.passphrase),
            "ICN_JWT_SECRET_FILE": str(f.jwt_secret),
            "ICN_NATS_USER": ensure_users(f.base).node.user,
            "ICN_NATS_PASSWORD_FILE": str(f.nats_password),
        }

    # -- starting ----------------------------------------------------------------------------

    def start(self, *, wait_replicated: bool = True) -> DevCluster:
        """Start everything; on any failure stop what did start and raise."""
        try:
            self._start(wait_replicated)
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self, wait_replicated: bool) -> None:
        ports = self._ports()
        ensure_secrets(self.files)
        users = ensure_users(self.files.base)
        self.nats = LocalNatsCluster(self.files.nats, size=NATS_SERVERS, users=users)
        for server in self.nats.servers:  # they elect a meta leader while the nodes are made
            server.spawn()
        if self.use_postgres:
            self.postgres = Postgres(self.files.postgres)
            self._write_database_url(self.files.node(self.size), self.postgres.start())
        env = self.node_env()
        for index, port in enumerate(ports, start=1):
            on_pg = self.use_postgres and index == self.size
            database = "PostgreSQL" if on_pg else "SQLite"
            metrics = free_port()
            node_env = {**env, "ICN_METRICS_ADDR": f"{HOST}:{metrics}"}
            node = NodeProcess(
                f"node{index}", self.files.node(index), port, [], node_env, database, metrics
            )
            self.nodes.append(node)
        self._run_all(env, [("node", "init", "--data-dir", str(n.data_dir)) for n in self.nodes])
        for server in self.nats.servers:
            server.wait_ready()
        urls = ",".join(self.nats.urls)
        for node in self.nodes:
            node.argv = icn_argv(
                "node", "run", "--data-dir", str(node.data_dir), "--host", HOST,
                "--port", str(node.port), "--nats", urls, "--serve", self.coop,
            )  # fmt: skip
        # The others start (and wait for the coop's stream) while the first is seeded.
        first, *others = self.nodes
        for node in others:
            node.spawn()
        seed = ("demo", "seed", "--coop", self.coop, "--if-empty")
        self._run_all(env, [(*seed, "--data-dir", str(first.data_dir))])
        first.spawn()
        for node in self.nodes:
            node.wait_healthy(self.start_timeout)
        if wait_replicated:
            self.wait_replicated(self.start_timeout)

    def _ports(self) -> list[int]:
        if self.http_port == 0:
            return [free_port() for _ in range(self.size)]
        ports = [self.http_port + i for i in range(self.size)]
        if ports[-1] > 65535:
            raise DevClusterError(f"ports {ports[0]}..{ports[-1]} do not all exist")
        taken = [p for p in ports if not port_free(p)]
        if taken:
            raise DevClusterError(
                f"port {taken[0]} is in use: choose another first port with --port "
                "(0: any free ports)"
            )
        return ports

    def _write_database_url(self, data: Path, url: str) -> None:
        """The node's own icn.toml names its database, so ``icn ... --data-dir`` finds it."""
        data.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_secret(data / "icn.toml", f"database_url = {json.dumps(url)}\n".encode())

    def _run_all(self, env: dict[str, str], commands: list[tuple[str, ...]]) -> None:
        """Run these ``icn`` commands side by side; raise naming the first that failed."""
        procs = [
            (args, subprocess.Popen(
                icn_argv(*args), env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE, start_new_session=True,
            ))
            for args in commands
        ]  # fmt: skip
        failed = ""
        for args, proc in procs:
            try:
                _, stderr = proc.communicate(timeout=self.start_timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                _, stderr = proc.communicate()
            if proc.returncode != 0 and not failed:
                detail = stderr.decode(errors="replace").strip()[-2000:]
                failed = f"icn {' '.join(args[:2])} failed ({proc.returncode}): {detail}"
        if failed:
            raise DevClusterError(failed)

    def wait_replicated(self, timeout: float) -> int:
        """Until every node holds the coop at one size with nothing left to publish or
        consume; that size."""
        deadline = time.monotonic() + timeout
        last: list[Any] = []
        while time.monotonic() < deadline:
            last = [self._coop_look(node) for node in self.nodes]
            sizes = {look[0] for look in last}
            if len(sizes) == 1 and last[0][0] and all(look[1:] == (0, 0) for look in last):
                return int(last[0][0])
            time.sleep(0.25)
        raise DevClusterError(
            f"the nodes did not agree on {self.coop} within {timeout:g} s "
            f"(size, consumer lag, outbox backlog per node): {last}"
        )

    def _coop_look(self, node: NodeProcess) -> tuple[Any, Any, Any]:
        ready = get_json(f"{node.base_url}/v1/ready") or {}
        rep = ((ready.get("replication") or {}).get("coops") or {}).get(self.coop) or {}
        size = ((ready.get("coops") or {}).get(self.coop) or {}).get("size")
        return size, rep.get("consumer_lag"), rep.get("outbox_backlog")

    # -- stopping ----------------------------------------------------------------------------

    def stop(self, node_timeout: float = 30) -> dict[str, int | None]:
        """Nodes (SIGTERM, all at once), then NATS, then PostgreSQL; each node's exit code."""
        for node in self.nodes:
            node.terminate()
        codes = {node.name: node.wait_stopped(node_timeout) for node in self.nodes}
        if self.nats is not None:
            self.nats.stop()
        if self.postgres is not None:
            self.postgres.stop()
        return codes

    def pids(self) -> dict[str, int]:
        """Every process the cluster runs right now, by name."""
        found: dict[str, int] = {}
        for node in self.nodes:
            if node.pid is not None:
                found[node.name] = node.pid
        if self.nats is not None:
            for index, server in enumerate(self.nats.servers, start=1):
                if server.pid is not None:
                    found[f"nats-n{index}"] = server.pid
        if self.postgres is not None and self.postgres.pid is not None:
            found["postgres"] = self.postgres.pid
        return found
