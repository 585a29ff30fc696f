"""``icn audit verify``: check a log file, or the node's own store, from scratch."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from icn.application.audit import audit_file, audit_store
from icn.application.errors import InvalidRequest
from icn.application.parallel import cores, stream_verifier
from icn.interfaces.bootstrap import open_node
from icn.interfaces.cli.common import (
    DataDir,
    Json,
    count_lines,
    err,
    out,
    print_json,
    progress_bar,
    settings_for,
)

app = typer.Typer(help="Independent verification of logs.", no_args_is_help=True)


@app.command("verify")
def verify(
    file: Annotated[
        Path | None, typer.Argument(help="A jsonl log file to verify.", exists=True, dir_okay=False)
    ] = None,
    coop: Annotated[
        str | None, typer.Option("--coop", help="Verify this coop's log in the node's store.")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=1,
            max=64,
            help="Cores verifying signatures (default: all): threads, or processes for"
            " logs of 5,000 events or more.",
        ),
    ] = None,
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """Give every event its spec verdict, recompute balances (and, for --coop, the tree)."""
    if (file is None) == (coop is None):
        raise InvalidRequest("give either a FILE or --coop")
    if file is not None:
        total = count_lines(file)
        verifier = stream_verifier(workers or cores(), total)
        try:
            with progress_bar("verify", total) as advance:
                report = audit_file(file, verifier=verifier, progress=advance)
        finally:
            verifier.close()
        if json:
            print_json({"verdicts": report.verdicts, "balances": report.balances})
        else:
            _print_problems(report.verdicts, report.reasons)
            out.print(f"{len(report.verdicts)} events: {'PASS' if report.passed else 'FAIL'}")
        if not report.passed:
            raise typer.Exit(1)
        return
    assert coop is not None
    node = open_node(settings_for(data_dir))
    size = node.store.tree_size(coop)
    verifier = stream_verifier(workers or cores(), size)
    try:
        with progress_bar("audit", size) as advance:
            result = audit_store(
                node.store, coop, node.node_did, verifier=verifier, progress=advance
            )
    finally:
        verifier.close()
        node.close()
    if json:
        print_json(
            {
                "summary": result.summary,
                "problems": result.problems,
                "problem_count": result.problem_count,
                "balances": result.balances,
                "size": result.size,
                "root": result.root,
                "stored_tree_matches": result.stored_tree_matches,
                "checkpoints": result.checkpoints,
                "quarantined": result.quarantined,
                "passed": result.passed,
            }
        )
    else:
        for p in result.problems:
            err.print(
                f"leaf {p.leaf} ({p.event_id}): {p.verdict}: {p.reason}",
                markup=False,
                highlight=False,
            )
        if result.problem_count > len(result.problems):
            err.print(f"… and {result.problem_count - len(result.problems)} more")
        out.print(f"{result.size} events, root {result.root}")
        out.print(f"stored tree {'matches' if result.stored_tree_matches else 'DIFFERS'}")
        for c in result.checkpoints:
            who = "own" if c.own else "peer"
            out.print(f"checkpoint {c.size} ({who}): {'ok' if c.matches else 'MISMATCH'}")
        for f in result.quarantined:
            out.print(f"fork held in quarantine: {f.author} seq {f.seq} ({f.event_id})")
        out.print("PASS" if result.passed else "FAIL")
    if not result.passed:
        raise typer.Exit(1)


def _print_problems(verdicts: list[str], reasons: list[str]) -> None:
    for n, (v, r) in enumerate(zip(verdicts, reasons, strict=True), start=1):
        if v not in ("ok", "duplicate"):
            err.print(f"line {n}: {v}: {r}", markup=False, highlight=False)
