"""``icn id``: the keys in this node's keystore.

Reading a DID needs only the keystore's files: no store, no settings model,
so these commands import neither (``icn id show`` starts in a fraction of
the time a store-opening command does).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from icn.infrastructure.keystore import Keystore
from icn.infrastructure.passphrase import resolve_passphrase
from icn.interfaces.cli.common import DataDir, Json, data_dir_of, out, print_json

NODE_KEY = "node"
"""The node's own key (``icn.interfaces.bootstrap.NODE_KEY``; not imported: it pulls the store)."""

app = typer.Typer(help="Identities: Ed25519 keys encrypted at rest.", no_args_is_help=True)


def keystore_at(data_dir: Path | None) -> Keystore:
    """The keystore of the data dir (as ``bootstrap.keystore_for`` builds it)."""
    return Keystore(data_dir_of(data_dir) / "keys")


Name = Annotated[str, typer.Argument(help="Key name, e.g. 'alice'.")]


@app.command("init")
def init(
    name: Name,
    data_dir: DataDir = None,
    custodial: Annotated[
        bool, typer.Option(help="The node keeps and uses this key for a member.")
    ] = False,
    json: Json = False,
) -> None:
    """Create a new key (passphrase from ICN_PASSPHRASE, ICN_PASSPHRASE_FILE or a prompt)."""
    keystore = keystore_at(data_dir)
    info = keystore.create(name, resolve_passphrase(confirm=True), custodial=custodial)
    if json:
        print_json({"name": info.name, "did": info.did, "custodial": info.custodial})
    else:
        out.print(f"created key {info.name}: {info.did}")


@app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="Key name.")] = NODE_KEY,
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """Show a key's DID (no passphrase needed: only the public part is shown)."""
    info = keystore_at(data_dir).info(name)
    if json:
        print_json(
            {
                "name": info.name,
                "did": info.did,
                "custodial": info.custodial,
                "created_ms": info.created_ms,
            }
        )
    else:
        out.print(f"{info.name}: {info.did}{' (custodial)' if info.custodial else ''}")


@app.command("list")
def list_keys(data_dir: DataDir = None, json: Json = False) -> None:
    """List every key in the keystore."""
    keys = keystore_at(data_dir).list()
    if json:
        print_json([{"name": k.name, "did": k.did, "custodial": k.custodial} for k in keys])
        return
    for k in keys:
        out.print(f"{k.name:<16} {k.did}{' (custodial)' if k.custodial else ''}")


PassphraseEnv = Annotated[
    str | None,
    typer.Option(
        "--passphrase-env",
        metavar="VAR",
        help="Read the export's passphrase from this environment variable (else: prompt twice).",
    ),
]


@app.command("export")
def export(
    name: Name,
    out_file: Annotated[Path, typer.Option("--out", help="File to write (must not exist).")],
    browser: Annotated[
        bool,
        typer.Option(
            "--browser",
            help="PBKDF2-SHA256 + AES-256-GCM, which the dashboard opens with WebCrypto.",
        ),
    ] = False,
    passphrase_env: PassphraseEnv = None,
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """Export a key for the members' dashboard, sealed with a passphrase of its own.

    The keystore's passphrase (ICN_PASSPHRASE, ICN_PASSPHRASE_FILE or a prompt) opens the
    key; the export's passphrase is the one the member types in the browser. The file is
    written with mode 0600; the format is in docs/dashboard.md."""
    import json as json_lib
    import os
    import sys

    from icn.infrastructure import browser_key
    from icn.infrastructure.passphrase import ENV_PASSPHRASE, PassphraseUnavailable

    if not browser:
        raise typer.BadParameter("only --browser exports exist so far", param_hint="--browser")
    if passphrase_env is not None:
        if not os.environ.get(passphrase_env):
            raise PassphraseUnavailable(f"no export passphrase: {passphrase_env} is unset or empty")
        source = {ENV_PASSPHRASE: os.environ[passphrase_env]}
    elif sys.stdin is not None and sys.stdin.isatty():
        source = {}  # resolve_passphrase prompts twice
    else:
        raise PassphraseUnavailable(
            "no export passphrase: pass --passphrase-env VAR or run in a terminal"
        )
    keystore = keystore_at(data_dir)
    key = keystore.unlock(name, resolve_passphrase())
    export_passphrase = resolve_passphrase(confirm=True, env=source)
    info = keystore.info(name)
    doc = browser_key.seal(bytes(key), info.did, export_passphrase)
    fd = os.open(out_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(json_lib.dumps(doc, indent=2) + "\n")
    if json:
        print_json({"name": info.name, "did": info.did, "file": str(out_file)})
    else:
        out.print(f"exported {info.name} ({info.did}) for the browser to {out_file}")
