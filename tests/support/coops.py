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
STORY_NOW = T0 + 86_400_000
"""Trusted time for tests whose decisions do not depend on time: a day after T0, so every
event a script dates (from T0 on, a millisecond per event) lies in the node's past."""


def story_clock() -> int:
    """A node clock standing at :data:`STORY_NOW`."""
    return STORY_NOW


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
        elif advance:
            self.ts = max(self.ts, ts)  # later events never go back in time
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


GENEROUS_POLICY = Policy(
    credit={"hours": CreditPolicy(baseline=1_000_000_000, max_limit=1_000_000_000)}
)
"""Ten million hours of credit each: for tests and benchmarks that are not about limits."""


def found_dids(
    script: CoopScript,
    members: dict[str, list[str]],
    *,
    currencies: list[CurrencySpec] | None = None,
    policy: Policy = DEFAULT_POLICY,
    name: str = "Test coop",
) -> Event:
    """:meth:`CoopScript.found` with members given by DID (a node's own key, generated keys)."""
    body = cb.Founded(
        name=name,
        currencies=currencies or [HOURS],
        policy=policy,
        members=[cb.FoundingMember(did=d, roles=r) for d, r in members.items()],
    )
    return script.event("coop", cb.FOUNDED, body)


# -- logs shaped like the spec's vectors, valid under the coop rules ---------------
#
# The spec's ok.jsonl and faults.jsonl no longer import into a store (their
# coop.Founded body is not the project's, and bike-coop is never founded);
# they keep passing through the store-less ``icn audit verify``. These logs
# have the same shape (two coops, every kind of fault) and satisfy the rules.

VECTOR_LIKE_FOOD = "food-coop"
VECTOR_LIKE_BIKE = "bike-coop"
BIKE_SHARE = CurrencySpec(code="bike-share", unit="ride", decimals=0)
FOOD_MEMBERS = {"alice": ["admin"], "bob": [], "carol": [], "dave": []}


def resign(key: SigningKey, event: Event, **changes: Any) -> Event:
    """``event`` signed again by ``key`` with some members changed (forks, gaps, links)."""
    fields: dict[str, Any] = {
        "coop": event.coop,
        "seq": event.seq,
        "prev": event.prev,
        "ts": event.ts,
        "type": event.type,
        "body": event.body,
    }
    fields.update(changes)
    return sign_event(key, **fields)


def entry_body(payer: str, payee: str, amount: int, currency: str = "hours") -> dict[str, Any]:
    """A one-transaction ``ledger.EntryRecorded`` body between two DIDs."""
    tx = {"from": payer, "to": payee, "amount": amount, "currency": currency, "memo": None}
    return {"transactions": [tx]}


def two_coop_log(
    food_events: int = 29, *, food: CoopScript | None = None, bike: CoopScript | None = None
) -> list[Event]:
    """Like the spec's ok.jsonl: ``food_events`` events of food-coop, 2 of bike-coop, interleaved.

    food-coop is founded with :data:`FOOD_MEMBERS` (default credit policy),
    then payments among them, a trust attestation, a delegation and a charge by the
    coop's DID; bike-coop (alice admin, bob; currency ``bike-share``) is
    founded half-way and has one payment. Every line is ``ok`` for the spec
    and for the coop rules. Pass ``food`` to continue its chains afterwards.
    """
    assert food_events >= 3
    food = food or CoopScript(VECTOR_LIKE_FOOD)
    bike = bike or CoopScript(VECTOR_LIKE_BIKE)
    names = list(FOOD_MEMBERS)
    events = [food.found(FOOD_MEMBERS, name="Food coop")]
    for i in range(food_events - 1):
        if i == 11:
            body = {
                "context": "ledger",
                "expires_ts": None,
                "score_ppm": 800_000,
                "subject": food.did("alice"),
            }
            events.append(food.event("dave", "trust.AttestationRecorded", body))
        elif i == 19:
            charge = entry_body(food.did("alice"), food.coop_did, 3)
            events.append(food.event("coop", "ledger.EntryRecorded", charge))
        elif i == 22:
            # The spec vector's vote names a proposal no log holds, and a vote is
            # judged against its proposal's window at trusted time, which for an
            # imported log is the wall clock: no fixed log keeps a vote valid for
            # ever. A delegation is governance with no window.
            delegation = {"domain": "root", "to": food.did("alice")}
            events.append(food.event("carol", "governance.VoteDelegated", delegation))
        else:
            payer, payee = names[i % 4], names[(i * 3 + 1) % 4]
            if payer == payee:
                payee = names[(i + 1) % 4]
            events.append(food.pay(payer, payee, 50 + (i * 37) % 450, memo=f"job {i}"))
        if i == 15:
            events.append(
                bike.found(
                    {"alice": ["admin"], "bob": []},
                    currencies=[BIKE_SHARE],
                    policy=Policy(credit={"bike-share": CreditPolicy(baseline=50, max_limit=50)}),
                    name="Bike coop",
                )
            )
            events.append(bike.pay("alice", "bob", 9, "bike-share"))
    return events


class FaultsLog:
    """Like the spec's faults.jsonl, for a node with the coop rules.

    ``spec`` is each line's verdict for a verifier of the format (what
    ``icn audit verify FILE`` says); ``node`` is what a node's write path
    answers (the spec verdict, or ``refused`` where a coop rule says no,
    with ``codes`` naming the rule). ``fork`` is the line kept as evidence.
    """

    def __init__(self) -> None:
        self.lines: list[bytes] = []
        self.spec: list[str] = []
        self.node: list[str] = []
        self.codes: dict[int, str] = {}
        """0-based line -> the rule that refused it."""
        self.fork: Event | None = None

    def add(self, line: bytes | Event, spec: str, node: str | None = None, code: str = "") -> None:
        self.lines.append(line.wire_bytes() if isinstance(line, Event) else line)
        self.spec.append(spec)
        self.node.append(node or spec)
        if code:
            self.codes[len(self.lines) - 1] = code

    def write(self, path: Path) -> Path:
        path.write_bytes(b"".join(line + b"\n" for line in self.lines))
        return path


def faults_log() -> FaultsLog:
    """food-coop and bike-coop, then one line of every spec verdict, then ``ok`` again.

    The faults, in order: bad-id, bad-signature, ok, fork, duplicate (alice,
    who is flagged from then on and signs nothing more); eleven kinds of
    malformed; a gap (bob); broken links by prev (carol) and by ts (dave);
    two lines the spec accepts but the coop rules refuse (a second
    coop.Founded, a stranger's vote); finally bob's next event, ``ok``.
    """
    f = FaultsLog()
    food = CoopScript(VECTOR_LIKE_FOOD)
    for event in two_coop_log(29, food=food):
        f.add(event, "ok")
    alice, bob = food.did("alice"), food.did("bob")

    good = food.pay("alice", "bob", 77, advance=False)
    f.add(good.wire_bytes().replace(b'"amount":77', b'"amount":78'), "bad-id")
    other = food.pay("alice", "carol", 5, advance=False)
    f.add(msgspec.structs.replace(other, sig=good.sig), "bad-signature")
    good = food.pay("alice", "bob", 77)
    f.add(good, "ok")
    f.fork = resign(food.key("alice"), good, body=entry_body(alice, bob, 7777))
    f.add(f.fork, "fork")
    f.add(good, "duplicate")

    nxt = food.pay("bob", "carol", 5, advance=False)
    bad_did = nxt.wire_bytes().replace(bob.encode(), b"did:icn:z6MkBAD")
    f.add(bad_did, "malformed")  # author (and payer) not a DID
    f.add(b"{not json", "malformed")
    f.add(b"[]", "malformed")
    f.add(b'{"v":1,"coop":"food-coop"}', "malformed")
    f.add(resign(food.key("bob"), nxt, coop="Food_Coop"), "malformed")
    f.add(resign(food.key("bob"), nxt, seq=0), "malformed")
    f.add(resign(food.key("bob"), nxt, type="Ledger.entry"), "malformed")
    f.add(resign(food.key("bob"), nxt, body=entry_body(bob, bob, 5)), "malformed")
    f.add(resign(food.key("bob"), nxt, body=entry_body(food.did("carol"), bob, 5)), "malformed")
    f.add(resign(food.key("bob"), nxt, body=entry_body(bob, alice, 0)), "malformed")
    big = {
        "transactions": [
            {"from": bob, "to": alice, "amount": 1, "currency": "hours", "memo": "x" * 1024}
        ]
        * 64
    }
    f.add(resign(food.key("bob"), nxt, body=big), "malformed")  # over 64 KiB
    f.add(resign(food.key("bob"), nxt, seq=nxt.seq + 1), "gap")

    carol = food.pay("carol", "dave", 5, advance=False)
    f.add(resign(food.key("carol"), carol, prev=good.id), "broken-link")
    dave = food.pay("dave", "carol", 5, advance=False)
    f.add(resign(food.key("dave"), dave, ts=T0), "broken-link")

    founded = msgspec.json.decode(f.lines[0], type=Event)
    impostor = resign(key_for("impostor"), founded)  # seq 1 of another chain
    f.add(impostor, "ok", "refused", "coop-already-founded")
    stranger = {"proposal": "ab" * 32, "choice": "no", "reason": None}
    vote = food.event("mallory", "governance.VoteCast", stranger, advance=False)
    f.add(vote, "ok", "refused", "not-a-member")

    f.add(food.pay("bob", "carol", 5), "ok")
    return f


def follow(script: CoopScript, event: Event) -> None:
    """Move the author's chain past ``event``, signed with ``advance=False`` and then accepted.

    For stories where a node may refuse an event: sign without advancing,
    submit, and follow only what was accepted (a refusal uses up no seq).
    """
    seq, _ = script._heads.get(event.author, (0, None))
    assert event.seq == seq + 1, f"{event.author} is at seq {seq}, not {event.seq - 1}"
    script._heads[event.author] = (event.seq, event.id)


def keep_coop_key(keys_dir: Path, script: CoopScript, passphrase: str) -> str:
    """Put the script's coop key into a node's keystore as ``coop-<coop>``; returns its DID.

    A node signs the coop's duties (settlements, demurrage) only for coops
    whose key it keeps, so a test that imports a scripted log hands it over.
    """
    from icn.infrastructure.keystore import Keystore
    from icn.interfaces.bootstrap import coop_key_name

    info = Keystore(keys_dir).create(
        coop_key_name(script.coop), passphrase, seed=bytes(script.coop_key)
    )
    return info.did
