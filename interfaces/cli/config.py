"""``icn config``: the settings a node started here would use, and where each came from."""

from __future__ import annotations

import typer

from icn.interfaces.cli.common import DataDir, Json, out, print_json

app = typer.Typer(help="The node's effective settings.", no_args_is_help=True)


@app.command("show")
def show(data_dir: DataDir = None, json: Json = False) -> None:
    """Print every setting: its value (secrets redacted) and source (default, file, env, flag).

    The config file is the one ICN_CONFIG names, else icn.toml in the data dir; an ICN_*
    variable wins over it, a flag over both."""
    from icn.infrastructure.settings import load_settings

    settings = load_settings(data_dir)
    file = str(settings.config_file) if settings.config_file else None
    rows = settings.rows()
    if json:
        print_json({"config_file": file, "settings": rows})
        return
    out.print(f"config file: {file or '(none)'}", markup=False)
    width = max(len(r["key"]) for r in rows)
    for r in rows:
        value = "(unset)" if r["value"] is None else r["value"]
        if isinstance(value, list):
            value = ",".join(value) or "(none)"
        out.print(f"{r['key']:<{width}}  {value}  [{r['source']}]", markup=False)
