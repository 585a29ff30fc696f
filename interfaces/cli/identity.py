"""``icn id``: the keys in this node's keystore."""

from __future__ import annotations

from typing import Annotated

import typer

from icn.infrastructure.passphrase import resolve_passphrase
from icn.interfaces.bootstrap import NODE_KEY, keystore_for
from icn.interfaces.cli.common import DataDir, Json, out, print_json, settings_for

app = typer.Typer(help="Identities: Ed25519 keys encrypted at rest.", no_args_is_help=True)

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
    keystore = keystore_for(settings_for(data_dir))
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
    info = keystore_for(settings_for(data_dir)).info(name)
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
    keys = keystore_for(settings_for(data_dir)).list()
    if json:
        print_json([{"name": k.name, "did": k.did, "custodial": k.custodial} for k in keys])
        return
    for k in keys:
        out.print(f"{k.name:<16} {k.did}{' (custodial)' if k.custodial else ''}")
