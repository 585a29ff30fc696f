"""Where a keystore passphrase comes from: environment, a file, or the terminal.

Services (systemd, containers) cannot type, so they pass the passphrase in the
environment or, better, in a file only the node's user can read. A person at a
terminal is prompted. Anything else fails loudly instead of hanging on a
prompt nobody will answer.
"""

from __future__ import annotations

import getpass
import os
import stat
import sys
from collections.abc import Mapping

from icn.infrastructure.keystore import KeystoreError

__all__ = [
    "MIN_PASSPHRASE_LEN",
    "InsecurePassphraseFile",
    "PassphraseMismatch",
    "PassphraseUnavailable",
    "WeakPassphrase",
    "resolve_passphrase",
]

ENV_PASSPHRASE = "ICN_PASSPHRASE"
ENV_PASSPHRASE_FILE = "ICN_PASSPHRASE_FILE"
MIN_PASSPHRASE_LEN = 8


class PassphraseUnavailable(KeystoreError):
    """No source could supply a passphrase."""


class InsecurePassphraseFile(KeystoreError):
    """The passphrase file is readable by others, so it no longer protects the key."""


class WeakPassphrase(KeystoreError):
    """Too short to protect a new key against offline guessing."""


class PassphraseMismatch(KeystoreError):
    """The confirmation did not match; a typo would lock the key forever."""


def resolve_passphrase(*, confirm: bool = False, env: Mapping[str, str] = os.environ) -> str:
    """The passphrase from the first source that has one.

    ``confirm=True`` is for creating a key: the terminal asks twice and the
    passphrase must have at least :data:`MIN_PASSPHRASE_LEN` characters,
    whatever its source.
    """
    passphrase = env.get(ENV_PASSPHRASE, "")
    if not passphrase:
        file_name = env.get(ENV_PASSPHRASE_FILE, "")
        if file_name:
            passphrase = _read_passphrase_file(file_name)
        elif sys.stdin is not None and sys.stdin.isatty():
            passphrase = _prompt(confirm=confirm)
        else:
            raise PassphraseUnavailable(
                "no passphrase: set ICN_PASSPHRASE or ICN_PASSPHRASE_FILE, or run in a terminal"
            )
    if not passphrase:
        raise PassphraseUnavailable("no passphrase: the passphrase given is empty")
    if confirm and len(passphrase) < MIN_PASSPHRASE_LEN:
        raise WeakPassphrase(
            f"a passphrase for a new key needs at least {MIN_PASSPHRASE_LEN} characters"
        )
    return passphrase


def _read_passphrase_file(file_name: str) -> str:
    # Check the mode on the opened descriptor, so the file checked is the file read.
    try:
        fd = os.open(file_name, os.O_RDONLY)
    except FileNotFoundError:
        raise PassphraseUnavailable(
            f"{ENV_PASSPHRASE_FILE} names {file_name}, which does not exist"
        ) from None
    except OSError as exc:
        raise PassphraseUnavailable(
            f"cannot read {ENV_PASSPHRASE_FILE} {file_name}: {exc.strerror}"
        ) from None
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise PassphraseUnavailable(f"{ENV_PASSPHRASE_FILE} {file_name} is not a regular file")
        mode = stat.S_IMODE(st.st_mode)
        if mode & 0o077:
            raise InsecurePassphraseFile(
                f"refusing passphrase file {file_name}: its mode {mode:04o} lets group or "
                f"others access it; run 'chmod 600 {file_name}'"
            )
        raw = fh.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise PassphraseUnavailable(
            f"{ENV_PASSPHRASE_FILE} {file_name} is not UTF-8 text"
        ) from None
    # Editors add one final newline; anything else is part of the passphrase.
    if text.endswith("\r\n"):
        return text[:-2]
    if text.endswith("\n"):
        return text[:-1]
    return text


def _prompt(*, confirm: bool) -> str:
    if not confirm:
        return getpass.getpass("Passphrase: ")
    first = getpass.getpass("New passphrase: ")
    if len(first) < MIN_PASSPHRASE_LEN:
        raise WeakPassphrase(
            f"a passphrase for a new key needs at least {MIN_PASSPHRASE_LEN} characters"
        )
    if getpass.getpass("Repeat passphrase: ") != first:
        raise PassphraseMismatch("the passphrases do not match")
    return first
