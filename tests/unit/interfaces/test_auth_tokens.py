"""Challenges and tokens: expiry, single use, and the secret's minimum length."""

import time

import jwt
import pytest

from icn.interfaces.http.auth import (
    CHALLENGE_TTL_MS,
    ChallengeBook,
    SecretError,
    Tokens,
    jwt_secret,
)
from icn.interfaces.http.problems import ApiProblem

DID = "did:icn:z6MkgYFxCU1bdaxLY5KFt6mosc1FfMVV25emK9dNrku3HeTt"
NODE = "did:icn:z6MkmSP4KiWCrMeHJrBJvk8udj6FFzevCNkhRs8xPnKeLDLD"
SECRET = b"s" * 32


def test_a_challenge_expires_after_five_minutes() -> None:
    book = ChallengeBook()
    ch = book.issue(DID, now_ms=1_000)
    assert ch.expires_at == 1_000 + CHALLENGE_TTL_MS
    assert not book.take(DID, ch.nonce, now_ms=ch.expires_at + 1)


def test_a_challenge_is_single_use_and_bound_to_its_did() -> None:
    book = ChallengeBook()
    ch = book.issue(DID, now_ms=0)
    assert not book.take(NODE, ch.nonce, now_ms=1)  # wrong DID consumes it too
    assert not book.take(DID, ch.nonce, now_ms=1)
    fresh = book.issue(DID, now_ms=0)
    assert book.take(DID, fresh.nonce, now_ms=1)
    assert not book.take(DID, fresh.nonce, now_ms=2)


def test_tokens_round_trip_and_expire() -> None:
    tokens = Tokens(SECRET, NODE)
    issued = tokens.issue(DID, "food-coop", now_s=int(time.time()))
    who = tokens.read(issued.token)
    assert (who.did, who.coop) == (DID, "food-coop") and "admin" not in who.scopes
    old = tokens.issue(DID, "food-coop", now_s=1_000)
    with pytest.raises(ApiProblem) as refused:
        tokens.read(old.token)
    assert refused.value.code == "token-expired"


def test_a_token_signed_with_another_secret_or_algorithm_is_refused() -> None:
    tokens = Tokens(SECRET, NODE)
    claims = {"sub": DID, "coop": "c", "scopes": ["admin"], "exp": 2**40, "iss": NODE}
    for forged in (
        jwt.encode(claims, b"x" * 32, algorithm="HS256"),
        jwt.encode(claims, None, algorithm="none"),
    ):
        with pytest.raises(ApiProblem) as refused:
            tokens.read(forged)
        assert refused.value.code == "invalid-token"


def test_the_node_gets_admin_and_relay_scopes() -> None:
    assert {"admin", "relay"} <= set(Tokens(SECRET, NODE).issue(NODE, "c", now_s=0).scopes)


@pytest.mark.parametrize("env", [{}, {"ICN_JWT_SECRET": "short"}])
def test_a_missing_or_short_secret_is_refused(env: dict[str, str]) -> None:
    with pytest.raises(SecretError):
        jwt_secret(env)


def test_the_secret_can_come_from_a_file(tmp_path) -> None:
    f = tmp_path / "secret"
    f.write_text("k" * 40 + "\n")
    assert jwt_secret({"ICN_JWT_SECRET_FILE": str(f)}) == b"k" * 40
