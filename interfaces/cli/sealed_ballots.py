"""A sealed ballot's secret, kept by the voter between the commitment and the reveal.

``icn vote`` in a sealed domain signs only ``BLAKE3([choice, credits, salt])``;
the choice and the salt must stay with the voter until ``icn reveal`` signs
them, and must never reach a node before then (a node that saw them could
tally a sealed vote while it runs). So they are written here, in the data dir
beside the keystore, before the commitment is posted (a commitment whose salt
was lost could never be revealed), one file per coop, proposal and voter:
``ballots/<coop>/<proposal>/<did key part>.box``, folders 0700, file 0600.

The file is encrypted with XSalsa20-Poly1305 (``SecretBox``) under a key
derived with BLAKE3 from the voter's own signing key. Whoever can derive that
key can already sign as the voter, so this adds no secret to guard and no
passphrase to ask; a copied data dir (a backup) does not show the choice to
anyone holding only the file, and a file altered or opened with another key
is refused rather than revealed wrongly.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import msgspec
from blake3 import blake3
from nacl.exceptions import CryptoError
from nacl.secret import SecretBox
from nacl.signing import SigningKey

from icn.domain.identity.did import did_from_public_key, did_key_part

CONTEXT = "icn 2026-12 sealed ballot secrets v1"
"""BLAKE3 key-derivation context: the box key is for this use only."""


class KeptBallot(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What the reveal needs, as committed."""

    coop: str
    proposal: str
    voter: str
    choice: str
    credits: int | None
    salt: str
    commitment: str
    reason: str | None = None
    """``icn vote --reason``: a commitment has no reason, so it waits here for the reveal."""


class BallotNotKept(Exception):
    """Nothing kept for that ballot here, or nothing this key can open."""


class BallotAlreadyKept(Exception):
    """A commitment for that ballot was kept already: committing again would lose its salt."""


def _box(key: SigningKey) -> SecretBox:
    return SecretBox(blake3(bytes(key), derive_key_context=CONTEXT).digest())


def path_of(data_dir: Path, coop: str, proposal: str, key: SigningKey) -> Path:
    """Where the ballot of ``key``'s DID on ``proposal`` is kept."""
    did = did_from_public_key(bytes(key.verify_key))
    return data_dir / "ballots" / coop / proposal / f"{did_key_part(did)}.box"


def keep(data_dir: Path, ballot: KeptBallot, key: SigningKey) -> Path:
    """Write the secret, never over an earlier one (:class:`BallotAlreadyKept`)."""
    path = path_of(data_dir, ballot.coop, ballot.proposal, key)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    sealed = _box(key).encrypt(msgspec.json.encode(ballot))
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise BallotAlreadyKept(str(path)) from None
    with os.fdopen(fd, "wb") as f:
        f.write(bytes(sealed))
        f.flush()
        os.fsync(f.fileno())
    return path


def load(data_dir: Path, coop: str, proposal: str, key: SigningKey) -> KeptBallot:
    """The kept secret; :class:`BallotNotKept` when there is none this key opens."""
    path = path_of(data_dir, coop, proposal, key)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise BallotNotKept(f"nothing kept in {path.parent}") from None
    try:
        ballot = msgspec.json.decode(_box(key).decrypt(raw), type=KeptBallot)
    except (CryptoError, msgspec.DecodeError, msgspec.ValidationError):
        raise BallotNotKept(f"{path} does not open with this key") from None
    if (ballot.coop, ballot.proposal) != (coop, proposal):
        raise BallotNotKept(f"{path} holds a ballot of another proposal")
    return ballot


def forget(data_dir: Path, coop: str, proposal: str, key: SigningKey) -> None:
    """Remove the secret (once revealed, or when the commitment was refused)."""
    with contextlib.suppress(FileNotFoundError):
        path_of(data_dir, coop, proposal, key).unlink()
