"""``did:icn:`` identifiers: multibase base58btc of ``0xed 0x01`` + a 32-byte Ed25519 key.

The key part is byte-for-byte a ``did:key`` identifier, so tooling that knows
``did:key`` can read our DIDs. Decoding is cached because every event names
its author and verification decodes that DID each time.
"""

from __future__ import annotations

from functools import lru_cache

from icn.domain.identity.base58 import b58decode, b58encode

DID_PREFIX = "did:icn:"
_MULTICODEC_ED25519_PUB = b"\xed\x01"
_KEY_LEN = 32


class InvalidDid(ValueError):
    """A string that does not name an Ed25519 key the way spec section 1 says."""


def did_from_public_key(public_key: bytes) -> str:
    """The DID of a raw 32-byte Ed25519 public key."""
    if len(public_key) != _KEY_LEN:
        raise InvalidDid(f"an Ed25519 public key has 32 bytes, not {len(public_key)}")
    return DID_PREFIX + "z" + b58encode(_MULTICODEC_ED25519_PUB + public_key)


@lru_cache(maxsize=65536)
def public_key_from_did(did: str) -> bytes:
    """The raw public key a DID names; raises :class:`InvalidDid` with the reason."""
    if not isinstance(did, str) or not did.startswith(DID_PREFIX + "z"):
        raise InvalidDid("a DID starts with 'did:icn:z'")
    try:
        raw = b58decode(did[len(DID_PREFIX) + 1 :])
    except ValueError as exc:
        raise InvalidDid(str(exc)) from None
    if len(raw) != len(_MULTICODEC_ED25519_PUB) + _KEY_LEN or not raw.startswith(
        _MULTICODEC_ED25519_PUB
    ):
        raise InvalidDid("a DID decodes to 0xed01 followed by a 32-byte key")
    return raw[len(_MULTICODEC_ED25519_PUB) :]


def is_valid_did(did: object) -> bool:
    """True when ``did`` is a string that decodes per spec section 1."""
    if not isinstance(did, str):
        return False
    try:
        public_key_from_did(did)
    except InvalidDid:
        return False
    return True


def did_key_part(did: str) -> str:
    """The ``z…`` part, used where a DID must fit a NATS subject token."""
    public_key_from_did(did)
    return did[len(DID_PREFIX) :]
