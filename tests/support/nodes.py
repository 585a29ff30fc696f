"""Real ``icn node run`` processes for end-to-end tests, the log they start from, logging in.

One definition of "start a node on a free port and wait until it answers",
so every end-to-end module starts nodes the same way and stops them the
same way (SIGTERM, which must end in exit code 0). Since the coop rules, a
node only accepts events (and only issues tokens) for members of a founded
coop, so :func:`coop_log` writes the story every node imports first.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
from nacl.signing import SigningKey

from icn.domain.identity.did import did_from_public_key
from support.coops import GENEROUS_POLICY, CoopScript, found_dids, key_for, write_jsonl

COOP = "food-coop"
OTHER_COOP = "bike-coop"
MEMBERS = {"alice": ["admin"], "bob": [], "carol": [], "dave": [], "erin": [], "zoe": []}
"""food-coop's founding members (names for :func:`support.coops.key_for`); alice is admin."""
PAYEE = "zoe"
"""A member who only ever receives: tests' payments go to her."""


def member_keys() -> dict[str, SigningKey]:
    """The keys of :data:`MEMBERS`, by name: the keys end-to-end tests log in with."""
    return {name: key_for(name) for name in MEMBERS}


def coop_log(path: Path, *, extra: dict[str, list[str]] | None = None, payments: int = 20) -> Path:
    """The log a test node imports; returns ``path``.

    food-coop: founded by its own DID with :data:`MEMBERS` plus ``extra``
    (DID -> roles: a node's own key, say), with credit far beyond what tests
    spend, then ``payments`` payments among alice, bob and carol (dave, erin
    and zoe have no events). bike-coop: founded with alice and bob, no
    other events; it is "another coop" for tokens.
    """
    food = CoopScript(COOP)
    founders = {food.did(name): roles for name, roles in MEMBERS.items()} | (extra or {})
    events = [found_dids(food, founders, policy=GENEROUS_POLICY, name="Food coop")]
    payers = ["alice", "bob", "carol"]
    for i in range(payments):
        events.append(food.pay(payers[i % 3], payers[(i + 1) % 3], 100 + i, memo=f"job {i}"))
    bike = CoopScript(OTHER_COOP)
    events.append(bike.found({"alice": ["admin"], "bob": []}, name="Bike coop"))
    return write_jsonl(path, events)


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_icn(icn: str, env: dict[str, str], *args: str) -> None:
    """A short ``icn`` command that must succeed."""
    subprocess.run([icn, *args], env=env, check=True, capture_output=True, timeout=120)


class RunningNode:
    """An ``icn node run`` process on a fixed port that can be stopped and started again."""

    def __init__(self, icn: str, env: dict[str, str], data: Path) -> None:
        self.icn, self.data = icn, data
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        # /metrics on a loopback port of the node's own (nodes of parallel tests would all
        # want the default 9464), unless the test chose where.
        self.metrics_addr = env.get("ICN_METRICS_ADDR") or f"127.0.0.1:{free_port()}"
        self.env = {**env, "ICN_METRICS_ADDR": self.metrics_addr}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = data.parent / f"{data.name}.log"

    @property
    def url(self) -> str:
        """Same as :attr:`base`."""
        return self.base

    @property
    def metrics(self) -> str:
        """``GET /metrics``' URL, on its own address (the API's when that is ``api``)."""
        if self.metrics_addr == "api":
            return f"{self.base}/metrics"
        return f"http://{self.metrics_addr}/metrics"

    @property
    def ws_base(self) -> str:
        """The WebSocket origin of the node."""
        return self.base.replace("http://", "ws://")

    def start(self, timeout: float = 30) -> RunningNode:
        """Start serving; return once ``/v1/health`` answers."""
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [self.icn, "node", "run", "--data-dir", str(self.data), "--port", str(self.port)],
                env=self.env, stdout=log, stderr=log,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        try:
            while True:
                assert self.proc.poll() is None, self.log.read_text(errors="replace")[-3000:]
                try:
                    httpx.get(f"{self.base}/v1/health", timeout=1)
                    return self
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "node did not start"
                    time.sleep(0.1)
        except BaseException:
            self.kill()  # nobody holds a node that never started, so nobody would stop it
            raise

    def stop(self) -> float:
        """SIGTERM and wait; the node must exit 0. Returns the seconds it took.

        A node still running 30 s after SIGTERM is killed before the test fails, so a
        failing test leaves no node behind (nor its nats-server and writer, which follow
        it: a death signal and a closed pipe)."""
        assert self.proc is not None
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("the node did not stop within 30 s of SIGTERM (killed)") from None
        assert code == 0, self.log.read_text(errors="replace")[-3000:]
        assert "Traceback" not in self.log.read_text(errors="replace")
        return time.monotonic() - started

    def kill(self) -> None:
        """SIGKILL, if still running, and reap it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


def start_node(icn: str, env: dict[str, str], data: Path, *imports: Path) -> RunningNode:
    """Initialise ``data``, import the files, and serve on a free port."""
    run_icn(icn, env, "node", "init", "--data-dir", str(data))
    for f in imports:
        run_icn(icn, env, "log", "import", str(f), "--data-dir", str(data))
    return RunningNode(icn, env, data).start()


def try_login(base: str, key: SigningKey, coop: str = COOP) -> httpx.Response:
    """DID login over HTTP (a fresh challenge, correctly signed); the answer to ``verify``."""
    did = did_from_public_key(bytes(key.verify_key))
    ch = httpx.post(f"{base}/v1/auth/challenge", json={"did": did})
    assert ch.status_code == 200, ch.text
    nonce = ch.json()["nonce"]
    sig = key.sign(b"icn-auth-v1:" + bytes.fromhex(nonce)).signature.hex()
    return httpx.post(
        f"{base}/v1/auth/verify", json={"did": did, "nonce": nonce, "signature": sig, "coop": coop}
    )


def login(base: str, key: SigningKey, coop: str = COOP) -> str:
    """DID login over HTTP; returns the bearer token."""
    r = try_login(base, key, coop)
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


def bearer(token: str) -> dict[str, str]:
    """The Authorization header for a token."""
    return {"Authorization": f"Bearer {token}"}
