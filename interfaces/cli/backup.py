"""``icn backup`` and ``icn restore``: the node's store, keystore and a manifest in one file.

What the file holds and why a restore can trust it: :mod:`icn.infrastructure.backup`
and docs/operations.md ("Backup and restore").
"""

from __future__ import annotations

import shutil
import sqlite3
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Annotated, Any

import typer

from icn.application.audit import StoreAudit, audit_store
from icn.application.parallel import cores, stream_verifier
from icn.domain.events.verdicts import Verdict
from icn.infrastructure.backup import (
    CONFIG,
    CONSUMER_META,
    LOGS,
    MARKER,
    SQLITE_MEMBER,
    SQLITE_NAME,
    BackupMismatch,
    Manifest,
    check_target,
    compare_coops,
    coop_snapshots,
    extract_members,
    move_into_place,
    open_backup,
    read_log,
    restored_consumer,
    stage_dir,
    write_backup,
)
from icn.interfaces.cli.common import (
    DataDir,
    Json,
    data_dir_of,
    err,
    out,
    print_json,
    progress_bar,
    settings_for,
)

IMPORT_BATCH = 500


def _progress(label: str, total: int) -> AbstractContextManager[Callable[[int], None]]:
    return progress_bar(label, total)


def backup(
    to: Annotated[
        Path,
        typer.Option("--to", help="The file to write (atomically, mode 0600).", dir_okay=False),
    ],
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """Write a consistent backup of the node (store, keystore, manifest) while it runs."""
    from icn.interfaces.bootstrap import NodeNotInitialised, is_initialised, keystore_for

    settings = settings_for(data_dir)
    if not is_initialised(settings):
        raise NodeNotInitialised(f"no node in {settings.data_dir}")
    did = keystore_for(settings).info("node").did
    result = write_backup(settings.data_dir, settings.database_url, did, to, _progress)
    m = result.manifest
    if json:
        print_json(
            {
                "path": str(result.path),
                "bytes": result.bytes,
                "seconds": round(result.seconds, 3),
                "node_did": m.node_did,
                "created_at": m.created_at,
                "store": m.store,
                "coops": [{"coop": c.coop, "size": c.size, "root": c.root} for c in m.coops],
            }
        )
        return
    out.print(f"backup of {m.node_did} ({m.store}) written to {result.path}")
    for c in m.coops:
        out.print(f"  {c.coop}: {c.size} events, root {c.root}")
    out.print(f"{result.bytes:,} bytes in {result.seconds:.2f} s")


def restore(
    file: Annotated[
        Path,
        typer.Argument(help="A file `icn backup` wrote.", exists=True, dir_okay=False),
    ],
    data_dir: Annotated[
        Path,
        typer.Option("--data-dir", help="Where to restore: a new or empty directory."),
    ],
    republish: Annotated[
        bool,
        typer.Option(
            "--republish",
            help="Publish the whole log again (the JetStream the node used is gone too).",
        ),
    ] = False,
    workers: Annotated[
        int | None,
        typer.Option("--workers", min=1, max=64, help="Cores verifying signatures (audit)."),
    ] = None,
    json: Json = False,
) -> None:
    """Restore a backup into a new data dir, then audit every coop it holds.

    Refuses a data dir that is not empty (data-dir-not-empty), a file that is not a
    backup (not-a-backup) or whose contents differ from its manifest (backup-mismatch);
    then nothing is written to the data dir.
    """
    from icn.infrastructure.data_dir import secure_data_dir

    target = data_dir_of(data_dir)
    check_target(target)
    tar, manifest = open_backup(file)
    stage = stage_dir(target)
    try:
        with tar:
            extract_members(tar, manifest, stage / "_backup", file, _progress)
        audits = _restore_staged(manifest, stage, file, republish=republish, workers=workers)
        if (stage / "_backup" / CONFIG).is_file():  # last: the restore itself ignores it
            (stage / "_backup" / CONFIG).rename(stage / CONFIG)
        shutil.rmtree(stage / "_backup")
        secure_data_dir(stage)
        passed = all(a.passed for a in audits)
        if passed:
            move_into_place(stage, target)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    if not passed:
        shutil.rmtree(stage, ignore_errors=True)
    _report(manifest, audits, target, passed, json)
    if not passed:
        raise typer.Exit(1)


def _restore_staged(
    manifest: Manifest, stage: Path, file: Path, *, republish: bool, workers: int | None
) -> list[StoreAudit]:
    """Build the data dir in ``stage`` from the extracted members, check it against the
    manifest and audit every coop."""
    from icn.interfaces.bootstrap import NODE_DID_META, open_node

    unpacked = stage / "_backup"
    (unpacked / MARKER).rename(stage / MARKER)
    (unpacked / "keys").rename(stage / "keys")
    settings = settings_for(stage)
    into_file = settings.database_url is None and manifest.store == "sqlite"
    if into_file:
        (unpacked / SQLITE_MEMBER).rename(stage / SQLITE_NAME)
        if republish:
            with sqlite3.connect(stage / SQLITE_NAME) as db:
                db.execute("UPDATE replication_coops SET outbox_acked = -1")
            db.close()
    node = open_node(settings, writer=True)
    try:
        if node.node_did != manifest.node_did:
            raise BackupMismatch(
                f"{file}: the node key is {node.node_did}, the manifest says {manifest.node_did}"
            )
        if not into_file:
            if node.store.coops():
                raise BackupMismatch(
                    f"the store at {node.store.database.redacted()} already holds coops:"
                    " restore into an empty database"
                )
            node.store.set_meta(NODE_DID_META, manifest.node_did)
            _import(node, manifest, unpacked)
        node.store.set_meta(CONSUMER_META, restored_consumer(manifest.node_did))
        problems = compare_coops(manifest, coop_snapshots(node.store))
        if problems:
            raise BackupMismatch(f"{file}: the restored logs differ from the manifest: "
                                 + "; ".join(problems))  # fmt: skip
        audits = []
        for c in manifest.coops:
            verifier = stream_verifier(workers or cores(), c.size)
            try:
                with progress_bar(f"audit {c.coop}", c.size) as advance:
                    audits.append(
                        audit_store(
                            node.store, c.coop, node.node_did, verifier=verifier, progress=advance
                        )
                    )
            finally:
                verifier.close()
        return audits
    finally:
        node.close()


def _import(node: Any, manifest: Manifest, unpacked: Path) -> None:
    """Append every coop's log to the fresh store through the write path, each event at
    the trusted time it was judged at (a ``logs`` backup, or any backup into PostgreSQL)."""
    source: Callable[[str], Iterator[tuple[bytes, int | None]]]
    if manifest.store == "logs":
        folder = unpacked / LOGS.rstrip("/")

        def source(coop: str) -> Iterator[tuple[bytes, int | None]]:
            return read_log(folder, coop)
    else:
        from icn.infrastructure.store.database import parse_database_url
        from icn.infrastructure.store.event_store import SqlEventStore

        snap = SqlEventStore(parse_database_url(f"sqlite:///{unpacked / SQLITE_MEMBER}", unpacked))

        def source(coop: str) -> Iterator[tuple[bytes, int | None]]:
            for e in snap.entries(coop):
                yield e.wire, e.trusted_ms

    total = sum(c.size for c in manifest.coops)
    problems = 0
    with progress_bar("import", total) as advance:
        for c in manifest.coops:
            times: deque[int | None] = deque()

            def lines(coop: str = c.coop, times: deque[int | None] = times) -> Iterator[bytes]:
                for wire, trusted in source(coop):
                    times.append(trusted)
                    yield wire

            verifier = stream_verifier(cores(), c.size, caller_appends=True)
            try:
                for chunk, inspections in verifier.stream(lines(), chunk=IMPORT_BATCH):
                    now = node.clock_ms()
                    at = [t if t is not None else now for t in (times.popleft() for _ in chunk)]
                    outcomes = node.append.append_inspected(
                        inspections, from_stream=True, trusted_ms=at
                    )
                    problems += sum(o.verdict != Verdict.OK for o in outcomes)
                    advance(len(chunk))
            finally:
                verifier.close()
    if problems:
        raise BackupMismatch(f"{problems} events of the backup were not accepted again")


def _report(
    manifest: Manifest, audits: list[StoreAudit], target: Path, passed: bool, json: bool
) -> None:
    if json:
        print_json(
            {
                "data_dir": str(target),
                "node_did": manifest.node_did,
                "created_at": manifest.created_at,
                "restored": passed,
                "coops": [
                    {
                        "coop": a.coop,
                        "size": a.size,
                        "root": a.root,
                        "summary": a.summary,
                        "stored_tree_matches": a.stored_tree_matches,
                        "passed": a.passed,
                    }
                    for a in audits
                ],
                "passed": passed,
            }
        )
        return
    for a in audits:
        line = f"{a.coop}: {a.size} events, root {a.root}: {'PASS' if a.passed else 'FAIL'}"
        (out if a.passed else err).print(line, markup=False, highlight=False)
        for p in a.problems[:20]:
            err.print(f"  leaf {p.leaf}: {p.verdict}: {p.reason}", markup=False, highlight=False)
    if passed:
        out.print(f"restored {manifest.node_did} (backup of {manifest.created_at}) into {target}")
        out.print("PASS")
    else:
        err.print(f"audit failed: nothing was restored into {target}")
        out.print("FAIL")
