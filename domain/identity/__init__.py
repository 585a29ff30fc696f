"""Who signs: Ed25519 keys named by ``did:icn:`` identifiers (spec section 1)."""

from icn.domain.identity.did import (
    DID_PREFIX,
    InvalidDid,
    did_from_public_key,
    did_key_part,
    is_valid_did,
    public_key_from_did,
)

__all__ = [
    "DID_PREFIX",
    "InvalidDid",
    "did_from_public_key",
    "did_key_part",
    "is_valid_did",
    "public_key_from_did",
]
