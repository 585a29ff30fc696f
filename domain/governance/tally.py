"""The tally: from ballots and delegations to counts, an outcome and the ballots digest.

Pure integer functions of sorted inputs, so the node that closes a proposal,
every replica judging the close and any auditor recounting it from the log
reach the same numbers and the same digest. Quorum is by head (eligible
voters with a counted ballot, abstentions and blocks included); the
threshold is by weight, over ``yes`` and ``no`` only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from math import isqrt
from typing import NamedTuple

from blake3 import blake3

from icn.domain.coop.records import PPM
from icn.domain.events.canonical import canonical_bytes
from icn.domain.governance.actions import DomainRules
from icn.domain.governance.bodies import Counts


class Ballot(NamedTuple):
    """A voter's own ballot as the tally sees it (an unrevealed commitment is ``abstain``)."""

    vote: str
    """The id of the event the choice comes from."""
    choice: str
    credits: int | None = None


class Counted(NamedTuple):
    """One eligible voter's effective ballot: their own, or their nearest delegate's."""

    voter: str
    vote: str
    choice: str
    weight: int


class Tally(NamedTuple):
    """What a ``governance.ProposalClosed`` states."""

    outcome: str
    counts: Counts
    eligible: int
    counted: int
    ballots_digest: str


WeightOf = Callable[[str, Ballot], int]
"""(voter, the ballot counted for them) -> their effective weight."""


def effective_ballots(
    eligible: Sequence[str],
    direct: Mapping[str, Ballot],
    delegations: Mapping[str, str],
    weight_of: WeightOf,
) -> list[Counted]:
    """Each eligible voter's counted ballot, sorted by voter.

    A voter's own ballot wins; without one, their delegation is followed
    (transitively) to the first delegate with a ballot of their own, and that
    choice counts with the *voter's* weight. ``direct`` holds eligible voters'
    ballots only. Cycles are refused when delegating; a walk stops anyway at
    a DID it has seen, so a bad input cannot loop.
    """
    found: list[Counted] = []
    for voter in sorted(eligible):
        ballot = direct.get(voter)
        seen = {voter}
        step = delegations.get(voter)
        while ballot is None and step is not None and step not in seen:
            seen.add(step)
            ballot = direct.get(step)
            step = delegations.get(step)
        if ballot is not None:
            found.append(Counted(voter, ballot.vote, ballot.choice, weight_of(voter, ballot)))
    return found


def weight_for(rules: DomainRules, roles: Sequence[str], ballot: Ballot) -> int:
    """A voter's weight under the domain's method.

    ``weighted``: the largest weight among their roles (1 when none is listed);
    ``quadratic``: the integer square root of the credits of the ballot counted
    (1 credit when it states none); every other method: 1.
    """
    if rules.method == "weighted":
        listed = [rules.weights[r] for r in roles if r in rules.weights]
        return max(listed) if listed else 1
    if rules.method == "quadratic":
        return isqrt(1 if ballot.credits is None else ballot.credits)
    return 1


def count(ballots: Sequence[Counted]) -> Counts:
    """Heads and weights per choice."""
    heads = dict.fromkeys(("yes", "no", "abstain", "block"), 0)
    weights = dict(heads)
    for b in ballots:
        heads[b.choice] += 1
        weights[b.choice] += b.weight
    return Counts(
        yes=heads["yes"], no=heads["no"], abstain=heads["abstain"], block=heads["block"],
        yes_weight=weights["yes"], no_weight=weights["no"],
        abstain_weight=weights["abstain"], block_weight=weights["block"],
    )  # fmt: skip


def outcome(rules: DomainRules, counts: Counts, eligible: int, counted: int) -> str:
    """``no-quorum`` below quorum; else ``accepted`` when the method says so, else ``rejected``.

    Every method but ``unanimous`` needs ``yes`` weight strictly above
    ``threshold_ppm`` of the yes+no weight (500,000: more yes than no; a tie
    is rejected); ``unanimous`` needs some ``yes`` and no ``no`` at all;
    ``consent`` also fails on more than ``max_blocks`` blocks.
    """
    if counted * PPM < rules.quorum_ppm * eligible or (eligible == 0 and rules.quorum_ppm > 0):
        return "no-quorum"
    yes, no = counts.yes_weight, counts.no_weight
    if rules.method == "unanimous":
        passed = yes > 0 and no == 0
    else:
        passed = yes * PPM > rules.threshold_ppm * (yes + no)
    if rules.method == "consent" and counts.block > rules.max_blocks:
        passed = False
    return "accepted" if passed else "rejected"


def ballots_digest(ballots: Sequence[Counted]) -> str:
    """BLAKE3 of the canonical JSON list of ``[voter, vote, weight]``, sorted by voter."""
    rows = sorted([b.voter, b.vote, b.weight] for b in ballots)
    return blake3(canonical_bytes(rows)).hexdigest()


def tally(rules: DomainRules, eligible: int, ballots: Sequence[Counted]) -> Tally:
    """The whole close of a proposal from its counted ballots."""
    counts = count(ballots)
    return Tally(
        outcome(rules, counts, eligible, len(ballots)),
        counts,
        eligible,
        len(ballots),
        ballots_digest(ballots),
    )


def commitment_of(choice: str, credits: int | None, salt: str) -> str:
    """A ``governance.VoteCommitted``: BLAKE3 of canonical ``[choice, credits, salt]``."""
    return blake3(canonical_bytes([choice, credits, salt])).hexdigest()
