"""C2SP ``tlog-checkpoint`` notes, signed per C2SP ``signed-note`` with Ed25519.

A checkpoint commits a node to the root of its tree for one coop at one
size. Anyone holding the node's DID can check the note; anyone holding two
notes can ask for a consistency proof between them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib

import msgspec
from nacl.bindings import crypto_sign_open
from nacl.exceptions import BadSignatureError, CryptoError
from nacl.signing import SigningKey

from icn.domain.identity.did import InvalidDid, did_from_public_key, public_key_from_did

SIGNATURE_PREFIX = "— "  # U+2014 EM DASH, then a space (signed-note format)
_ED25519_ALGORITHM = b"\x01"


class CheckpointError(ValueError):
    """A note that is not a checkpoint signed by the expected key."""


class Checkpoint(msgspec.Struct, frozen=True):
    """The three facts a checkpoint states."""

    origin: str
    size: int
    root: bytes


def origin_for(coop: str, node_did: str) -> str:
    """Spec section 5: ``icn/<coop>/<node DID>``."""
    return f"icn/{coop}/{node_did}"


def checkpoint_text(origin: str, size: int, root: bytes) -> str:
    """The signed text: origin, size and base64 root, each line ending in a newline."""
    return f"{origin}\n{size}\n{base64.b64encode(root).decode()}\n"


def key_hash(name: str, public_key: bytes) -> bytes:
    """signed-note key id: first 4 bytes of SHA-256(name || LF || 0x01 || key)."""
    return hashlib.sha256(name.encode() + b"\n" + _ED25519_ALGORITHM + public_key).digest()[:4]


def sign_checkpoint(key: SigningKey, coop: str, size: int, root: bytes) -> str:
    """A complete signed note for the tree of ``coop`` at ``size``, by ``key``'s DID."""
    public_key = bytes(key.verify_key)
    name = did_from_public_key(public_key)
    text = checkpoint_text(origin_for(coop, name), size, root)
    signature = key.sign(text.encode()).signature
    blob = base64.b64encode(key_hash(name, public_key) + signature).decode()
    return f"{text}\n{SIGNATURE_PREFIX}{name} {blob}\n"


def open_checkpoint(note: str, signer_did: str) -> Checkpoint:
    """Check ``note`` is signed by ``signer_did`` and parse it; raise :class:`CheckpointError`."""
    text, sep, signatures = note.partition("\n\n")
    if not sep or not text:
        raise CheckpointError("a note is text, a blank line, then signature lines")
    text += "\n"
    try:
        public_key = public_key_from_did(signer_did)
    except InvalidDid as exc:
        raise CheckpointError(f"bad signer DID: {exc}") from None
    expected_id = key_hash(signer_did, public_key)
    for line in signatures.split("\n"):
        if not line.startswith(SIGNATURE_PREFIX):
            continue
        name, _, blob = line[len(SIGNATURE_PREFIX) :].partition(" ")
        if name != signer_did:
            continue
        try:
            raw = base64.b64decode(blob, validate=True)
        except binascii.Error:
            continue
        if len(raw) != 68 or raw[:4] != expected_id:
            continue
        try:
            crypto_sign_open(raw[4:] + text.encode(), public_key)
        except (BadSignatureError, CryptoError, ValueError):
            raise CheckpointError("note signature does not verify") from None
        return _parse_text(text)
    raise CheckpointError(f"note carries no signature by {signer_did}")


def _parse_text(text: str) -> Checkpoint:
    lines = text.split("\n")
    if len(lines) < 4:
        raise CheckpointError("checkpoint text needs origin, size and root lines")
    origin, size_line, root_line = lines[0], lines[1], lines[2]
    if not size_line.isdigit() or (size_line != "0" and size_line.startswith("0")):
        raise CheckpointError("tree size must be a decimal number")
    try:
        root = base64.b64decode(root_line, validate=True)
    except binascii.Error:
        raise CheckpointError("root hash must be standard base64") from None
    if len(root) != 32:
        raise CheckpointError("root hash must be 32 bytes")
    return Checkpoint(origin=origin, size=int(size_line), root=root)
