"""Each tally method against hand-computed examples, delegation chains, and the digest."""

from __future__ import annotations

import pytest
from blake3 import blake3

from icn.domain.events.canonical import canonical_bytes
from icn.domain.governance.actions import DomainRules
from icn.domain.governance.bodies import Counts
from icn.domain.governance.tally import (
    Ballot,
    Counted,
    ballots_digest,
    commitment_of,
    effective_ballots,
    tally,
    weight_for,
)

MAJORITY = DomainRules(quorum_ppm=500_000)


def counted(*choices: str, weight: int = 1) -> list[Counted]:
    """One ballot per choice, voters v0, v1, … in order."""
    return [Counted(f"v{i}", f"e{i}", c, weight) for i, c in enumerate(choices)]


def by_one(voter: str, ballot: Ballot) -> int:
    return 1


@pytest.mark.parametrize(
    ("choices", "eligible", "outcome"),
    [
        (("yes", "yes", "no"), 4, "accepted"),
        (("yes", "no"), 4, "rejected"),  # a tie is rejected
        (("yes",), 4, "no-quorum"),  # 1 of 4 is below half
        (("abstain", "abstain"), 4, "rejected"),  # quorum met, no yes weight
        ((), 4, "no-quorum"),
        ((), 0, "no-quorum"),
        (("yes", "abstain", "abstain", "no"), 4, "rejected"),  # abstain: quorum, not threshold
        (("yes", "abstain", "abstain"), 6, "accepted"),  # 3 of 6 is exactly half
    ],
)
def test_majority(choices: tuple[str, ...], eligible: int, outcome: str) -> None:
    assert tally(MAJORITY, eligible, counted(*choices)).outcome == outcome


def test_no_quorum_asked_and_no_votes_is_rejected_not_no_quorum() -> None:
    assert tally(DomainRules(quorum_ppm=0), 5, []).outcome == "rejected"


def test_supermajority_of_two_thirds() -> None:
    rules = DomainRules(method="supermajority", threshold_ppm=666_666, quorum_ppm=0)
    assert tally(rules, 3, counted("yes", "yes", "no")).outcome == "accepted"  # 2e6 > 1_999_998
    strict = DomainRules(method="supermajority", threshold_ppm=666_667, quorum_ppm=0)
    assert tally(strict, 3, counted("yes", "yes", "no")).outcome == "rejected"  # 2e6 < 2_000_001
    assert tally(rules, 5, counted("yes", "yes", "yes", "no", "no")).outcome == "rejected"


def test_unanimous_needs_a_yes_and_no_no() -> None:
    rules = DomainRules(method="unanimous", threshold_ppm=1_000_000, quorum_ppm=0)
    assert tally(rules, 3, counted("yes", "abstain", "yes")).outcome == "accepted"
    assert tally(rules, 3, counted("yes", "yes", "no")).outcome == "rejected"
    assert tally(rules, 3, counted("abstain")).outcome == "rejected"


def test_consent_fails_on_more_blocks_than_allowed() -> None:
    rules = DomainRules(method="consent", threshold_ppm=0, quorum_ppm=0, max_blocks=1)
    assert tally(rules, 4, counted("yes", "abstain", "block")).outcome == "accepted"
    assert tally(rules, 4, counted("yes", "block", "block")).outcome == "rejected"
    assert tally(rules, 4, counted("abstain", "abstain")).outcome == "rejected"  # nobody said yes
    none_allowed = DomainRules(method="consent", threshold_ppm=0, quorum_ppm=0)
    result = tally(none_allowed, 4, counted("yes", "yes", "yes", "block"))
    assert result.outcome == "rejected"
    assert (result.counts.block, result.counts.block_weight) == (1, 1)


def test_quadratic_weights_are_integer_square_roots_of_credits() -> None:
    rules = DomainRules(method="quadratic", quorum_ppm=0)
    weights = [weight_for(rules, (), Ballot("e", "yes", c)) for c in (None, 0, 1, 3, 4, 99, 100)]
    assert weights == [1, 0, 1, 1, 2, 9, 10]
    # One voter spending 100 credits (weight 10) loses to 11 voters spending 1 each.
    whale = [Counted("w", "ew", "yes", 10)]
    crowd = [Counted(f"c{i:02d}", f"e{i}", "no", 1) for i in range(11)]
    result = tally(rules, 12, whale + crowd)
    assert result.outcome == "rejected"
    assert (result.counts.yes_weight, result.counts.no_weight) == (10, 11)


def test_weighted_takes_the_largest_weight_among_a_voters_roles() -> None:
    rules = DomainRules(method="weighted", weights={"worker": 3, "investor": 1}, quorum_ppm=0)
    ballot = Ballot("e", "yes")
    assert weight_for(rules, ("worker", "investor"), ballot) == 3
    assert weight_for(rules, ("investor",), ballot) == 1
    assert weight_for(rules, ("admin",), ballot) == 1  # no listed role: 1
    assert weight_for(rules, (), ballot) == 1
    # worker yes (3) against two investors' no (1+1)
    ballots = [
        Counted("a", "e1", "yes", 3),
        Counted("b", "e2", "no", 1),
        Counted("c", "e3", "no", 1),
    ]
    assert tally(rules, 3, ballots).counts == Counts(yes=1, no=2, yes_weight=3, no_weight=2)
    assert tally(rules, 3, ballots).outcome == "accepted"


def test_delegation_is_transitive_and_a_direct_vote_overrides_the_delegate() -> None:
    # a -> b -> c; c votes yes; b votes no itself; d -> a (a has not voted): d follows a's chain.
    direct = {"c": Ballot("ec", "yes"), "b": Ballot("eb", "no")}
    delegations = {"a": "b", "b": "c", "d": "a", "e": "x"}
    found = effective_ballots(["a", "b", "c", "d", "e"], direct, delegations, by_one)
    assert found == [
        Counted("a", "eb", "no", 1),  # a's delegate b voted: b's own vote, not c's
        Counted("b", "eb", "no", 1),  # b's own vote overrides its delegation to c
        Counted("c", "ec", "yes", 1),
        Counted("d", "eb", "no", 1),  # d -> a -> b
    ]  # e's delegate x never voted: e is not counted


def test_a_delegation_cycle_in_the_input_ends_without_a_ballot() -> None:
    found = effective_ballots(["a", "b"], {}, {"a": "b", "b": "a"}, by_one)
    assert found == []


def test_a_delegator_counts_with_their_own_weight() -> None:
    rules = DomainRules(method="weighted", weights={"worker": 5}, quorum_ppm=0)
    roles = {"boss": ("worker",), "temp": ()}
    found = effective_ballots(
        ["boss", "temp"],
        {"temp": Ballot("et", "yes")},
        {"boss": "temp"},
        lambda v, b: weight_for(rules, roles[v], b),
    )
    assert found == [Counted("boss", "et", "yes", 5), Counted("temp", "et", "yes", 1)]


def test_the_digest_covers_the_sorted_voter_vote_weight_triples() -> None:
    ballots = [Counted("b", "e2", "no", 2), Counted("a", "e1", "yes", 1)]
    expected = blake3(canonical_bytes([["a", "e1", 1], ["b", "e2", 2]])).hexdigest()
    assert ballots_digest(ballots) == expected == ballots_digest(list(reversed(ballots)))
    assert ballots_digest([]) == blake3(b"[]").hexdigest()
    # The choice is not in the digest (the votes are), the weight is.
    assert ballots_digest([Counted("a", "e1", "no", 1)]) == ballots_digest(ballots[1:])
    assert ballots_digest([Counted("a", "e1", "yes", 2)]) != ballots_digest(ballots[1:])


def test_a_commitment_binds_choice_credits_and_salt() -> None:
    c = commitment_of("yes", None, "s" * 16)
    assert c == blake3(canonical_bytes(["yes", None, "s" * 16])).hexdigest()
    assert c != commitment_of("no", None, "s" * 16) != commitment_of("yes", 1, "s" * 16)
