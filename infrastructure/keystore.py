"""Ed25519 signing keys encrypted at rest, one JSON file per key.

A node's key is its identity: whoever holds the seed can sign events as that
DID, so the seed never touches the disk in the clear. Each file carries the
argon2id parameters it was sealed with, so limits can be raised for new keys
without breaking old ones. Messages and reprs name keys, never passphrases or
seeds, because they end up in logs and bug reports.
"""

from __future__ import annotations

import builtins
import contextlib
import os
import re
import time
from pathlib import Path
from typing import Final, Literal

import msgspec
import nacl.exceptions
import nacl.pwhash.argon2id as argon2id
import nacl.secret
import nacl.signing
import nacl.utils

from icn.domain.identity.did import did_from_public_key, is_valid_did

__all__ = [
    "CorruptKeyFile",
    "InvalidKeyName",
    "KeyExists",
    "KeyInfo",
    "KeyNotFound",
    "Keystore",
    "KeystoreError",
    "WrongPassphrase",
]

_NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_SEED_LEN = 32
_FORMAT_VERSION: Final = 1


class KeystoreError(Exception):
    """Anything the keystore refuses; callers catch this one to report cleanly."""


class WrongPassphrase(KeystoreError):
    """The passphrase does not open the key (or the ciphertext was tampered with)."""


class KeyNotFound(KeystoreError):
    """No key file under that name."""


class KeyExists(KeystoreError):
    """Creating would overwrite a key, and a lost key is a lost identity."""


class InvalidKeyName(KeystoreError):
    """The name would not be a safe, portable file name."""


class CorruptKeyFile(KeystoreError):
    """The file is unreadable, malformed, or decrypts to a key it does not claim."""


class KeyInfo(msgspec.Struct, frozen=True):
    """What can be known about a key without its passphrase."""

    name: str
    did: str
    custodial: bool
    created_ms: int
    path: str


class _Kdf(msgspec.Struct, frozen=True):
    alg: Literal["argon2id"]
    opslimit: int
    memlimit: int
    salt: str


class _KeyFile(msgspec.Struct, frozen=True):
    """The on-disk format; field order is the order written, for readable files."""

    version: Literal[1]
    name: str
    did: str
    custodial: bool
    created_ms: int
    kdf: _Kdf
    cipher: Literal["xsalsa20poly1305"]
    ciphertext: str


def _check_name(name: str) -> None:
    # fullmatch on a str pattern: no path separators, dots or trailing newline slip through.
    if not isinstance(name, str) or _NAME_RE.fullmatch(name) is None:
        raise InvalidKeyName(
            f"invalid key name {name!r}: use 1-64 characters a-z 0-9 _ -, "
            "starting with a letter or digit"
        )


def _derive(passphrase: str, salt: bytes, opslimit: int, memlimit: int) -> bytes:
    return argon2id.kdf(
        nacl.secret.SecretBox.KEY_SIZE, passphrase.encode("utf-8"), salt, opslimit, memlimit
    )


def _fsync_dir(directory: Path) -> None:
    """Make the new directory entry durable, not just the file's bytes."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Keystore:
    """A directory of encrypted keys.

    The default argon2id limits are libsodium's *interactive* ones on purpose:
    a key is unlocked each time a node starts and each time the CLI signs, so
    the cost must stay well under a second. Raise them for keys that are
    unlocked rarely; the chosen limits are stored in each file.
    """

    def __init__(
        self,
        path: Path,
        *,
        opslimit: int = argon2id.OPSLIMIT_INTERACTIVE,
        memlimit: int = argon2id.MEMLIMIT_INTERACTIVE,
    ) -> None:
        if not argon2id.OPSLIMIT_MIN <= opslimit <= argon2id.OPSLIMIT_MAX:
            raise ValueError(f"opslimit out of argon2id range: {opslimit}")
        if not argon2id.MEMLIMIT_MIN <= memlimit <= argon2id.MEMLIMIT_MAX:
            raise ValueError(f"memlimit out of argon2id range: {memlimit}")
        self.path = Path(path)
        self.opslimit = opslimit
        self.memlimit = memlimit

    def __repr__(self) -> str:
        return f"Keystore({str(self.path)!r})"

    def _file(self, name: str) -> Path:
        _check_name(name)
        return self.path / f"{name}.json"

    def exists(self, name: str) -> bool:
        return self._file(name).is_file()

    def create(
        self,
        name: str,
        passphrase: str,
        *,
        custodial: bool = False,
        seed: bytes | None = None,
    ) -> KeyInfo:
        """Seal a new key (random, or ``seed`` to import a known one) under ``name``."""
        target = self._file(name)
        if not passphrase:
            raise KeystoreError("refusing to create a key with an empty passphrase")
        if seed is None:
            signing_key = nacl.signing.SigningKey.generate()
        else:
            if len(seed) != _SEED_LEN:
                raise KeystoreError(f"an Ed25519 seed has {_SEED_LEN} bytes, not {len(seed)}")
            signing_key = nacl.signing.SigningKey(bytes(seed))
        if target.exists():
            raise KeyExists(f"key {name!r} already exists at {target}")

        did = did_from_public_key(bytes(signing_key.verify_key))
        salt = nacl.utils.random(argon2id.SALTBYTES)
        box = nacl.secret.SecretBox(_derive(passphrase, salt, self.opslimit, self.memlimit))
        record = _KeyFile(
            version=_FORMAT_VERSION,
            name=name,
            did=did,
            custodial=custodial,
            created_ms=time.time_ns() // 1_000_000,
            kdf=_Kdf(
                alg="argon2id", opslimit=self.opslimit, memlimit=self.memlimit, salt=salt.hex()
            ),
            cipher="xsalsa20poly1305",
            ciphertext=bytes(box.encrypt(bytes(signing_key))).hex(),
        )
        self._ensure_dir()
        self._write_new(target, msgspec.json.format(msgspec.json.encode(record), indent=2) + b"\n")
        return self._info(record, target)

    def unlock(self, name: str, passphrase: str) -> nacl.signing.SigningKey:
        """The signing key, after checking it is the key the file claims to hold."""
        target = self._file(name)
        record = self._read(name, target)
        try:
            salt = bytes.fromhex(record.kdf.salt)
            ciphertext = bytes.fromhex(record.ciphertext)
        except ValueError:
            raise CorruptKeyFile(f"key file {target} has non-hex salt or ciphertext") from None
        if len(salt) != argon2id.SALTBYTES:
            raise CorruptKeyFile(f"key file {target} has a salt of {len(salt)} bytes")
        if len(ciphertext) != nacl.secret.SecretBox.NONCE_SIZE + 16 + _SEED_LEN:
            raise CorruptKeyFile(f"key file {target} has a ciphertext of the wrong length")
        box = nacl.secret.SecretBox(
            _derive(passphrase, salt, record.kdf.opslimit, record.kdf.memlimit)
        )
        try:
            seed = box.decrypt(ciphertext)
        except nacl.exceptions.CryptoError:
            # Poly1305 cannot tell a wrong passphrase from flipped bits; the first is likelier.
            raise WrongPassphrase(f"wrong passphrase for key {name!r}") from None
        signing_key = nacl.signing.SigningKey(seed)
        if did_from_public_key(bytes(signing_key.verify_key)) != record.did:
            raise CorruptKeyFile(f"key file {target} decrypts to a key other than {record.did}")
        return signing_key

    def info(self, name: str) -> KeyInfo:
        target = self._file(name)
        return self._info(self._read(name, target), target)

    def list(self) -> builtins.list[KeyInfo]:
        """Every key, sorted by name; temp files and strangers in the directory are ignored."""
        if not self.path.is_dir():
            return []
        names = sorted(
            p.stem
            for p in self.path.glob("*.json")
            if _NAME_RE.fullmatch(p.stem) is not None and p.is_file()
        )
        return [self.info(name) for name in names]

    # -- internals ---------------------------------------------------------

    @staticmethod
    def _info(record: _KeyFile, target: Path) -> KeyInfo:
        return KeyInfo(
            name=record.name,
            did=record.did,
            custodial=record.custodial,
            created_ms=record.created_ms,
            path=str(target),
        )

    def _read(self, name: str, target: Path) -> _KeyFile:
        try:
            raw = target.read_bytes()
        except FileNotFoundError:
            raise KeyNotFound(f"no key {name!r} in {self.path}") from None
        except OSError as exc:
            raise CorruptKeyFile(f"cannot read key file {target}: {exc.strerror}") from None
        try:
            record = msgspec.json.decode(raw, type=_KeyFile)
        except msgspec.ValidationError as exc:
            raise CorruptKeyFile(f"key file {target} is malformed: {exc}") from None
        except msgspec.DecodeError:
            raise CorruptKeyFile(f"key file {target} is not valid JSON") from None
        if record.name != name:
            raise CorruptKeyFile(f"key file {target} claims the name {record.name!r}")
        if not is_valid_did(record.did):
            raise CorruptKeyFile(f"key file {target} has an invalid DID")
        kdf = record.kdf
        if not (
            argon2id.OPSLIMIT_MIN <= kdf.opslimit <= argon2id.OPSLIMIT_MAX
            and argon2id.MEMLIMIT_MIN <= kdf.memlimit <= argon2id.MEMLIMIT_MAX
        ):
            raise CorruptKeyFile(f"key file {target} has argon2id limits out of range")
        return record

    def _ensure_dir(self) -> None:
        if self.path.is_dir():
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            self.path.mkdir(mode=0o700)
            # mkdir's mode is masked by the umask; state the intent explicitly.
            os.chmod(self.path, 0o700)

    def _write_new(self, target: Path, data: bytes) -> None:
        """Write ``data`` to ``target`` atomically, never replacing an existing file.

        The bytes go to a 0600 temp file in the same directory and are fsynced
        before the rename, so a crash leaves either no key or a whole one.
        ``os.link`` publishes the file and fails if the name was taken in the
        meantime; ``os.replace`` is the fallback where hard links are missing.
        """
        tmp = target.with_name(f".{target.name}.{os.getpid()}.{nacl.utils.random(6).hex()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            try:
                os.link(tmp, target)
            except FileExistsError:
                raise KeyExists(f"key {target.stem!r} already exists at {target}") from None
            except OSError:
                if target.exists():
                    raise KeyExists(f"key {target.stem!r} already exists at {target}") from None
                os.replace(tmp, target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        _fsync_dir(self.path)
