"""A key sealed for a browser: PBKDF2-SHA256 and AES-256-GCM, which WebCrypto can open.

The keystore seals keys with Argon2id and XSalsa20-Poly1305, which browsers do
not offer; this format uses only what WebCrypto has, so the dashboard opens it
with the member's passphrase and no library. The file is JSON::

    {"format": "icn-browser-key", "version": 1, "did": "did:icn:z…",
     "kdf": "PBKDF2-SHA256", "iterations": 600000, "salt": b64(16 bytes),
     "cipher": "AES-256-GCM", "iv": b64(12 bytes), "ciphertext": b64(seed ‖ tag)}

The AES key is PBKDF2-SHA256(passphrase, salt, iterations), 32 bytes; the
plaintext is the 32-byte Ed25519 seed; the additional data is
``icn-browser-key-v1:`` + the DID, so a file whose DID was edited does not open.
600,000 iterations is OWASP's 2023 figure for PBKDF2-SHA256.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import Any

from nacl.bindings import crypto_aead_aes256gcm_decrypt, crypto_aead_aes256gcm_encrypt
from nacl.exceptions import CryptoError
from nacl.signing import SigningKey

from icn.domain.identity.did import did_from_public_key
from icn.infrastructure.keystore import KeystoreError, WrongPassphrase

FORMAT = "icn-browser-key"
VERSION = 1
ITERATIONS = 600_000
SALT_BYTES = 16
IV_BYTES = 12
SEED_BYTES = 32
AAD_PREFIX = b"icn-browser-key-v1:"


class BrowserKeyError(KeystoreError):
    """Not a browser key file this version can open."""


def _aes_key(passphrase: str, salt: bytes, iterations: int) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", passphrase.encode(), salt, iterations, dklen=32)


def seal(seed: bytes, did: str, passphrase: str, *, iterations: int = ITERATIONS) -> dict[str, Any]:
    """The browser key file (as a JSON object) holding ``seed`` under ``passphrase``."""
    if len(seed) != SEED_BYTES:
        raise BrowserKeyError("an Ed25519 seed is 32 bytes")
    salt, iv = secrets.token_bytes(SALT_BYTES), secrets.token_bytes(IV_BYTES)
    key = _aes_key(passphrase, salt, iterations)
    sealed = crypto_aead_aes256gcm_encrypt(seed, AAD_PREFIX + did.encode(), iv, key)
    b64 = base64.b64encode
    return {
        "format": FORMAT,
        "version": VERSION,
        "did": did,
        "kdf": "PBKDF2-SHA256",
        "iterations": iterations,
        "salt": b64(salt).decode(),
        "cipher": "AES-256-GCM",
        "iv": b64(iv).decode(),
        "ciphertext": b64(sealed).decode(),
    }


def open_seed(doc: dict[str, Any], passphrase: str) -> bytes:
    """The seed in a browser key file; raises :class:`WrongPassphrase` or :class:`BrowserKeyError`.

    The Python side needs this only to check what it wrote (tests, and anyone
    moving a key back from a browser to a keystore)."""
    if doc.get("format") != FORMAT or doc.get("version") != VERSION:
        raise BrowserKeyError("not an icn-browser-key file of version 1")
    try:
        salt = base64.b64decode(doc["salt"], validate=True)
        iv = base64.b64decode(doc["iv"], validate=True)
        sealed = base64.b64decode(doc["ciphertext"], validate=True)
        iterations = int(doc["iterations"])
        did = str(doc["did"])
    except (KeyError, TypeError, ValueError):
        raise BrowserKeyError("browser key file is missing a member or has a bad one") from None
    try:
        seed = crypto_aead_aes256gcm_decrypt(
            sealed, AAD_PREFIX + did.encode(), iv, _aes_key(passphrase, salt, iterations)
        )
    except CryptoError:
        raise WrongPassphrase("wrong passphrase for this browser key file") from None
    if did_from_public_key(bytes(SigningKey(seed).verify_key)) != did:
        raise BrowserKeyError("browser key file decrypts to a key other than its DID")
    return bytes(seed)
