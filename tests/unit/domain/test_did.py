"""DIDs per spec section 1."""

import pytest
from nacl.signing import SigningKey

from icn.domain.identity.did import (
    InvalidDid,
    did_from_public_key,
    did_key_part,
    is_valid_did,
    public_key_from_did,
)


def test_a_did_round_trips_to_its_public_key() -> None:
    key = bytes(SigningKey.generate().verify_key)
    did = did_from_public_key(key)
    assert did.startswith("did:icn:z6Mk")
    assert len(did) - len("did:icn:") == 48
    assert public_key_from_did(did) == key
    assert did_key_part(did) == did[len("did:icn:") :]


@pytest.mark.parametrize(
    "bad",
    [
        "did:icn:z6MkBAD",
        "did:key:z6MkgYFxCU1bdaxLY5KFt6mosc1FfMVV25emK9dNrku3HeTt",
        "did:icn:6MkgYFxCU1bdaxLY5KFt6mosc1FfMVV25emK9dNrku3HeTt",
        "did:icn:z6MkgYFxCU1bdaxLY5KFt6mosc1FfMVV25emK9dNrku3HeT0",
        "did:icn:z6MkgYFxCU1bdaxLY5KFt6mosc1FfMVV25emK9dNrku3HeTtt",
        "",
    ],
)
def test_strings_that_do_not_decode_to_an_ed25519_key_are_invalid(bad: str) -> None:
    assert not is_valid_did(bad)
    with pytest.raises(InvalidDid):
        public_key_from_did(bad)


def test_a_key_of_the_wrong_length_has_no_did() -> None:
    with pytest.raises(InvalidDid):
        did_from_public_key(b"\x01" * 31)
