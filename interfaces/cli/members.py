"""Who a command is about: a DID as typed, or the DID of a key of this keystore by name.

Every option that takes a member (``--did``, ``--member``, ``--counterparty``,
``--author``, a payee …) goes through :func:`did_of`, so ``bob`` works
wherever bob's DID does, and a name that is neither is wrong usage (exit 2).
Light on purpose: reading a DID costs one key file, not the store.
"""

from __future__ import annotations

from pathlib import Path

import typer

from icn.domain.identity.did import is_valid_did
from icn.infrastructure.keystore import Keystore, KeystoreError
from icn.interfaces.cli.common import data_dir_of


def did_of(keystore: Keystore, text: str, what: str = "member") -> str:
    """A DID as typed, or the DID of a key of this keystore by name."""
    if text.startswith("did:"):
        if not is_valid_did(text):
            raise typer.BadParameter(f"{text!r} is not a valid DID", param_hint=what)
        return text
    try:
        if keystore.exists(text):
            return keystore.info(text).did
    except KeystoreError:
        pass
    raise typer.BadParameter(
        f"{text!r} is neither a DID nor the name of a key in {keystore.path}", param_hint=what
    )


def did_in(data_dir: Path | None, text: str | None, what: str) -> str | None:
    """:func:`did_of` with the keystore of ``--data-dir``; ``None`` stays ``None``."""
    if text is None:
        return None
    return did_of(Keystore(data_dir_of(data_dir) / "keys"), text, what)
