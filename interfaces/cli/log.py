"""``icn log``: import, export, checkpoints and proofs of the node's log."""

from __future__ import annotations

import os
import sys
from collections import Counter, deque
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from icn.application.append import REFUSED, Outcome
from icn.application.errors import InvalidRequest
from icn.application.parallel import stream_verifier
from icn.application.queries import entry_in
from icn.domain.events.verdicts import Verdict
from icn.interfaces.bootstrap import open_node
from icn.interfaces.cli.common import (
    DataDir,
    Json,
    count_lines,
    err,
    out,
    print_json,
    progress_bar,
    read_lines,
    settings_for,
)

app = typer.Typer(help="The node's log: import, export, checkpoints, proofs.", no_args_is_help=True)

Coop = Annotated[str, typer.Option("--coop", help="Coop id, e.g. 'food-coop'.")]
IMPORT_BATCH = 500


MAX_LISTED = 1000
"""Problem lines an import lists in full (``--json``); beyond that they are only counted."""


_UNREADABLE = object()


def _coop_of(line: bytes) -> object:
    """The ``coop`` a line names, or ``_UNREADABLE`` (left to the judge: malformed)."""
    import msgspec

    try:
        return msgspec.json.decode(line).get("coop")
    except (msgspec.DecodeError, AttributeError, RecursionError):
        return _UNREADABLE


class _Tally:
    """An import's outcomes, counted; the lines that failed listed up to :data:`MAX_LISTED`.

    A file of a million lines gives a million outcomes: they are folded in as each
    chunk is appended, so memory follows the chunk, not the file.
    """

    def __init__(self) -> None:
        self.lines = 0
        self.counts: Counter[str] = Counter()
        self.problems: list[tuple[int, Outcome]] = []
        self.problem_count = 0

    def add(self, line: int, outcome: Outcome) -> None:
        self.lines += 1
        self.counts[outcome.verdict] += 1
        if outcome.verdict not in (Verdict.OK, Verdict.DUPLICATE):
            self.problem_count += 1
            if len(self.problems) < MAX_LISTED:
                self.problems.append((line, outcome))


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
    tally = _Tally()
    numbers: deque[int] = deque()  # line numbers of the lines the verifier has taken

    def wanted() -> Iterator[bytes]:
        """The file's lines, read as the verifier asks; with ``--coop``, another coop's
        lines are refused here, before judging."""
        for n, line in enumerate(read_lines(file), start=1):
            other = coop if coop is None else _coop_of(line)
            if other is not _UNREADABLE and other != coop:
                reason = f"event is for coop {other!r}, not {coop!r}"
                tally.add(n, Outcome(REFUSED, reason, code="wrong-coop"))
            else:
                numbers.append(n)
                yield line

    try:
        total = count_lines(file)
        # Signatures of the next batches are checked on the other cores while this
        # thread judges and appends the current one.
        verifier = stream_verifier(workers, total, caller_appends=True)
        try:
            with progress_bar("import", total) as advance:
                shown = 0
                for _, inspections in verifier.stream(wanted(), chunk=IMPORT_BATCH):
                    for outcome in node.append.append_inspected(inspections):
                        tally.add(numbers.popleft(), outcome)
                    advance(tally.lines - shown)  # other coops' lines counted meanwhile too
                    shown = tally.lines
        finally:
            verifier.close()
    finally:
        node.close()
    _report_import(tally, json)


def _report_import(tally: _Tally, json: bool) -> None:
    """The counts, and the lines that failed; exit 1 if any did."""
    failed = sorted(tally.problems, key=lambda p: p[0])
    if json:
        print_json(
            {
                "lines": tally.lines,
                "stored": tally.counts.get(Verdict.OK, 0),
                "summary": dict(tally.counts),
                "problems": [
                    {"line": n, "verdict": o.verdict, "code": o.code, "reason": o.reason}
                    for n, o in failed
                ],
                "problem_count": tally.problem_count,
            }
        )
    else:
        out.print(
            f"{tally.lines} lines: "
            + ", ".join(f"{v} {n}" for v, n in sorted(tally.counts.items()))
        )
        for n, o in failed[:50]:
            err.print(f"line {n}: {o.verdict}: {o.reason}", highlight=False, markup=False)
        if tally.problem_count > 50:
            err.print(f"… and {tally.problem_count - 50} more")
    if tally.problem_count:
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
