"""``icn log``: import, export, checkpoints and proofs of the node's log."""

from __future__ import annotations

import os
import sys
from collections import Counter
from pathlib import Path
from typing import Annotated

import typer

from icn.application.append import REFUSED, Outcome
from icn.application.audit import split_lines
from icn.application.errors import InvalidRequest
from icn.application.parallel import stream_verifier
from icn.application.queries import entry_in
from icn.domain.events.verdicts import Verdict
from icn.interfaces.bootstrap import open_node
from icn.interfaces.cli.common import (
    DataDir,
    Json,
    err,
    out,
    print_json,
    progress_bar,
    settings_for,
)

app = typer.Typer(help="The node's log: import, export, checkpoints, proofs.", no_args_is_help=True)

Coop = Annotated[str, typer.Option("--coop", help="Coop id, e.g. 'food-coop'.")]
IMPORT_BATCH = 500


def _filter_coop(lines: list[bytes], coop: str | None) -> tuple[list[bytes], dict[int, Outcome]]:
    """With ``--coop``, lines of other coops are refused before judging."""
    if coop is None:
        return lines, {}
    import msgspec

    keep: list[bytes] = []
    refused: dict[int, Outcome] = {}
    for i, line in enumerate(lines):
        try:
            other = msgspec.json.decode(line).get("coop")
        except (msgspec.DecodeError, AttributeError, RecursionError):
            other = coop  # let the judge call it malformed
        if other != coop:
            refused[i] = Outcome(
                REFUSED, f"event is for coop {other!r}, not {coop!r}", code="wrong-coop"
            )
        else:
            keep.append(line)
    return keep, refused


@app.command("import")
def import_(
    file: Annotated[
        Path,
        typer.Argument(help="A jsonl log: one wire event per line.", exists=True, dir_okay=False),
    ],
    coop: Annotated[
        str | None, typer.Option("--coop", help="Refuse lines of any other coop.")
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            min=1,
            max=64,
            help="Cores verifying signatures: threads, or processes for 5,000 lines or more.",
        ),
    ] = min(8, len(os.sched_getaffinity(0))),
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """Verify and append each line through the write path; nothing invalid is stored."""
    node = open_node(settings_for(data_dir), writer=True)
    try:
        lines = split_lines(file.read_bytes())
        keep, refused = _filter_coop(lines, coop)
        results: list[Outcome] = []
        # Signatures of the next batches are checked on the other cores while this
        # thread judges and appends the current one.
        verifier = stream_verifier(workers, len(keep), caller_appends=True)
        try:
            with progress_bar("import", len(keep)) as advance:
                for chunk, inspections in verifier.stream(keep, chunk=IMPORT_BATCH):
                    results += node.append.append_inspected(inspections)
                    advance(len(chunk))
        finally:
            verifier.close()
        it = iter(results)
        outcomes = [refused[i] if i in refused else next(it) for i in range(len(lines))]
    finally:
        node.close()
    counts = Counter(o.verdict for o in outcomes)
    failed = [
        (i + 1, o)
        for i, o in enumerate(outcomes)
        if o.verdict not in (Verdict.OK, Verdict.DUPLICATE)
    ]
    if json:
        print_json(
            {
                "lines": len(outcomes),
                "stored": counts.get(Verdict.OK, 0),
                "summary": dict(counts),
                "problems": [
                    {"line": n, "verdict": o.verdict, "code": o.code, "reason": o.reason}
                    for n, o in failed
                ],
            }
        )
    else:
        out.print(
            f"{len(outcomes)} lines: " + ", ".join(f"{v} {n}" for v, n in sorted(counts.items()))
        )
        for n, o in failed[:50]:
            err.print(f"line {n}: {o.verdict}: {o.reason}", highlight=False, markup=False)
        if len(failed) > 50:
            err.print(f"… and {len(failed) - 50} more")
    if failed:
        raise typer.Exit(1)


@app.command("export")
def export(coop: Coop, data_dir: DataDir = None) -> None:
    """Write the coop's log to stdout as jsonl (spec section 7), in log order."""
    node = open_node(settings_for(data_dir))
    try:
        sink = sys.stdout.buffer
        for entry in node.store.entries(coop):
            sink.write(entry.wire + b"\n")
        sink.flush()
    finally:
        node.close()


@app.command("checkpoint")
def checkpoint(coop: Coop, data_dir: DataDir = None, json: Json = False) -> None:
    """Issue a signed checkpoint (or return the latest, if the log has not grown since)."""
    node = open_node(settings_for(data_dir), writer=True)
    try:
        cp = node.checkpoints().issue(coop)
    finally:
        node.close()
    if json:
        print_json({"note": cp.note, "size": cp.size, "root": cp.root})
    else:
        out.print(cp.note, end="", markup=False, highlight=False)


@app.command("prove")
def prove(
    coop: Coop,
    event_id: Annotated[str, typer.Option("--id", help="Event id (64 hex).")],
    size: Annotated[
        int | None, typer.Option("--size", help="Tree size (default: current).", min=1)
    ] = None,
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """Inclusion proof of an event in the coop's tree."""
    node = open_node(settings_for(data_dir))
    try:
        entry = entry_in(node.store, coop, event_id)
        n = size if size is not None else node.store.tree_size(coop)
        if entry.leaf_index >= n:
            raise InvalidRequest(f"event is leaf {entry.leaf_index}, not inside a tree of size {n}")
        proof = node.store.inclusion_proof(coop, entry.leaf_index, n)
        root = node.store.root(coop, n)
    finally:
        node.close()
    result = {
        "index": entry.leaf_index,
        "size": n,
        "root": root.hex(),
        "proof": [p.hex() for p in proof],
    }
    if json:
        print_json(result)
    else:
        out.print(f"leaf {result['index']} of {n}, root {result['root']}")
        for p in proof:
            out.print(f"  {p.hex()}")


@app.command("consistency")
def consistency(
    coop: Coop,
    size1: Annotated[int, typer.Option("--from", help="Earlier tree size.", min=0)],
    size2: Annotated[int, typer.Option("--to", help="Later tree size.", min=0)],
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """Consistency proof: the tree at --from is a prefix of the tree at --to."""
    if size1 > size2:
        raise InvalidRequest("--from must not be larger than --to")
    node = open_node(settings_for(data_dir))
    try:
        proof = node.store.consistency_proof(coop, size1, size2)
        root1, root2 = node.store.root(coop, size1), node.store.root(coop, size2)
    finally:
        node.close()
    result = {
        "size1": size1,
        "size2": size2,
        "root1": root1.hex(),
        "root2": root2.hex(),
        "proof": [p.hex() for p in proof],
    }
    if json:
        print_json(result)
    else:
        out.print(f"{size1} -> {size2}: {result['root1']} -> {result['root2']}")
        for p in proof:
            out.print(f"  {p.hex()}")
