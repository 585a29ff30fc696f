"""Commit–reveal stops a copying executor; the sealed voters settle by agreement or majority."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from icn.domain.compute.abi import Outcome
from icn.domain.compute.results import (
    Answer,
    Verdict,
    commitment_of,
    judge,
    opens,
    output_hash,
    voters,
)

TASK = "t" * 64
RIGHT = Answer(Outcome.OK, output_hash(b"42"), 1_234)
WRONG = Answer(Outcome.OK, output_hash(b"41"), 1_234)
GREEDY = Answer(Outcome.OK, output_hash(b"42"), 9_999)  # right output, inflated fuel


def test_a_reveal_opens_its_own_commitment_only() -> None:
    c = commitment_of(TASK, "did:key:a", RIGHT, "salt-a")
    assert opens(c, TASK, "did:key:a", RIGHT, "salt-a")
    assert not opens(c, TASK, "did:key:a", WRONG, "salt-a")
    assert not opens(c, TASK, "did:key:a", RIGHT, "salt-b")
    assert not opens(c, "u" * 64, "did:key:a", RIGHT, "salt-a")


def test_a_copied_commitment_does_not_open_for_the_copier() -> None:
    honest = commitment_of(TASK, "did:key:a", RIGHT, "salt-a")
    # b posts a's commitment, then copies a's reveal (answer and salt) once it is public
    assert not opens(honest, TASK, "did:key:b", RIGHT, "salt-a")


def test_without_the_salt_a_small_output_cannot_be_guessed_from_a_commitment() -> None:
    honest = commitment_of(TASK, "did:key:a", RIGHT, "9f2c" * 16)
    guesses = [Answer(Outcome.OK, output_hash(str(n).encode()), 1_234) for n in range(100)]
    assert not any(opens(honest, TASK, "did:key:a", g, "") for g in guesses)


def test_replicas_that_agree_settle() -> None:
    verdict = judge({"a": RIGHT, "b": RIGHT}, replicas=2)
    assert verdict == Verdict(answer=RIGHT, agreeing=("a", "b"))


def test_no_answer_in_is_unresolved() -> None:
    assert judge({}, replicas=2) == Verdict(unresolved=True)


@pytest.mark.parametrize("liar", [WRONG, GREEDY])
def test_a_lying_executor_is_outvoted_by_the_tie_breaker_and_dissents(liar: Answer) -> None:
    verdict = judge({"a": RIGHT, "b": liar, "c": RIGHT}, replicas=2)
    assert verdict == Verdict(answer=RIGHT, agreeing=("a", "c"), dissenting=("b",))


def test_two_replicas_that_disagree_without_a_tie_breaker_are_unresolved() -> None:
    # nobody is placed after a reveal, so two answers alone never settle a disagreement
    assert judge({"a": RIGHT, "b": WRONG}, replicas=2) == Verdict(
        unresolved=True, dissenting=("a", "b")
    )


def test_an_answer_needs_replicas_votes_and_a_strict_majority() -> None:
    other = Answer(Outcome.TRAP, output_hash(b""), 50)
    assert judge({"a": RIGHT, "b": WRONG, "c": other}, replicas=2).unresolved
    # one answer left after the others were dropped for stalling: one vote is not two
    assert judge({"a": RIGHT}, replicas=2).unresolved
    assert judge({"a": RIGHT, "b": RIGHT, "c": WRONG, "d": WRONG}, replicas=2).unresolved
    three = judge({"a": RIGHT, "b": RIGHT, "c": RIGHT, "d": WRONG}, replicas=3)
    assert (three.answer, three.dissenting) == (RIGHT, ("d",))
    assert judge({"a": RIGHT}, replicas=1).answer == RIGHT


def test_the_tie_breaker_is_placed_with_the_replicas_when_one_is_free() -> None:
    assert [voters(2, free) for free in (2, 3, 9)] == [2, 3, 3]
    assert [voters(3, free) for free in (3, 4)] == [3, 4]
    assert voters(1, 9) == 1  # one replica asks for no check
    with pytest.raises(ValueError):
        voters(0, 3)


ANSWERS = st.sampled_from([RIGHT, WRONG, GREEDY, Answer(Outcome.TRAP, output_hash(b""), 7)])


@given(st.dictionaries(st.sampled_from("abcdefg"), ANSWERS, max_size=7), st.integers(1, 3))
def test_only_an_answer_of_replicas_executors_and_a_strict_majority_settles(
    answers: dict[str, Answer], replicas: int
) -> None:
    verdict = judge(answers, replicas)
    if verdict.answer is None:
        assert verdict.unresolved and verdict.dissenting == tuple(sorted(answers))
        return
    votes = sum(a == verdict.answer for a in answers.values())
    assert votes >= replicas and 2 * votes > len(answers)
    assert set(verdict.agreeing) | set(verdict.dissenting) == set(answers)
    assert all(answers[e] == verdict.answer for e in verdict.agreeing)
    assert all(answers[e] != verdict.answer for e in verdict.dissenting)
