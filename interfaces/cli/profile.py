"""``icn profile name "…"``: the name a member gives themselves, signed by their own key.

The coop learns a name only from ``coop.ProfileUpdated``, which the member
signs (the key name of ``icn id`` is a label on one machine, nothing the coop
knows). The text is put in NFC and its spaces tidied here, before signing,
since a signed body cannot be normalised by the node; a name the node would
refuse (too long, or with invisible or reordering characters) is refused here
first, with the same reason.
"""

from __future__ import annotations

from typing import Annotated

import typer

from icn.domain.coop import bodies as cb
from icn.domain.coop.names import name_problem, normalise
from icn.interfaces.cli.common import DataDir, Json
from icn.interfaces.cli.writes import Coop, Key, Url, report, writer

app = typer.Typer(
    help="What the coop shows about you, signed by your own key.", no_args_is_help=True
)


@app.command("name")
def name(
    display_name: Annotated[
        str, typer.Argument(help="Your name as members see it beside your DID (1-64 characters).")
    ],
    coop: Coop,
    key: Key,
    url: Url = None,
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """Give yourself a display name (the last one counts); signed by your key, so only you
    can name yourself. Members still see your DID beside it: names are not unique."""
    text = normalise(display_name)
    problem = name_problem(text)
    if problem:
        raise typer.BadParameter(problem, param_hint="'DISPLAY_NAME'")
    body = {"display_name": text}
    with writer(data_dir, url, coop, key) as w:
        written = w.submit([(cb.PROFILE_UPDATED, body)])[0]
    report(
        json,
        {**written.doc(), "body": body},
        [f"you are now {text!r} in {coop} (event {written.event.id}, position {written.position})"],
    )
