"""Browser key files: what `icn id export --browser` writes opens with the passphrase only,
and only for the DID it names (the browser side is tested in tests/e2e/test_dashboard.py)."""

from __future__ import annotations

import pytest
from nacl.signing import SigningKey

from icn.domain.identity.did import did_from_public_key
from icn.infrastructure.browser_key import BrowserKeyError, open_seed, seal
from icn.infrastructure.keystore import WrongPassphrase

FAST = 1000  # iterations: the format's rules, not its cost, are under test here


def _key() -> tuple[bytes, str]:
    key = SigningKey.generate()
    return bytes(key), did_from_public_key(bytes(key.verify_key))


def test_a_sealed_seed_opens_with_its_passphrase_and_names_its_did() -> None:
    seed, did = _key()
    doc = seal(seed, did, "a long passphrase", iterations=FAST)
    assert doc["did"] == did and doc["format"] == "icn-browser-key" and doc["version"] == 1
    assert seed.hex() not in str(doc)
    assert open_seed(doc, "a long passphrase") == seed


def test_the_default_cost_is_owasps_pbkdf2_figure() -> None:
    seed, did = _key()
    assert seal(seed, did, "a long passphrase")["iterations"] >= 600_000


def test_a_wrong_passphrase_or_an_edited_did_does_not_open() -> None:
    seed, did = _key()
    doc = seal(seed, did, "a long passphrase", iterations=FAST)
    with pytest.raises(WrongPassphrase):
        open_seed(doc, "another passphrase")
    _, other = _key()
    with pytest.raises(WrongPassphrase):  # the DID is the cipher's additional data
        open_seed({**doc, "did": other}, "a long passphrase")
    with pytest.raises(BrowserKeyError):
        open_seed({**doc, "version": 2}, "a long passphrase")
    with pytest.raises(BrowserKeyError):
        open_seed({**doc, "salt": "not base64!"}, "a long passphrase")
