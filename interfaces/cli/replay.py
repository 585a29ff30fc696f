"""``icn replay``: rebuild the coop rules' state and every read model from the log, compare.

The rebuild goes into a scratch copy (a temporary SQLite file, whatever the
live backend) and into memory; the live tables are read as of one
consistent snapshot. Any difference is listed (table, key, live value,
rebuilt value) and the exit code is 1.
"""

from __future__ import annotations

import sys

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)

from icn.infrastructure.store.read_models import ReadSide
from icn.interfaces.bootstrap import catch_up_reads, open_node
from icn.interfaces.cli.common import DataDir, Json, err, out, print_json, settings_for
from icn.projections.replay import ReplayReport

SHOWN = 20


def replay(data_dir: DataDir = None, json: Json = False) -> None:
    """Rebuild every projection (and the coop rules' state) from the log in a scratch copy
    and compare it with the live one, row by row; exit 1 on any difference."""
    node = open_node(settings_for(data_dir))
    side = ReadSide(node.store)
    try:
        for coop in node.store.coops():  # a rebuild (earlier layout) shows its progress
            catch_up_reads(node, side, coop)
        if not json and sys.stdout.isatty():
            columns = (
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
            )
            with Progress(*columns, console=err) as bar:
                task = bar.add_task("replay", total=None)
                report = side.replay(
                    on_start=lambda n: bar.update(task, total=n),
                    on_progress=lambda n: bar.advance(task, n),
                )
        else:
            report = side.replay()
    finally:
        side.close()
        node.close()
    if json:
        print_json(report)
    else:
        _summary(report)
    if not report.identical:
        raise typer.Exit(1)


def _summary(report: ReplayReport) -> None:
    coops = ", ".join(f"{c} ({n})" for c, n in sorted(report.coops.items())) or "none"
    for d in report.differences[:SHOWN]:
        err.print(
            f"differs: {d.table} {d.key}: live {d.live!r}, rebuilt {d.rebuilt!r}",
            markup=False,
            highlight=False,
        )
    if report.difference_count > SHOWN:
        err.print(f"… and {report.difference_count - SHOWN} more (--json lists up to 1000)")
    verdict = "identical" if report.identical else f"{report.difference_count} difference(s)"
    out.print(
        f"replay: {verdict}; {report.events} events in {report.seconds:.2f} s"
        f" ({report.events_per_s:,.0f} events/s); coops: {coops}",
        markup=False,
        highlight=False,
    )
