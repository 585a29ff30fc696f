"""``icn balance`` and ``icn history``: the ledger's read models, read from the local store.

Both first bring the projections up to the log (cheap when nothing is new),
so they show every entry committed before the command started. Amounts are
shown with the currency's decimals; ``--json`` prints the same document as
the HTTP API.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer
from rich.table import Table

from icn.infrastructure.store.read_models import ReadSide
from icn.interfaces.bootstrap import catch_up_reads, clock_ms, open_node
from icn.interfaces.cli.common import DataDir, Json, out, print_json, settings_for
from icn.interfaces.cli.members import did_in
from icn.projections import ledger_views as views

Coop = Annotated[str, typer.Option("--coop", help="Coop id, e.g. 'food-coop'.")]
Did = Annotated[
    str, typer.Option("--did", help="The account: a DID, or a key name of this keystore.")
]


def _when(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _short(did: str) -> str:
    return did if len(did) <= 24 else f"{did[:14]}…{did[-6:]}"


def balance(coop: Coop, did: Did, data_dir: DataDir = None, json: Json = False) -> None:
    """An account's balance in every currency of the coop, what tasks hold of it, its credit
    limit, what is left and the largest payment it can make now."""
    did = str(did_in(data_dir, did, "'--did'"))
    node = open_node(settings_for(data_dir))
    side = ReadSide(node.store)
    try:
        catch_up_reads(node, side, coop)
        view = views.account_balances(side.models, coop, did, clock_ms())
    finally:
        side.close()
        node.close()
    if json:
        print_json(view)
        return
    table = Table(
        "currency", "balance", "held", "credit limit", "available", "can pay", "entries", box=None
    )
    for currency, a in view.accounts.items():
        table.add_row(
            currency,
            a.display,
            a.held_display,
            a.credit_limit_display or "-",
            a.available_display or "-",
            a.spendable_display or "-",
            str(a.entries),
        )
    out.print(f"{did} in {coop} (log up to leaf {view.as_of})")
    out.print(table)


def history(
    coop: Coop,
    did: Did,
    currency: Annotated[str | None, typer.Option("--currency", help="Only this currency.")] = None,
    counterparty: Annotated[
        str | None,
        typer.Option("--counterparty", help="Only with this member (a DID or key name)."),
    ] = None,
    since: Annotated[
        int | None, typer.Option("--since", min=0, help="From this ts (ms), inclusive.")
    ] = None,
    until: Annotated[
        int | None, typer.Option("--until", min=0, help="Before this ts (ms).")
    ] = None,
    after: Annotated[
        int | None, typer.Option("--after", min=0, help="Cursor: the previous page's 'next'.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=views.MAX_PAGE)] = 50,
    desc: Annotated[bool, typer.Option("--desc", help="Newest first.")] = False,
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """An account's transactions, signed from its side, in log order."""
    did = str(did_in(data_dir, did, "'--did'"))
    counterparty = did_in(data_dir, counterparty, "'--counterparty'")
    query = views.HistoryQuery(
        currency=currency,
        counterparty=counterparty,
        since=since,
        until=until,
        after=after,
        limit=limit,
        descending=desc,
    )
    node = open_node(settings_for(data_dir))
    side = ReadSide(node.store)
    try:
        catch_up_reads(node, side, coop)
        page = views.account_history(side.models, coop, did, query)
    finally:
        side.close()
        node.close()
    if json:
        print_json(page)
        return
    table = Table("position", "time (UTC)", "counterparty", "amount", "currency", "memo", box=None)
    for item in page.items:
        table.add_row(
            # A leaf index; the rare second transaction of one entry shows as 6#1.
            str(item.position) if item.tx == 0 else f"{item.position}#{item.tx}",
            _when(item.ts),
            _short(item.counterparty),
            item.display,
            item.currency,
            item.memo or "",
        )
    out.print(table)
    if page.next is not None:
        out.print(f"more: --after {page.next}")
