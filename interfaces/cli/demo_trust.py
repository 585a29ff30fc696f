"""The demo coop's web of trust: who vouches for whom over its eight weeks.

Believable rather than random: the founders vouch for each other in the first
days; each newcomer is vouched for by two or three people who were there
before them (the ones who admitted and worked with them), and vouches back
and for a few others once settled in; some also vouch in the ``ledger``
context. A few stories the classes should show: Elena withdraws her
attestation of Farid after the bookshelf dispute; Hiro raises his score of
Isla; Quinn's trust in Rosa was for a trial fortnight and has expired; Tomasz,
the last to join, is barely known. The first epoch is published at the end
of the seed, by the coop's key, like the node's duty would.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from nacl.signing import SigningKey

from icn.domain.coop.records import DAY_MS
from icn.domain.events.envelope import Event
from icn.domain.trust import bodies as b

HOUR = 3_600_000
NOTES = [
    "reliable, always on time",
    "great with the kids",
    "fixed my bike twice",
    "honest about what they can do",
    "helped me move",
    "we run the market stall together",
    None,
    None,
]

Plan = list[tuple[int, Callable[[int], None]]]
Sign = Callable[[SigningKey, str, dict[str, Any], int], Event]


class Member(Protocol):
    """What the plan reads of a demo person."""

    name: str
    key: SigningKey
    did: str
    day: int
    joined_ms: int | None


def _first(p: Member) -> str:
    return p.name.split()[0]


def trust_plan(sign: Sign, people: Sequence[Member], start: int, rng: random.Random) -> Plan:
    """The attestations and revocations of the demo, each at its moment; an action skips
    itself when either side has not joined yet by then (admissions happen at random hours)."""
    said: dict[tuple[str, str, str], Event] = {}
    plan: Plan = []

    def vouch(
        truster: Member, subject: Member, score: int, context: str = "general", **extra: Any
    ) -> Callable[[int], None]:
        def act(ts: int) -> None:
            if any(p.joined_ms is None or p.joined_ms >= ts for p in (truster, subject)):
                return
            body = {"subject": subject.did, "context": context, "score_ppm": score, **extra}
            body.setdefault("note", rng.choice(NOTES))
            key = (truster.did, subject.did, context)
            said[key] = sign(truster.key, b.ATTESTATION_RECORDED, body, ts)

        return act

    def revoke(truster: Member, subject: Member) -> Callable[[int], None]:
        def act(ts: int) -> None:
            made = said.pop((truster.did, subject.did, "general"), None)
            if made is not None:
                sign(truster.key, b.ATTESTATION_REVOKED, {"attestation": made.id}, ts)

        return act

    def score() -> int:
        return rng.choice([600_000, 700_000, 800_000, 800_000, 900_000, 1_000_000])

    def at(day: float) -> int:
        return start + int(day * DAY_MS) + rng.randint(8, 21) * HOUR

    founders = [p for p in people if p.day == 0]
    for p in founders:
        for q in rng.sample([f for f in founders if f is not p], 3):
            plan.append((at(rng.uniform(1, 4)), vouch(p, q, score())))
    for i, p in enumerate(people):
        if p.day == 0 or _first(p) == "Tomasz":
            continue
        earlier = people[:i]
        for q in rng.sample(earlier, min(len(earlier), rng.randint(2, 3))):
            plan.append((at(p.day + rng.uniform(3, 8)), vouch(q, p, score())))
            plan.append((at(p.day + rng.uniform(5, 12)), vouch(p, q, score())))
            if rng.random() < 0.3:
                plan.append((at(p.day + rng.uniform(6, 14)), vouch(q, p, score(), "ledger")))
    by = {_first(p): p for p in people}
    trial = at(30)
    fortnight = trial + 14 * DAY_MS
    plan += [
        (at(30), vouch(by["Elena"], by["Farid"], 900_000, note="built our shelves")),
        (at(42), revoke(by["Elena"], by["Farid"])),
        (at(20), vouch(by["Hiro"], by["Isla"], 600_000, note="new, seems keen")),
        (at(40), vouch(by["Hiro"], by["Isla"], 1_000_000, note="the best tutor we have")),
        (trial, vouch(by["Quinn"], by["Rosa"], 800_000, note="trial", expires_ts=fortnight)),
        (at(45), vouch(by["Sam"], by["Tomasz"], 500_000, note="met once at the stall")),
    ]
    return plan
