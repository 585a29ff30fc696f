"""Commit–reveal stops a copying executor; replicas settle by agreement or by majority."""

from __future__ import annotations

import pytest

from icn.domain.compute.abi import Outcome
from icn.domain.compute.results import (
    Answer,
    Verdict,
    commitment_of,
    judge,
    max_executors,
    opens,
    output_hash,
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


def test_too_few_answers_wait() -> None:
    assert judge({"a": RIGHT}, replicas=2) == Verdict()


@pytest.mark.parametrize("liar", [WRONG, GREEDY])
def test_a_lying_executor_is_outvoted_by_a_third_and_dissents(liar: Answer) -> None:
    assert judge({"a": RIGHT, "b": liar}, replicas=2) == Verdict(needs_another=True)
    verdict = judge({"a": RIGHT, "b": liar, "c": RIGHT}, replicas=2)
    assert verdict == Verdict(answer=RIGHT, agreeing=("a", "c"), dissenting=("b",))


def test_no_majority_asks_for_more_then_gives_up() -> None:
    other = Answer(Outcome.TRAP, output_hash(b""), 50)
    three = {"a": RIGHT, "b": WRONG, "c": other}
    assert judge(three, replicas=2).needs_another
    four = {**three, "d": GREEDY}
    assert judge(four, replicas=2).needs_another
    five = {**four, "e": Answer(Outcome.OUT_OF_FUEL, output_hash(b""), 10_000)}
    assert len(five) == max_executors(2)
    assert judge(five, replicas=2) == Verdict(unresolved=True, dissenting=("a", "b", "c", "d", "e"))


def test_a_tie_never_settles() -> None:
    assert judge({"a": RIGHT, "b": WRONG, "c": RIGHT, "d": WRONG}, replicas=2).needs_another
