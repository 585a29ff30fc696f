"""``icn nats user add``: credentials for other services, which may read coop streams only.

The node's own nats-server requires a user (``icn node init`` generates the
node's); a service that follows a coop's events gets a read-only user of its
own. The password is printed once, on stdout, and kept in the data dir's
``nats-users.json`` (0600) for the server; a running node's server applies
the new user at once (config reload), without a restart.
"""

from __future__ import annotations

from typing import Annotated

import typer

from icn.infrastructure.data_dir import secure_data_dir
from icn.infrastructure.replication.local_nats import reload_local_nats, running_local_nats
from icn.infrastructure.replication.nats_auth import add_reader
from icn.interfaces.cli.common import DataDir, Json, out, print_json, settings_for

app = typer.Typer(help="Users of the node's own NATS server.", no_args_is_help=True)
user_app = typer.Typer(help="Add users of the node's NATS server.", no_args_is_help=True)
app.add_typer(user_app, name="user")


@user_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="The user's name (a-z, 0-9, _ and -).")],
    read_only: Annotated[
        bool,
        typer.Option("--read-only", help="May read streams and make its own consumers only."),
    ] = False,
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """Create a read-only NATS user with a fresh password and print it (shown only now)."""
    if not read_only:
        raise typer.BadParameter(
            "only --read-only users can be added: publishing is for nodes, with the node user",
            param_hint="--read-only",
        )
    settings = settings_for(data_dir)
    if not settings.data_dir.is_dir():
        raise typer.BadParameter(f"no data dir {settings.data_dir}: run `icn node init` first")
    secure_data_dir(settings.data_dir)
    user = add_reader(settings.data_dir, name)
    reloaded = reload_local_nats(settings.data_dir)
    url = running_local_nats(settings.data_dir)
    if json:
        print_json(
            {"user": user.user, "password": user.password, "read_only": True,
             "url": url, "reloaded": reloaded}
        )  # fmt: skip
        return
    out.print(f"user:     {user.user}", markup=False)
    out.print(f"password: {user.password}", markup=False)
    out.print("read-only: may read coop streams and create consumers named after itself")
    if url:
        out.print(f"the node's NATS at {url} accepts it now", markup=False)
    else:
        out.print("the node's NATS accepts it once the node runs", markup=False)
