"""Several ``icn node run`` processes on one NATS, members posting to random nodes, comparisons.

A member's wallet keeps its own chain: it drafts the next event, posts it,
and moves its head only once a node stored it, so a refused event never
leaves a hole, and an event whose answer was lost (a node killed mid-post)
is posted again *byte for byte* elsewhere: never re-signed, which would
fork the member's chain.
"""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import httpx
import msgspec
from nacl.signing import SigningKey

from icn.domain.coop import bodies as cb
from icn.domain.events.envelope import Event, sign_event
from icn.domain.identity.did import did_from_public_key
from support.nodes import RunningNode, run_icn

ENTRY = "ledger.EntryRecorded"


class Wallet:
    """One member's key and chain in one coop."""

    def __init__(self, coop: str, key: SigningKey, *, seq: int = 0, prev: str | None = None):
        self.coop = coop
        self.key = key
        self.did = did_from_public_key(bytes(key.verify_key))
        self.seq, self.prev, self.ts = seq, prev, 0
        self.lock = threading.Lock()

    def draft(self, type: str, body: dict[str, Any], *, ts: int | None = None) -> Event:
        """The next event of this chain (not yet committed), dated now or at ``ts``."""
        self.ts = max(self.ts + 1, time.time_ns() // 1_000_000 if ts is None else ts)
        return sign_event(
            self.key, coop=self.coop, seq=self.seq + 1, prev=self.prev, ts=self.ts,
            type=type, body=body,
        )  # fmt: skip

    def commit(self, event: Event) -> None:
        """A node stored ``event``: the chain moves on."""
        assert event.seq == self.seq + 1
        self.seq, self.prev = event.seq, event.id

    def pay(
        self, payee: str, amount: int, currency: str = "hours", *, ts: int | None = None
    ) -> Event:
        tx = {"from": self.did, "to": payee, "amount": amount, "currency": currency, "memo": None}
        return self.draft(ENTRY, {"transactions": [tx]}, ts=ts)


def wallets_from_log(coop: str, events: Iterable[Event], keys: dict[str, SigningKey]) -> dict:
    """Wallets (by DID) of ``keys``, with their chains where ``events`` left them."""
    out = {did_from_public_key(bytes(k.verify_key)): Wallet(coop, k) for k in keys.values()}
    for e in events:
        if e.author in out:
            out[e.author].seq, out[e.author].prev, out[e.author].ts = e.seq, e.id, e.ts
    return out


class ReplNode:
    """A running node plus a client that logs members in (once per member) and posts."""

    def __init__(self, name: str, node: RunningNode, coop: str) -> None:
        self.name, self.node, self.coop = name, node, coop
        self.http = httpx.Client(base_url=node.base, timeout=10)
        self.tokens: dict[str, str] = {}
        self.up = True
        self.lock = threading.Lock()

    @property
    def data(self) -> Path:
        return self.node.data

    def token(self, wallet: Wallet) -> str | None:
        """A token for ``wallet`` (None while this node does not know it as a member)."""
        with self.lock:
            cached = self.tokens.get(wallet.did)
        if cached:
            return cached
        ch = self.http.post("/v1/auth/challenge", json={"did": wallet.did})
        ch.raise_for_status()
        nonce = ch.json()["nonce"]
        sig = wallet.key.sign(b"icn-auth-v1:" + bytes.fromhex(nonce)).signature.hex()
        r = self.http.post(
            "/v1/auth/verify",
            json={"did": wallet.did, "nonce": nonce, "signature": sig, "coop": self.coop},
        )
        if r.status_code == 403:
            return None
        r.raise_for_status()
        token = str(r.json()["token"])
        with self.lock:
            self.tokens[wallet.did] = token
        return token

    def post(self, wallet: Wallet, event: Event) -> str:
        """``ok``, ``duplicate``, ``down``, ``unknown-member`` or the refusal's code."""
        try:
            token = self.token(wallet)
            if token is None:
                return "unknown-member"
            r = self.http.post(
                f"/v1/coops/{self.coop}/events",
                content=event.wire_bytes(),
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            )
        except httpx.TransportError:
            return "down"
        if r.status_code == 201:
            return "ok"
        if r.status_code in (401, 403) and r.json().get("code") == "not-a-member":
            return "unknown-member"
        return str(r.json().get("code") or r.status_code)

    def ready(self) -> dict[str, Any]:
        r = self.http.get("/v1/ready")
        return dict(r.json())

    def close(self) -> None:
        self.http.close()


class Load:
    """Members posting payments, admissions and role changes to random nodes, in threads.

    Worker 0 owns the admin (who admits newcomers and assigns roles) and the
    newcomers; the other workers own the remaining members, so each chain is
    written by one thread. A ``rival`` admin (a member owned by another
    worker) now and then admits the newcomer worker 0 is about to admit, on
    some other node: one of the two admissions is refused ``already-member``.
    ``accepted`` holds every event id some node answered 201 (or 409
    duplicate) for: after quiescence, every node must hold all of them.
    """

    def __init__(
        self,
        nodes: list[ReplNode],
        admin: Wallet,
        members: list[Wallet],
        *,
        workers: int = 4,
        pause_s: float = 0.03,
        seed: int = 5,
        newcomer_key: Callable[[int], SigningKey],
        rival: Wallet | None = None,
    ) -> None:
        self.nodes, self.admin = nodes, admin
        self.active: list[str] = [admin.did, *(m.did for m in members)]
        self.newcomers: list[Wallet] = []
        self.pause_s = pause_s
        self.rng = random.Random(seed)
        self.newcomer_key = newcomer_key
        self.rival = rival
        self.owned: list[list[Wallet]] = [[admin]] + [[] for _ in range(workers - 1)]
        for i, m in enumerate(members):
            self.owned[1 + i % (workers - 1)].append(m)
        self.accepted: list[str] = []
        self.outcomes: Counter[str] = Counter()
        self.errors: list[BaseException] = []
        self._rival_did = rival.did if rival is not None else ""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # -- running ------------------------------------------------------------------------

    def start(self) -> Load:
        self._stop.clear()
        self._threads = [
            threading.Thread(target=self._worker, args=(i,), daemon=True)
            for i in range(len(self.owned))
        ]
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=60)
        assert not self.errors, self.errors

    def run_for(self, seconds: float) -> None:
        self.start()
        time.sleep(seconds)
        self.stop()

    def _worker(self, index: int) -> None:
        rng = random.Random(index * 7919 + self.rng.random())
        try:
            while not self._stop.is_set():
                self._one(index, rng)
                time.sleep(self.pause_s)
        except BaseException as exc:  # surfaced by stop()
            self.errors.append(exc)

    def _one(self, index: int, rng: random.Random) -> None:
        if index == 0:
            roll = rng.random()
            if roll < 0.15 and len(self.newcomers) < 12:
                key = self.newcomer_key(len(self.newcomers))
                did = did_from_public_key(bytes(key.verify_key))
                body = msgspec.to_builtins(cb.MemberAdmitted(member=did, roles=[]))
                # Refused only as already-member: the rival's admission came first.
                self.submit(self.admin, self.admin.draft(cb.MEMBER_ADMITTED, body), rng)
                wallet = Wallet(self.admin.coop, key)
                self.newcomers.append(wallet)
                self.owned[0].append(wallet)
                with self._lock:
                    self.active.append(did)
                return
            if roll < 0.25:
                member = rng.choice([d for d in self.active[1:] if d != self._rival_did])
                roles = rng.choice([[], ["steward"]])
                body = msgspec.to_builtins(cb.RolesAssigned(member=member, roles=roles))
                self.submit(self.admin, self.admin.draft(cb.ROLES_ASSIGNED, body), rng)
                return
        wallet = rng.choice(self.owned[index])
        if wallet is self.rival and rng.random() < 0.3 and len(self.newcomers) < 12:
            # Admit the newcomer worker 0 is about to admit (it may be doing so right now).
            did = did_from_public_key(bytes(self.newcomer_key(len(self.newcomers)).verify_key))
            body = msgspec.to_builtins(cb.MemberAdmitted(member=did, roles=[]))
            self.submit(wallet, wallet.draft(cb.MEMBER_ADMITTED, body), rng)
            return
        with self._lock:
            payee = rng.choice([d for d in self.active if d != wallet.did])
        self.submit(wallet, wallet.pay(payee, rng.randint(1, 2_000)), rng)

    def submit(self, wallet: Wallet, event: Event, rng: random.Random) -> bool:
        """Post ``event`` to random live nodes until one stores it or refuses it for good."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            candidates = [n for n in self.nodes if n.up]
            node = rng.choice(candidates)
            outcome = node.post(wallet, event)
            with self._lock:
                self.outcomes[outcome] += 1
            if outcome in ("ok", "duplicate"):
                wallet.commit(event)
                with self._lock:
                    self.accepted.append(event.id)
                return True
            if outcome in ("gap", "down", "unknown-member", "stream-unavailable"):
                # That node has not caught up, is gone, or cannot reach the stream to put
                # the write in order (NATS restarting): try again, as a wallet would.
                time.sleep(0.02)
                continue
            if event.type == ENTRY and outcome in ("not-a-member", "credit-limit-exceeded"):
                return False  # judged in stream order: a wallet just drops the payment
            if event.type == cb.MEMBER_ADMITTED and outcome == "already-member":
                return False  # the other admin's admission reached the stream first
            raise AssertionError(f"{node.name} refused {event.type}: {outcome}")
        raise AssertionError(f"no node took {event.id} within 30 s")


# -- looking inside a node's store (read-only) ------------------------------------------------


def _db(data: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{data / 'icn.sqlite3'}?mode=ro", uri=True, timeout=30)


def log_ids(data: Path, coop: str) -> list[str]:
    """The coop's log as this node holds it: event ids in log order."""
    with _db(data) as db:
        rows = db.execute(
            "SELECT lower(hex(event_id)) FROM log_entries WHERE coop = ? ORDER BY leaf_index",
            (coop,),
        ).fetchall()
    return [r[0] for r in rows]


def trusted_times(data: Path, coop: str) -> dict[str, int]:
    """The trusted time each event of ``coop`` was judged at, by id."""
    with _db(data) as db:
        rows = db.execute(  # ids are kept as their 32 bytes
            "SELECT lower(hex(event_id)), trusted_ms FROM log_entries WHERE coop = ?", (coop,)
        )
        return dict(rows.fetchall())


def chain_heads(data: Path, coop: str) -> dict[str, tuple[int, str]]:
    """Every author's (seq, id) head in the coop."""
    with _db(data) as db:
        rows = db.execute(
            # Authors by DID: each store numbers its authors in the order it met them.
            "SELECT a.did, e.seq, lower(hex(e.event_id)) FROM log_entries e"
            " JOIN log_authors a ON a.id = e.author WHERE e.coop = ? AND e.seq ="
            " (SELECT MAX(seq) FROM log_entries f WHERE f.coop = e.coop AND f.author = e.author)",
            (coop,),
        ).fetchall()
    return {a: (s, i) for a, s, i in rows}


def coop_state(data: Path, coop: str) -> dict[tuple[str, str], bytes]:
    """The coop rules' records (members, accounts, …) as this node holds them."""
    with _db(data) as db:
        rows = db.execute(
            "SELECT kind, key, value FROM coop_state WHERE coop = ?", (coop,)
        ).fetchall()
    return {(k, key): bytes(v) for k, key, v in rows}


def quarantined(data: Path, coop: str) -> list[tuple[str, str]]:
    """Fork evidence: (event id, the id it conflicts with)."""
    with _db(data) as db:
        rows = db.execute(
            "SELECT event_id, conflicts_with FROM quarantine WHERE coop = ? ORDER BY id", (coop,)
        ).fetchall()
    return [(a, b) for a, b in rows]


def audit(icn: str, env: dict[str, str], data: Path, coop: str) -> dict[str, Any]:
    """``icn audit verify --coop`` on a node's store, as JSON."""
    import subprocess

    proc = subprocess.run(
        [icn, "audit", "verify", "--coop", coop, "--data-dir", str(data), "--json"],
        env=env, capture_output=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode in (0, 1), proc.stderr.decode()
    return dict(msgspec.json.decode(proc.stdout))


def checkpoint(icn: str, env: dict[str, str], data: Path, coop: str) -> None:
    """Issue a checkpoint on a (running) node's store: it is replicated like any event."""
    run_icn(icn, env, "log", "checkpoint", "--coop", coop, "--data-dir", str(data))
