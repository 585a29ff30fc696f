"""``icn demo seed``: a living coop to look at, made only of events the node accepts.

Twenty members (their keys custodial in the node's keystore), eight weeks of
simulated history: a founding, applications and admissions, a few hundred
payments that each respect the credit policy as it stood at their time (the
generator checks the same limit function the node applies, and then the
node's own write path judges every event anyway), one frozen account, one
dispute reversed and settled by the coop's DID, a web of trust with its
first standing epoch (:mod:`icn.interfaces.cli.demo_trust`), and governance: a
delegation, a charter proposal voted, closed and executed by the coop's key,
and a budget proposal still open with votes (:mod:`icn.interfaces.cli.demo_governance`);
the three example contracts deployed by vote, the time bank in use
(:mod:`icn.interfaces.cli.demo_contracts`).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any

import nacl.utils
import typer
from nacl.signing import SigningKey

from icn.application.coop_duties import CoopDuties
from icn.application.coop_view import decode_record
from icn.application.errors import BatchRefused
from icn.application.queries import coop_of
from icn.domain.coop import bodies as cb
from icn.domain.coop.records import (
    DAY_MS,
    AccountRecord,
    CreditPolicy,
    CurrencySpec,
    Policy,
)
from icn.domain.events.bodies import ENTRY_RECORDED
from icn.domain.events.envelope import Event, inspect, sign_event
from icn.domain.identity.did import did_from_public_key
from icn.domain.ledger import bodies as lb
from icn.domain.ledger.credit import credit_limit
from icn.infrastructure.passphrase import resolve_passphrase
from icn.interfaces.bootstrap import Node, clock_ms, coop_key_name
from icn.interfaces.cli.common import DataDir, Json, err, out, print_json
from icn.interfaces.cli.demo_contracts import Deploys, carry_out, contracts_plan
from icn.interfaces.cli.demo_governance import CHARTER_SECTION, Decisions, governance_plan
from icn.interfaces.cli.demo_trust import trust_plan
from icn.interfaces.cli.writes import Refused, check_coop_id, local_node, shown

app = typer.Typer(help="Demo data for a node.", no_args_is_help=True)

HOURS = CurrencySpec(code="hours", unit="hour", decimals=2)
POLICY = Policy(
    credit={
        "hours": CreditPolicy(
            baseline=2_000,  # 20.00 hours for everyone …
            history_rate_ppm=100_000,  # … plus 10 % of all they have been paid …
            max_limit=6_000,  # … up to 60.00 hours,
            initial_limit=500,  # starting at 5.00 hours on the day of joining
            ramp_days=21,  # and growing to the full limit over three weeks.
        )
    }
)
WEEKS = 8
CHUNK = 250

# (name, roles, day of joining: 0 = founder)
PEOPLE: list[tuple[str, list[str], int]] = [
    ("Amara Okafor", ["admin"], 0),
    ("Ben Hollis", ["mediator"], 0),
    ("Chiara Rossi", ["treasurer"], 0),
    ("Dev Patel", [], 0),
    ("Elena Novak", [], 0),
    ("Farid Haddad", [], 0),
    ("Grace Mwangi", [], 2),
    ("Hiro Tanaka", [], 3),
    ("Isla MacLeod", [], 5),
    ("Jonas Berg", [], 6),
    ("Kemi Adeyemi", [], 8),
    ("Luis Ortega", [], 9),
    ("Maya Cohen", [], 11),
    ("Nils Andersen", [], 13),
    ("Olivia Brooks", [], 15),
    ("Priya Raman", [], 17),
    ("Quinn Doyle", [], 20),
    ("Rosa Jimenez", [], 22),
    ("Sam Whitfield", [], 24),
    ("Tomasz Kowal", [], 27),
]

# (memo, typical hours, fixed: the memo names the time)
WORK: list[tuple[str, float, bool]] = [
    ("bike repair", 1.5, False),
    ("2h childcare", 2, True),
    ("sourdough baking class", 2.5, False),
    ("garden weeding", 1.5, False),
    ("Spanish conversation lesson", 1, True),
    ("fixed a leaky tap", 1.25, False),
    ("moving help", 3, False),
    ("website fixes for the bakery", 2, False),
    ("haircut", 0.75, True),
    ("dog walking", 0.5, True),
    ("tax return help", 2, False),
    ("sewing repairs", 1, False),
    ("flat-pack furniture assembly", 1.5, False),
    ("maths tutoring", 1, True),
    ("lift to the hospital", 1, False),
    ("meal prep for the week", 2.5, False),
    ("guitar lesson", 1, True),
    ("painting the fence", 3, False),
    ("laptop setup and backups", 1.5, False),
    ("translating a letter", 0.75, False),
    ("jam and preserves", 0.5, True),
    ("rewired a lamp", 0.5, False),
    ("photos for the market stall", 2, False),
    ("built a bookshelf", 2.5, False),
    ("compost workshop", 1.5, True),
    ("visit and shopping for Mrs. Ellis", 2, False),
    ("bread delivery round", 0.5, True),
    ("yoga session", 1, True),
    ("knife sharpening", 0.5, True),
    ("bookkeeping help", 1.5, False),
    ("3h babysitting", 3, True),
    ("wall plastering", 2.5, False),
]


def _key_name(coop: str, name: str) -> str:
    return f"{coop}-{name.split()[0].lower()}"


@dataclass
class _Person:
    name: str
    key: SigningKey
    did: str
    roles: list[str]
    day: int
    joined_ms: int | None = None
    frozen: bool = False


@dataclass
class _Story:
    """Signs events in time order, keeping every author's chain and the balances."""

    coop: str
    policy: CreditPolicy
    rng: random.Random
    events: list[Event] = field(default_factory=list)
    heads: dict[str, tuple[int, str]] = field(default_factory=dict)
    balance: dict[str, int] = field(default_factory=dict)
    cleared: dict[str, int] = field(default_factory=dict)
    payments: int = 0
    volume: int = 0

    def sign(self, key: SigningKey, type_: str, body: dict[str, Any], ts: int) -> Event:
        author = did_from_public_key(bytes(key.verify_key))
        seq, prev = self.heads.get(author, (0, None))
        event = sign_event(
            key, coop=self.coop, seq=seq + 1, prev=prev, ts=ts, type=type_, body=body
        )
        self.heads[author] = (event.seq, event.id)
        self.events.append(event)
        return event

    def room(self, payer: _Person, ts: int) -> int:
        """How much ``payer`` may pay at ``ts``: the node's own limit function."""
        limit = credit_limit(
            self.policy,
            cleared_volume=self.cleared.get(payer.did, 0),
            trust_ppm=0,
            joined_ms=payer.joined_ms,
            now_ms=ts,
        ).limit
        return self.balance.get(payer.did, 0) + limit

    def pay(self, payer: _Person, payee: _Person, units: int, memo: str, ts: int) -> Event | None:
        if units <= 0 or units > self.room(payer, ts):
            return None
        tx = {"from": payer.did, "to": payee.did, "amount": units, "currency": "hours"}
        event = self.sign(payer.key, ENTRY_RECORDED, {"transactions": [{**tx, "memo": memo}]}, ts)
        self.balance[payer.did] = self.balance.get(payer.did, 0) - units
        self.balance[payee.did] = self.balance.get(payee.did, 0) + units
        self.cleared[payee.did] = self.cleared.get(payee.did, 0) + units
        self.payments += 1
        self.volume += units
        return event


def _quarters(hours: float) -> int:
    """Hours rounded to a quarter, in units of 0.01 h."""
    return max(25, round(hours * 4) * 25)


def _a_payment(story: _Story, people: list[_Person], ts: int) -> None:
    """One realistic payment between active members, within the payer's limit, if any fits."""
    rng = story.rng
    active = [p for p in people if p.joined_ms is not None and p.joined_ms < ts]
    payers = [p for p in active if not p.frozen]
    for _ in range(20):
        if len(active) < 2 or not payers:
            return
        payer = rng.choice(payers)
        payee = rng.choice([p for p in active if p is not payer])
        memo, hours, fixed = rng.choice(WORK)
        units = _quarters(hours if fixed else hours * rng.uniform(0.6, 1.6))
        room = story.room(payer, ts)
        if units > room and not fixed:
            units = room // 25 * 25  # what they can still afford, in quarter hours
        if story.pay(payer, payee, units, memo, ts) is not None:
            return


def _write(
    story: _Story, people: list[_Person], coop_key: SigningKey, start: int, now: int, name: str
) -> tuple[str, Decisions, Deploys]:
    """Every event of the story, in time order; returns the dispute's id and the proposals'."""
    rng = story.rng
    by_name = {p.name.split()[0]: p for p in people}
    admin, mediator = by_name["Amara"], by_name["Ben"]
    founders = [p for p in people if p.day == 0]
    founded = start + 9 * 3_600_000
    story.sign(
        coop_key,
        cb.FOUNDED,
        {
            "name": name,
            "currencies": [{"code": "hours", "unit": "hour", "decimals": 2}],
            "policy": _policy_doc(story.policy),
            "members": [{"did": p.did, "roles": p.roles} for p in founders],
        },
        founded,
    )
    for p in founders:
        p.joined_ms = founded

    # What happens when, besides payments: (ts, action)
    plan: list[tuple[int, Callable[[int], None]]] = []
    for p in people:
        if p.day == 0:
            continue
        applied = start + p.day * DAY_MS + rng.randint(8, 12) * 3_600_000

        def apply(ts: int, p: _Person = p) -> None:
            story.sign(p.key, cb.MEMBER_APPLIED, {"note": f"Hi, I'm {p.name.split()[0]}!"}, ts)

        def admit(ts: int, p: _Person = p) -> None:
            story.sign(admin.key, cb.MEMBER_ADMITTED, {"member": p.did, "roles": p.roles}, ts)
            p.joined_ms = ts

        plan += [(applied, apply), (applied + rng.randint(2, 20) * 3_600_000, admit)]

    dispute: dict[str, str] = {}
    elena, farid, dev = by_name["Elena"], by_name["Farid"], by_name["Dev"]

    def delivery(ts: int) -> None:
        event = story.pay(elena, farid, 300, "bookshelf delivery", ts)
        assert event is not None, "Elena can afford the delivery"
        dispute["entry"] = event.id

    def file(ts: int) -> None:
        body = {
            "entry": dispute["entry"],
            "transaction": 0,
            "reason": "The bookshelf never arrived.",
            "evidence": ["messages of 2 and 4 days ago, unanswered"],
        }
        dispute["id"] = story.sign(elena.key, lb.DISPUTE_FILED, body, ts).id

    def answer(ts: int) -> None:
        body = {"dispute": dispute["id"], "response": "My van broke down; I can't deliver it."}
        story.sign(farid.key, lb.DISPUTE_ANSWERED, body, ts)

    def assign(ts: int) -> None:
        body = {"dispute": dispute["id"], "mediator": mediator.did}
        story.sign(admin.key, lb.MEDIATOR_ASSIGNED, body, ts)

    def resolve(ts: int) -> None:
        body = {
            "dispute": dispute["id"],
            "outcome": lb.Outcome.REVERSED,
            "note": "Both agree nothing was delivered: the payment is reversed.",
        }
        story.sign(mediator.key, lb.DISPUTE_RESOLVED, body, ts)

    def freeze(ts: int) -> None:
        body = {"member": dev.did, "reason": "Tool-library deposit unpaid; under review."}
        story.sign(admin.key, lb.ACCOUNT_FROZEN, body, ts)
        dev.frozen = True

    hour = 3_600_000
    plan += [
        (start + 36 * DAY_MS + 10 * hour, delivery),
        (start + 38 * DAY_MS + 19 * hour, file),
        (start + 39 * DAY_MS + 9 * hour, answer),
        (start + 39 * DAY_MS + 12 * hour, assign),
        (start + 41 * DAY_MS + 17 * hour, resolve),
        (start + 47 * DAY_MS + 11 * hour, freeze),
    ]
    plan += [(ts, lambda ts: _a_payment(story, people, ts)) for ts in _payment_times(rng, start)]
    plan += trust_plan(story.sign, people, start, random.Random(f"{story.coop}:{start}:trust"))
    gov_rng = random.Random(f"{story.coop}:{start}:governance")
    governance, decisions = governance_plan(story.sign, people, start, now, gov_rng)
    plan += governance
    deploy_rng = random.Random(f"{story.coop}:{start}:contracts")
    deploying, deploys = contracts_plan(story.sign, people, start, deploy_rng)
    plan += deploying
    for ts, action in sorted(plan, key=lambda item: item[0]):
        action(ts)
    return dispute["id"], decisions, deploys


def _payment_times(rng: random.Random, start: int, n: int = 320) -> list[int]:
    """``n`` moments between 08:00 and 21:00, more of them as the coop grows."""
    days = WEEKS * 7 - 1
    weights = [1 + sum(1 for _, _, joined in PEOPLE if joined <= d) for d in range(days)]
    chosen = rng.choices(range(days), weights=weights, k=n)
    return [start + d * DAY_MS + rng.randint(8 * 3600, 21 * 3600) * 1000 for d in chosen]


def _policy_doc(policy: CreditPolicy) -> dict[str, Any]:
    return {
        "credit": {
            "hours": {
                "baseline": policy.baseline,
                "history_rate_ppm": policy.history_rate_ppm,
                "trust_multiplier_ppm": policy.trust_multiplier_ppm,
                "max_limit": policy.max_limit,
                "initial_limit": policy.initial_limit,
                "ramp_days": policy.ramp_days,
            }
        }
    }


def _append(node: Node, events: list[Event]) -> None:
    """Judge the simulated weeks at the times they are dated: trusted time is the node's
    clock, and here the node itself writes the whole history, so the clock it simulates
    is the one to judge by (ramps grow, the freeze ends, as in a coop that lived them)."""
    for i in range(0, len(events), CHUNK):
        chunk = events[i : i + CHUNK]
        try:
            node.append.append_inspected(
                [inspect(e.wire_bytes()) for e in chunk],
                atomic=True,
                trusted_ms=[e.ts for e in chunk],
            )
        except BatchRefused as exc:  # a bug in this generator: say which event
            bad = chunk[exc.line - 1]
            raise Refused(
                "demo-refused", f"the node refused the demo's {bad.type} {bad.id}: {exc.reason}"
            ) from None


@app.command("seed")
def seed(
    coop: Annotated[str, typer.Option("--coop", help="Id of the demo coop.")] = "demo",
    name: Annotated[str, typer.Option("--name", help="Its name.")] = "Riverside Makers Co-op",
    if_empty: Annotated[
        bool,
        typer.Option("--if-empty", help="Do nothing (exit 0) if the node has any coop already."),
    ] = False,
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """Found a demo coop with 20 members and eight weeks of payments (keys custodial here)."""
    check_coop_id(coop)
    names = [_key_name(coop, n) for n, _, _ in PEOPLE] + [coop_key_name(coop)]
    if max(len(n) for n in names) > 64:
        raise typer.BadParameter("a shorter coop id (its key names must fit 64 characters)")
    with local_node(data_dir) as node:
        existing = node.store.coops()
        if if_empty and existing:
            err.print(f"not seeding: this node already has {', '.join(existing)}", markup=False)
            return
        if coop_of(node.store, coop) is not None or coop in existing:
            raise Refused(
                "coop-already-founded",
                f"coop {coop} already exists in {node.data_dir}: the demo is seeded once "
                "(choose another --coop, or a fresh --data-dir)",
            )
        taken = [n for n in names if node.keystore.exists(n)]
        if taken:
            raise Refused("key-exists", f"the keystore already holds {', '.join(taken)}")
        passphrase = resolve_passphrase(confirm=True)
        seeds = {n: nacl.utils.random(32) for n in names}
        node.keystore.create(coop_key_name(coop), passphrase, seed=seeds[coop_key_name(coop)])
        coop_key = SigningKey(seeds[coop_key_name(coop)])
        people = []
        for person, roles, day in PEOPLE:
            key_name = _key_name(coop, person)
            info = node.keystore.create(key_name, passphrase, custodial=True, seed=seeds[key_name])
            people.append(_Person(person, SigningKey(seeds[key_name]), info.did, roles, day))

        now = clock_ms()
        start = (now - WEEKS * 7 * DAY_MS) // DAY_MS * DAY_MS
        story = _Story(coop, POLICY.credit["hours"], random.Random(f"{coop}:{start}"))
        dispute, decisions, deploys = _write(story, people, coop_key, start, now, name)
        _append(node, story.events)
        # The charter proposal's tally was due days ago: the coop's key closes and executes
        # it as the node's duty round would, dated when it was due.
        decided = node.governance.close_and_execute(coop, decisions.closed, coop_key)
        deployed, contract_duty = carry_out(node, coop, coop_key, deploys, people)

        duties = CoopDuties(node.store, node.author, lambda c: coop_key if c == coop else None)
        settled = [duties.settle(coop, d, coop_key) for d in duties.unsettled(coop)]
        settlement = settled[0][0].id if settled else None
        epochs = node.epochs.publish_now(coop, coop_key)  # the web of trust's first epoch
        balances = _balances(node, coop)

    if json:
        print_json({"coop": coop, "members": [p.did for p in people]})
        return
    coop_did = did_from_public_key(bytes(coop_key.verify_key))
    frozen = [p.name for p in people if p.frozen]
    out.print(f"seeded coop {coop} ({name}) in {node.data_dir}", markup=False)
    out.print(f"  coop DID: {coop_did} (key {coop_key_name(coop)})", markup=False)
    out.print(
        f"  {len(people)} members, keys {_key_name(coop, 'x')[:-1]}<name> (custodial); "
        f"admin: {people[0].name}, mediator: {people[1].name}",
        markup=False,
    )
    out.print(
        f"  {story.payments} payments over {WEEKS} weeks, {shown(story.volume, HOURS)} in all",
        markup=False,
    )
    out.print(f"  frozen: {', '.join(frozen)}", markup=False)
    out.print(
        f"  dispute {dispute} reversed; settled by the coop's DID in entry {settlement}",
        markup=False,
    )
    vouches = sum(1 for e in story.events if e.type == "trust.AttestationRecorded")
    firsts = ", ".join(f"{e.body['context']} ({e.body['count']} members)" for e in epochs)
    out.print(f"  {vouches} attestations; first standing epochs: {firsts}", markup=False)
    outcome = decided[0].body["outcome"] if decided else "not closed"
    out.print(
        f"  proposal {decisions.closed} (charter: {CHARTER_SECTION}): {decisions.votes['closed']}"
        f" votes, {outcome}, executed in {decided[-1].id if len(decided) > 1 else None}",
        markup=False,
    )
    out.print(
        f"  proposal {decisions.open} (tool library budget): open until"
        f" {_utc(decisions.closes_at)}, {decisions.votes['open']} votes so far;"
        f" {people[6].name} delegates her root vote to {people[0].name}",
        markup=False,
    )
    deployed_names = ", ".join(e.body["name"] for e in deployed)
    out.print(
        f"  contracts deployed by vote: {deployed_names}; {len(contract_duty)} events signed by the"
        " contract duty (time bank services, dues when a month began)",
        markup=False,
    )
    by_did = {p.did: p.name for p in people}
    top = sorted(balances.items(), key=lambda kv: -kv[1])
    out.print("  balances (highest and lowest):", markup=False)
    for did, units in [*top[:3], *top[-3:]]:
        out.print(f"    {by_did.get(did, 'coop'):<16} {shown(units, HOURS):>14}", markup=False)
    out.print(f"  sum of all balances: {shown(sum(balances.values()), HOURS)}", markup=False)
    first, second = (_key_name(coop, p.name) for p in people[:2])
    out.print(
        f'  try: icn pay {second} 1.5 hours --memo "thanks" --coop {coop} --key {first}',
        markup=False,
    )


def _utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _balances(node: Node, coop: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for _, raw in node.store.state_records(coop, AccountRecord.kind):
        record = decode_record(AccountRecord.kind, raw)
        if isinstance(record, AccountRecord) and record.currency == "hours":
            out[record.did] = record.balance
    return out
