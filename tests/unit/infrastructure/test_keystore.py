"""The keystore keeps keys secret at rest and fails with named errors, never tracebacks."""

from __future__ import annotations

import io
import json
import os
import stat
from pathlib import Path

import nacl.pwhash.argon2id as argon2id
import nacl.signing
import pytest

from icn.domain.identity.did import did_from_public_key
from icn.infrastructure.keystore import (
    CorruptKeyFile,
    InvalidKeyName,
    KeyExists,
    KeyInfo,
    KeyNotFound,
    Keystore,
    KeystoreError,
    WrongPassphrase,
)
from icn.infrastructure.passphrase import (
    InsecurePassphraseFile,
    PassphraseMismatch,
    PassphraseUnavailable,
    WeakPassphrase,
    resolve_passphrase,
)

PASSPHRASE = "correct horse battery staple"
VECTOR_SEED = bytes.fromhex("9f23e1d11106170319cd17dc6e69ab078abd15f3282732b4ae12f4ac61245e38")
VECTOR_DID = "did:icn:z6MkgYFxCU1bdaxLY5KFt6mosc1FfMVV25emK9dNrku3HeTt"


def did_of(key: nacl.signing.SigningKey) -> str:
    return did_from_public_key(bytes(key.verify_key))


@pytest.fixture
def store(tmp_path: Path) -> Keystore:
    return Keystore(
        tmp_path / "keys", opslimit=argon2id.OPSLIMIT_MIN, memlimit=argon2id.MEMLIMIT_MIN
    )


# -- keystore --------------------------------------------------------------


def test_a_created_key_unlocks_to_the_same_did(store: Keystore) -> None:
    info = store.create("node", PASSPHRASE)
    key = store.unlock("node", PASSPHRASE)
    assert did_of(key) == info.did
    assert store.info("node") == info
    assert store.exists("node")


def test_the_default_interactive_limits_round_trip(tmp_path: Path) -> None:
    store = Keystore(tmp_path / "keys")
    info = store.create("node", PASSPHRASE, custodial=True)
    assert did_of(store.unlock("node", PASSPHRASE)) == info.did
    content = json.loads(Path(info.path).read_text())
    assert content["kdf"]["opslimit"] == argon2id.OPSLIMIT_INTERACTIVE
    assert content["kdf"]["memlimit"] == argon2id.MEMLIMIT_INTERACTIVE
    assert content["custodial"] is True


def test_an_imported_seed_yields_the_test_vector_did(store: Keystore) -> None:
    info = store.create("vector", PASSPHRASE, seed=VECTOR_SEED)
    assert info.did == VECTOR_DID
    assert did_of(store.unlock("vector", PASSPHRASE)) == VECTOR_DID


def test_the_key_file_is_0600_and_the_directory_0700(store: Keystore) -> None:
    info = store.create("node", PASSPHRASE)
    assert stat.S_IMODE(os.stat(info.path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o700


def test_the_key_file_has_the_documented_shape(store: Keystore) -> None:
    info = store.create("node", PASSPHRASE)
    content = json.loads(Path(info.path).read_text())
    assert Path(info.path).name == "node.json"
    assert set(content) == {
        "version",
        "name",
        "did",
        "custodial",
        "created_ms",
        "kdf",
        "cipher",
        "ciphertext",
    }
    assert content["version"] == 1
    assert content["name"] == "node"
    assert content["did"] == info.did
    assert content["cipher"] == "xsalsa20poly1305"
    assert content["kdf"]["alg"] == "argon2id"
    assert len(bytes.fromhex(content["kdf"]["salt"])) == argon2id.SALTBYTES


def test_the_key_file_contains_neither_the_seed_nor_the_passphrase(store: Keystore) -> None:
    info = store.create("vector", PASSPHRASE, seed=VECTOR_SEED)
    raw = Path(info.path).read_bytes()
    assert VECTOR_SEED.hex().encode() not in raw
    assert VECTOR_SEED.hex().upper().encode() not in raw
    assert VECTOR_SEED not in raw
    assert PASSPHRASE.encode() not in raw


def test_no_temp_files_are_left_behind(store: Keystore) -> None:
    store.create("node", PASSPHRASE)
    assert sorted(p.name for p in store.path.iterdir()) == ["node.json"]


def test_a_wrong_passphrase_is_refused_and_changes_nothing(store: Keystore) -> None:
    info = store.create("node", PASSPHRASE)
    before = Path(info.path).read_bytes()
    with pytest.raises(WrongPassphrase, match="wrong passphrase for key 'node'") as excinfo:
        store.unlock("node", "not the passphrase")
    assert "not the passphrase" not in str(excinfo.value)
    assert Path(info.path).read_bytes() == before
    assert sorted(p.name for p in store.path.iterdir()) == ["node.json"]


def test_creating_a_key_twice_raises_key_exists_and_keeps_the_first(store: Keystore) -> None:
    first = store.create("node", PASSPHRASE)
    before = Path(first.path).read_bytes()
    with pytest.raises(KeyExists):
        store.create("node", "another passphrase")
    assert Path(first.path).read_bytes() == before


@pytest.mark.parametrize(
    "name", ["", "Node", "-node", "_node", "no.de", "../node", "a/b", "node\n", "x" * 65, "nöde"]
)
def test_an_invalid_name_is_refused(store: Keystore, name: str) -> None:
    with pytest.raises(InvalidKeyName):
        store.create(name, PASSPHRASE)
    with pytest.raises(InvalidKeyName):
        store.exists(name)


def test_names_of_one_and_sixty_four_characters_are_accepted(store: Keystore) -> None:
    store.create("a", PASSPHRASE)
    store.create("0" + "a_-" * 21, PASSPHRASE)
    assert [k.name for k in store.list()] == ["0" + "a_-" * 21, "a"]


def test_list_returns_every_key_sorted_by_name(store: Keystore) -> None:
    assert store.list() == []
    for name in ["zeta", "alpha", "mid-1"]:
        store.create(name, PASSPHRASE)
    (store.path / "README.txt").write_text("not a key")
    keys = store.list()
    assert [k.name for k in keys] == ["alpha", "mid-1", "zeta"]
    assert all(isinstance(k, KeyInfo) for k in keys)


def test_an_unknown_key_raises_key_not_found(store: Keystore) -> None:
    assert not store.exists("ghost")
    with pytest.raises(KeyNotFound):
        store.unlock("ghost", PASSPHRASE)
    with pytest.raises(KeyNotFound):
        store.info("ghost")


def test_a_seed_of_the_wrong_length_is_refused(store: Keystore) -> None:
    with pytest.raises(KeystoreError):
        store.create("node", PASSPHRASE, seed=b"\x00" * 31)
    assert not store.exists("node")


def _flip_ciphertext_byte(c: dict) -> None:
    ct = bytearray.fromhex(c["ciphertext"])
    ct[-1] ^= 0x01
    c["ciphertext"] = ct.hex()


def _truncate_ciphertext(c: dict) -> None:
    c["ciphertext"] = c["ciphertext"][:20]


def _non_hex_ciphertext(c: dict) -> None:
    c["ciphertext"] = "zz" * 72


def _drop_kdf(c: dict) -> None:
    del c["kdf"]


def _string_opslimit(c: dict) -> None:
    c["kdf"]["opslimit"] = "1"


def _huge_memlimit(c: dict) -> None:
    c["kdf"]["memlimit"] = 2**62


def _unknown_cipher(c: dict) -> None:
    c["cipher"] = "rot13"


def _other_name(c: dict) -> None:
    c["name"] = "other"


def _bad_did(c: dict) -> None:
    c["did"] = "did:icn:nope"


@pytest.mark.parametrize(
    "corrupt",
    [
        _flip_ciphertext_byte,
        _truncate_ciphertext,
        _non_hex_ciphertext,
        _drop_kdf,
        _string_opslimit,
        _huge_memlimit,
        _unknown_cipher,
        _other_name,
        _bad_did,
    ],
)
def test_a_corrupted_file_raises_a_keystore_error_not_a_traceback(store: Keystore, corrupt) -> None:
    info = store.create("node", PASSPHRASE)
    content = json.loads(Path(info.path).read_text())
    corrupt(content)
    Path(info.path).write_text(json.dumps(content))
    with pytest.raises((WrongPassphrase, CorruptKeyFile)):
        store.unlock("node", PASSPHRASE)


@pytest.mark.parametrize("raw", [b"", b"{not json", b"[]", b"\xff\xfe"])
def test_a_file_that_is_not_a_key_record_is_corrupt(store: Keystore, raw: bytes) -> None:
    info = store.create("node", PASSPHRASE)
    Path(info.path).write_bytes(raw)
    with pytest.raises(CorruptKeyFile):
        store.info("node")
    with pytest.raises(CorruptKeyFile):
        store.unlock("node", PASSPHRASE)


def test_a_file_claiming_another_did_is_corrupt_after_unlocking(store: Keystore) -> None:
    info = store.create("node", PASSPHRASE)
    content = json.loads(Path(info.path).read_text())
    content["did"] = VECTOR_DID
    Path(info.path).write_text(json.dumps(content))
    with pytest.raises(CorruptKeyFile):
        store.unlock("node", PASSPHRASE)


def test_the_repr_names_no_secret(store: Keystore) -> None:
    info = store.create("vector", PASSPHRASE, seed=VECTOR_SEED)
    for text in (repr(store), repr(info)):
        assert PASSPHRASE not in text
        assert VECTOR_SEED.hex() not in text


# -- passphrase resolution -------------------------------------------------


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_passphrase_comes_from_icn_passphrase_first(tmp_path: Path) -> None:
    secret_file = tmp_path / "pass"
    secret_file.write_text("from the file\n")
    secret_file.chmod(0o600)
    env = {"ICN_PASSPHRASE": "from the env", "ICN_PASSPHRASE_FILE": str(secret_file)}
    assert resolve_passphrase(env=env) == "from the env"


def test_the_passphrase_comes_from_a_0600_file_minus_one_newline(tmp_path: Path) -> None:
    secret_file = tmp_path / "pass"
    secret_file.write_text("from the file \n\n")
    secret_file.chmod(0o600)
    env = {"ICN_PASSPHRASE": "", "ICN_PASSPHRASE_FILE": str(secret_file)}
    assert resolve_passphrase(env=env) == "from the file \n"


def test_a_group_or_world_readable_passphrase_file_is_refused(tmp_path: Path) -> None:
    secret_file = tmp_path / "pass"
    secret_file.write_text("from the file\n")
    secret_file.chmod(0o644)
    with pytest.raises(InsecurePassphraseFile, match="chmod 600") as excinfo:
        resolve_passphrase(env={"ICN_PASSPHRASE_FILE": str(secret_file)})
    assert "from the file" not in str(excinfo.value)
    assert isinstance(excinfo.value, KeystoreError)


def test_a_missing_passphrase_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PassphraseUnavailable, match="does not exist"):
        resolve_passphrase(env={"ICN_PASSPHRASE_FILE": str(tmp_path / "absent")})


def test_without_env_or_terminal_the_passphrase_is_unavailable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("typed but not a tty\n"))
    with pytest.raises(PassphraseUnavailable) as excinfo:
        resolve_passphrase(env={})
    assert str(excinfo.value) == (
        "no passphrase: set ICN_PASSPHRASE or ICN_PASSPHRASE_FILE, or run in a terminal"
    )
    assert isinstance(excinfo.value, KeystoreError)


def test_a_terminal_is_prompted_twice_for_a_new_key(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = iter(["long enough", "long enough"])
    monkeypatch.setattr("sys.stdin", _Tty())
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    assert resolve_passphrase(confirm=True, env={}) == "long enough"


def test_a_mismatched_confirmation_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = iter(["long enough", "long enougH"])
    monkeypatch.setattr("sys.stdin", _Tty())
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    with pytest.raises(PassphraseMismatch):
        resolve_passphrase(confirm=True, env={})


def test_a_new_key_needs_at_least_eight_characters() -> None:
    with pytest.raises(WeakPassphrase):
        resolve_passphrase(confirm=True, env={"ICN_PASSPHRASE": "short"})
    assert resolve_passphrase(confirm=True, env={"ICN_PASSPHRASE": "8 chars!"}) == "8 chars!"
    assert resolve_passphrase(env={"ICN_PASSPHRASE": "short"}) == "short"
