"""The demo coop's governance: one decision taken, one under way, one delegation.

Grace, busy with the market stall, delegates her vote in the ``root`` domain
to Amara on day 40. On day 43 Amara proposes the charter's first section (its
purpose); most members vote yes over the next days, Quinn votes no, Nils
abstains, and Grace's vote follows Amara's. The proposal closes on day 47:
after the seed has written the history, the coop's key closes it with the
recount and executes it (a ``governance.CharterAmended``) through the same
duty the node runs (:class:`~icn.application.governance_duties.GovernanceDuties`),
dated when the tally was due. Two days before the seed runs, Chiara (the
treasurer) proposes a budget of 20 hours from the treasury for the tool
library, open for a week more; a few members have voted on it already, Grace
herself this time (a direct vote overrides her delegation).

Every event is dated in the simulated past like the rest of the demo and
judged by the node's rules at that time; the open proposal's close lies in
the real future, so the node's own duty round will close it.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from nacl.signing import SigningKey

from icn.domain.coop.records import DAY_MS
from icn.domain.events.envelope import Event
from icn.domain.governance import bodies as gb

HOUR = 3_600_000
CHARTER_SECTION = "purpose"
CHARTER_TEXT = (
    "Riverside Makers Co-op exists so that neighbours trade skills and time as equals: "
    "an hour of anyone's work is worth an hour of anyone else's. Credit is extended on "
    "trust and repaid in kind; disputes are mediated, never hidden."
)

Plan = list[tuple[int, Callable[[int], None]]]
Sign = Callable[[SigningKey, str, dict[str, Any], int], Event]


class Member(Protocol):
    """What the plan reads of a demo person."""

    name: str
    key: SigningKey
    did: str
    joined_ms: int | None


class Decisions:
    """The ids the plan's events get (filled in as the story is signed)."""

    def __init__(self) -> None:
        self.closed: str = ""
        """The charter proposal, closed and executed once the history is written."""
        self.open: str = ""
        """The budget proposal, still open when the seed ends."""
        self.closes_at: int = 0
        """When the open one closes (real time, after the seed)."""
        self.votes: dict[str, int] = {"closed": 0, "open": 0}


def governance_plan(
    sign: Sign, people: Sequence[Member], start: int, now: int, rng: random.Random
) -> tuple[Plan, Decisions]:
    """The demo's delegation, proposals and votes, each at its moment."""
    by = {p.name.split()[0]: p for p in people}
    amara, chiara, grace = by["Amara"], by["Chiara"], by["Grace"]
    made = Decisions()
    plan: Plan = []

    def at(day: float, hour: int) -> int:
        return start + int(day * DAY_MS) + hour * HOUR + rng.randint(0, 59) * 60_000

    def delegate(ts: int) -> None:
        sign(grace.key, gb.VOTE_DELEGATED, {"domain": "root", "to": amara.did}, ts)

    charter_opens = at(43, 10)
    charter_closes = charter_opens // HOUR * HOUR + 4 * DAY_MS

    def propose_charter(ts: int) -> None:
        body = {
            "domain": "root",
            "title": "Write down what the co-op is for",
            "text": "Our first charter section, so newcomers know what they are joining.",
            "action": {
                "kind": "amend-charter",
                "section": CHARTER_SECTION,
                "text": CHARTER_TEXT,
                "rationale": "Agreed at the June meeting; now put to everyone.",
            },
            "closes_at": charter_closes,
        }
        made.closed = sign(amara.key, gb.PROPOSAL_SUBMITTED, body, ts).id

    # The open one: from two days before the seed runs until a week after the seed's day.
    budget_opens = start + (now - start) // DAY_MS * DAY_MS - 2 * DAY_MS + 10 * HOUR
    budget_closes = start + (now - start) // DAY_MS * DAY_MS + 7 * DAY_MS + 18 * HOUR
    made.closes_at = budget_closes

    def propose_budget(ts: int) -> None:
        body = {
            "domain": "root",
            "title": "20 hours from the treasury for the tool library",
            "text": "Someone to sort, mend and label the shared tools for a month.",
            "action": {
                "kind": "allocate-budget",
                "to": chiara.did,
                "amount": 2_000,
                "currency": "hours",
                "purpose": "tool library upkeep, paid on by the treasurer",
            },
            "closes_at": budget_closes,
        }
        made.open = sign(chiara.key, gb.PROPOSAL_SUBMITTED, body, ts).id

    def vote(
        who: Member, which: str, choice: str, reason: str | None = None
    ) -> Callable[[int], None]:
        def act(ts: int) -> None:
            proposal = made.closed if which == "closed" else made.open
            body: dict[str, Any] = {"proposal": proposal, "choice": choice}
            if reason is not None:
                body["reason"] = reason
            sign(who.key, gb.VOTE_CAST, body, ts)
            made.votes[which] += 1

        return act

    plan += [(at(40, 19), delegate), (charter_opens, propose_charter)]
    charter_votes = [
        ("Amara", "yes", "Long overdue."),
        ("Ben", "yes", None),
        ("Chiara", "yes", None),
        ("Elena", "yes", "Short and true."),
        ("Farid", "yes", None),
        ("Hiro", "yes", None),
        ("Isla", "yes", None),
        ("Kemi", "yes", None),
        ("Maya", "yes", None),
        ("Nils", "abstain", "Fine by me either way."),
        ("Quinn", "no", "Too vague to guide anything."),
        ("Olivia", "yes", None),
    ]
    for name, choice, reason in charter_votes:
        plan.append((at(rng.uniform(43.5, 46.5), 0), vote(by[name], "closed", choice, reason)))
    plan.append((budget_opens, propose_budget))
    budget_votes = [
        ("Chiara", "yes", None),
        ("Grace", "yes", "The drills need it."),
        ("Jonas", "yes", None),
        ("Luis", "no", "Volunteers have kept it tidy so far."),
        ("Priya", "yes", None),
    ]
    for i, (name, choice, reason) in enumerate(budget_votes):
        plan.append((budget_opens + (i + 1) * 5 * HOUR, vote(by[name], "open", choice, reason)))
    return plan, made
