"""Signed events of a founded coop, for tests of every layer.

Since the coop rules, a log is only accepted when it starts with a
``coop.Founded`` and every author is a member; this script keeps each
author's chain (seq, prev, ts) so a test reads as the story it tells:
found, admit, pay.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import msgspec
from nacl.signing import SigningKey

from icn.domain.coop import bodies as cb
from icn.domain.coop.records import CreditPolicy, CurrencySpec, Policy
from icn.domain.events.envelope import Event, sign_event
from icn.domain.identity.did import did_from_public_key

HOURS = CurrencySpec(code="hours", unit="hour", decimals=2)
DEFAULT_POLICY = Policy(credit={"hours": CreditPolicy(baseline=10_000, max_limit=50_000)})
"""100.00 hours of credit for everyone, no ramp: tests that care about limits set their own."""

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def key_for(name: str) -> SigningKey:
    """A deterministic key per name, so failures are reproducible."""
    return SigningKey(hashlib.sha256(f"icn-test:{name}".encode()).digest())


def did_for(name: str) -> str:
    """The DID of :func:`key_for` ``(name)``."""
    return did_from_public_key(bytes(key_for(name).verify_key))


def wire(event: Event) -> bytes:
    """The canonical wire bytes of an event."""
    return event.wire_bytes()


class CoopScript:
    """Builds a coop's events in order, keeping every author's chain."""

    def __init__(self, coop: str = "demo", *, ts: int = T0) -> None:
        self.coop = coop
        self.coop_key = key_for(f"coop:{coop}")
        self.coop_did = did_from_public_key(bytes(self.coop_key.verify_key))
        self.ts = ts
        self._heads: dict[str, tuple[int, str]] = {}

    def key(self, who: str | SigningKey) -> SigningKey:
        """A name's key (``"coop"`` is the coop's own)."""
        if isinstance(who, SigningKey):
            return who
        return self.coop_key if who == "coop" else key_for(who)

    def did(self, who: str) -> str:
        """A name's DID."""
        return did_from_public_key(bytes(self.key(who).verify_key))

    def event(
        self,
        who: str | SigningKey,
        type: str,
        body: Any,
        *,
        ts: int | None = None,
        advance: bool = True,
    ) -> Event:
        """The author's next event; ``advance=False`` leaves the chain as it was (for refusals)."""
        key = self.key(who)
        author = did_from_public_key(bytes(key.verify_key))
        seq, prev = self._heads.get(author, (0, None))
        if ts is None:
            self.ts += 1
            ts = self.ts
        event = sign_event(
            key,
            coop=self.coop,
            seq=seq + 1,
            prev=prev,
            ts=ts,
            type=type,
            body=msgspec.to_builtins(body),
        )
        if advance:
            self._heads[author] = (event.seq, event.id)
        return event

    def found(
        self,
        members: dict[str, list[str]] | None = None,
        *,
        currencies: list[CurrencySpec] | None = None,
        policy: Policy = DEFAULT_POLICY,
        name: str = "Test coop",
    ) -> Event:
        """``coop.Founded`` by the coop's DID; default founders: alice (admin) and bob."""
        members = members if members is not None else {"alice": ["admin"], "bob": []}
        body = cb.Founded(
            name=name,
            currencies=currencies or [HOURS],
            policy=policy,
            members=[cb.FoundingMember(did=self.did(n), roles=r) for n, r in members.items()],
        )
        return self.event("coop", cb.FOUNDED, body)

    def pay(
        self,
        payer: str,
        payee: str,
        amount: int,
        currency: str = "hours",
        *,
        memo: str | None = None,
        advance: bool = True,
        ts: int | None = None,
    ) -> Event:
        """A one-transaction ``ledger.EntryRecorded`` signed by ``payer``."""
        body = {
            "transactions": [
                {
                    "from": self.did(payer),
                    "to": self.did(payee),
                    "amount": amount,
                    "currency": currency,
                    "memo": memo,
                }
            ]
        }
        return self.event(payer, "ledger.EntryRecorded", body, advance=advance, ts=ts)

    def admit(self, admin: str, member: str, roles: list[str] | None = None) -> Event:
        """``coop.MemberAdmitted`` by ``admin``."""
        body = cb.MemberAdmitted(member=self.did(member), roles=roles or [])
        return self.event(admin, cb.MEMBER_ADMITTED, body)


def write_jsonl(path: Path, events: list[Event]) -> Path:
    """A log file as ``icn log import`` reads it (one canonical wire event per line)."""
    path.write_bytes(b"".join(e.wire_bytes() + b"\n" for e in events))
    return path


def sample_log(script: CoopScript | None = None, payments: int = 20) -> list[Event]:
    """A small valid story: founded with alice (admin), bob, carol; then payments among them."""
    s = script or CoopScript()
    events = [s.found({"alice": ["admin"], "bob": [], "carol": []})]
    names = ["alice", "bob", "carol"]
    for i in range(payments):
        payer, payee = names[i % 3], names[(i + 1) % 3]
        events.append(s.pay(payer, payee, 100 + i, memo=f"job {i}"))
    return events
