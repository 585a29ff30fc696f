"""``icn backup`` / ``icn restore``: one file holding a node's store, keystore and manifest.

The file is an uncompressed tar whose first member is ``manifest.json``:
the node's DID, when it was made, each coop's log size and root at the
snapshot, and the size and SHA-256 of every other member. Then come
``node.json`` (the data dir's marker), ``keys/*.json`` (the keystore files
exactly as they are on disk: sealed, never opened), ``icn.toml`` when the data
dir has one (restored last, so the restore itself is not steered by it) and the
store:

- SQLite (the default store): ``store/icn.sqlite3``, a snapshot taken with
  SQLite's online backup API in one step, that is inside one read
  transaction: the state of the store at one commit, taken beside a running
  node without stopping its writes (WAL: readers do not block the writer).
- PostgreSQL: ``logs/<coop>.jsonl`` (each coop's log, one wire event a line,
  spec section 7, as ``icn log export`` writes it) and ``logs/<coop>.times``
  (the trusted time each line was judged at). Every coop's log is read up
  to the size it had when the backup began: a log only grows, so any prefix
  is a state the node was in. Restoring re-imports these lines through the
  write path (every event judged again, at its recorded trusted time), which
  rebuilds the tree, the coop state and the read models. No ``pg_dump`` on
  the node's host is needed, the file does not depend on the server's major
  version, and it restores into PostgreSQL or SQLite alike.

Not in the file: ``nats-users.json`` (NATS passwords in the clear; a node
makes a new one at start), the nats-server's own store (a running JetStream
file store cannot be copied consistently; the stream lives on in NATS and
is what a restored node catches up from), ``node.lock``.

A restore stages everything in a folder beside the target, checks every
member against the manifest, and moves the folder into place only once the
caller's checks (the restored logs' sizes and roots, ``audit verify``)
passed: a bad file leaves the target as it was (absent or empty).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import secrets
import shutil
import sqlite3
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, BinaryIO

import msgspec

from icn.application.errors import ApplicationError
from icn.domain.identity.did import did_key_part
from icn.infrastructure.store.database import Database, parse_database_url
from icn.infrastructure.store.event_store import SqlEventStore
from icn.infrastructure.store.replication_schema import CONSUMER_META

__all__ = ["CONSUMER_META"]

FORMAT = "icn-backup"
VERSION = 1
MANIFEST = "manifest.json"
MARKER = "node.json"
CONFIG = "icn.toml"
KEYS = "keys/"
SQLITE_MEMBER = "store/icn.sqlite3"
LOGS = "logs/"
SQLITE_NAME = "icn.sqlite3"
CHUNK = 1 << 20
_MEMBER_RE = re.compile(
    r"(node\.json|icn\.toml|keys/[a-z0-9][a-z0-9_-]{0,63}\.json|store/icn\.sqlite3"
    r"|logs/[a-z0-9][a-z0-9-]{0,63}\.(jsonl|times))"
)

Progress = Callable[[str, int], AbstractContextManager[Callable[[int], None]]]
"""``progress(label, total)``: a context giving ``advance(n)`` (a bar on a terminal)."""


class BackupError(ApplicationError):
    """The file is not a backup this node can read: foreign, truncated or corrupt."""

    code = "not-a-backup"


class BackupMismatch(ApplicationError):
    """The file's contents differ from what its manifest says (or the restored store does)."""

    code = "backup-mismatch"


class DataDirNotEmpty(ApplicationError):
    """``icn restore`` writes only into a data dir that is absent or empty."""

    code = "data-dir-not-empty"


class CoopSnapshot(msgspec.Struct, frozen=True):
    """One coop's log in the backup: its size and Merkle root (hex)."""

    coop: str
    size: int
    root: str


class Member(msgspec.Struct, frozen=True):
    """One file in the backup after the manifest."""

    name: str
    size: int
    sha256: str


class Manifest(msgspec.Struct, frozen=True):
    """What the backup holds; the first member of the file."""

    format: str
    version: int
    node_did: str
    created_at: str
    store: str
    """``sqlite`` (a snapshot of the SQLite file) or ``logs`` (each coop's log, re-imported)."""
    coops: list[CoopSnapshot]
    members: list[Member]


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
    return h.hexdigest()


# -- backup ----------------------------------------------------------------------------


def snapshot_sqlite(source: str, target: Path) -> None:
    """Copy the SQLite store at ``source`` into ``target`` in one online-backup step.

    One step is one read transaction on the source: the copy is the store as of
    one commit, whatever the node writes meanwhile (a copy in several steps would
    start over after each write of another process, and might never finish under
    load). The copy is then switched to a rollback journal so it is one file.
    """
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst, pages=-1)
            dst.execute("PRAGMA journal_mode = DELETE")
        finally:
            dst.close()
    finally:
        src.close()


def coop_snapshots(store: SqlEventStore) -> list[CoopSnapshot]:
    """Every coop's size and root in ``store`` now."""
    out = []
    for coop in store.coops():
        size = store.tree_size(coop)
        out.append(CoopSnapshot(coop, size, store.root(coop, size).hex()))
    return out


def _export_logs(
    store: SqlEventStore, folder: Path, progress: Progress
) -> tuple[list[CoopSnapshot], list[Path]]:
    """Each coop's log up to its size now: ``<coop>.jsonl`` and ``<coop>.times``."""
    snapshots = coop_snapshots(store)
    files: list[Path] = []
    with progress("export", sum(s.size for s in snapshots)) as advance:
        for snap in snapshots:
            lines, times = folder / f"{snap.coop}.jsonl", folder / f"{snap.coop}.times"
            with lines.open("wb") as wf, times.open("wb") as tf:
                n = 0
                for entry in store.entries(snap.coop, stop=snap.size):
                    wf.write(entry.wire + b"\n")
                    tf.write(b"-\n" if entry.trusted_ms is None else b"%d\n" % entry.trusted_ms)
                    n += 1
                    if n % 1000 == 0:
                        advance(1000)
                advance(n % 1000)
            if n != snap.size:
                raise BackupMismatch(f"{snap.coop}: read {n} events of {snap.size}")
            files += [lines, times]
    return snapshots, files


@dataclass(frozen=True)
class BackupResult:
    """What ``icn backup`` wrote."""

    path: Path
    manifest: Manifest
    bytes: int
    seconds: float


def write_backup(
    data_dir: Path, database_url: str | None, node_did: str, dest: Path, progress: Progress
) -> BackupResult:
    """Write the backup of the node in ``data_dir`` to ``dest`` (tmp file, then rename; 0600).

    Reads only: the node may be running and writing all along.
    """
    started = time.monotonic()
    database = parse_database_url(database_url, data_dir)
    dest = dest.absolute()
    work = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        files: list[tuple[str, Path]] = [(MARKER, data_dir / MARKER)]
        files += [(f"{KEYS}{p.name}", p) for p in sorted((data_dir / "keys").glob("*.json"))]
        if (data_dir / CONFIG).is_file():
            files.append((CONFIG, data_dir / CONFIG))
        if database.is_sqlite:
            snap = work / SQLITE_NAME
            with progress("snapshot", 1) as advance:
                snapshot_sqlite(database.sqlite_path, snap)
                advance(1)
            store = SqlEventStore(Database(parse_database_url(None, work).url))
            try:
                coops = coop_snapshots(store)
            finally:
                store.close()
            files.append((SQLITE_MEMBER, snap))
            kind = "sqlite"
        else:
            store = SqlEventStore(database)
            try:
                coops, logs = _export_logs(store, work, progress)
            finally:
                store.close()
            files += [(f"{LOGS}{p.name}", p) for p in logs]
            kind = "logs"
        members = [Member(name, p.stat().st_size, _sha256_file(p)) for name, p in files]
        manifest = Manifest(
            format=FORMAT, version=VERSION, node_did=node_did,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            store=kind, coops=coops, members=members,
        )  # fmt: skip
        tmp = work / "backup.tar"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as raw:
            _write_tar(raw, manifest, files, progress)
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(tmp, dest)
        with contextlib.suppress(OSError):
            dir_fd = os.open(dest.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return BackupResult(dest, manifest, dest.stat().st_size, time.monotonic() - started)


def _write_tar(
    raw: BinaryIO, manifest: Manifest, files: list[tuple[str, Path]], progress: Progress
) -> None:
    body = msgspec.json.format(msgspec.json.encode(manifest), indent=2) + b"\n"
    total = sum(p.stat().st_size for _, p in files)
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(MANIFEST)
        info.size, info.mode, info.mtime = len(body), 0o600, int(time.time())
        tar.addfile(info, io.BytesIO(body))
        with progress("backup", total) as advance:
            for name, path in files:
                info = tarfile.TarInfo(name)
                st = path.stat()
                info.size, info.mode, info.mtime = st.st_size, 0o600, int(st.st_mtime)
                with path.open("rb") as f:
                    tar.addfile(info, _Counting(f, advance))


class _Counting(io.RawIOBase):
    """A file whose reads advance a progress bar."""

    def __init__(self, f: IO[bytes], advance: Callable[[int], None]) -> None:
        self._f, self._advance = f, advance

    def read(self, size: int = -1) -> bytes:
        data = self._f.read(size)
        self._advance(len(data))
        return data


# -- restore ---------------------------------------------------------------------------


def check_target(data_dir: Path) -> None:
    """Refuse a data dir that exists and holds anything (a node's, or anything else)."""
    if data_dir.exists():
        if not data_dir.is_dir():
            raise DataDirNotEmpty(f"{data_dir} exists and is not a directory")
        if any(data_dir.iterdir()):
            raise DataDirNotEmpty(f"{data_dir} is not empty: restore into a new or empty data dir")


def read_manifest(tar: tarfile.TarFile, path: Path) -> Manifest:
    """The first member, which must be an ICN backup manifest this release reads."""
    try:
        first = tar.next()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BackupError(f"{path}: not an ICN backup ({exc})") from None
    if first is None or first.name != MANIFEST or not first.isfile():
        raise BackupError(f"{path}: not an ICN backup (no {MANIFEST} first)")
    f = tar.extractfile(first)
    assert f is not None
    try:
        manifest = msgspec.json.decode(f.read(1 << 24), type=Manifest)
    except (msgspec.DecodeError, tarfile.TarError, OSError, EOFError) as exc:
        raise BackupError(f"{path}: unreadable manifest ({exc})") from None
    if manifest.format != FORMAT:
        raise BackupError(f"{path}: not an ICN backup (format {manifest.format!r})")
    if manifest.version != VERSION:
        raise BackupError(
            f"{path}: backup format version {manifest.version}; this node reads {VERSION}"
        )
    if manifest.store not in ("sqlite", "logs"):
        raise BackupError(f"{path}: unknown store kind {manifest.store!r}")
    names = [m.name for m in manifest.members]
    if len(set(names)) != len(names) or not all(_MEMBER_RE.fullmatch(n) for n in names):
        raise BackupMismatch(f"{path}: the manifest lists unexpected or repeated files")
    if MARKER not in names or not any(n == f"{KEYS}node.json" for n in names):
        raise BackupMismatch(f"{path}: the manifest lacks the node marker or the node key")
    return manifest


def open_backup(path: Path) -> tuple[tarfile.TarFile, Manifest]:
    """Open a backup file and read its manifest (the caller closes the tar)."""
    try:
        tar = tarfile.open(path, mode="r:")  # noqa: SIM115 (the caller closes it)
    except (tarfile.TarError, OSError, EOFError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise BackupError(f"{path}: no such file") from None
        raise BackupError(f"{path}: not an ICN backup ({exc})") from None
    try:
        return tar, read_manifest(tar, path)
    except BaseException:
        tar.close()
        raise


def inspect_backup(path: Path) -> Manifest:
    """The manifest of a backup file, without extracting anything."""
    tar, manifest = open_backup(path)
    tar.close()
    return manifest


def extract_members(
    tar: tarfile.TarFile, manifest: Manifest, into: Path, path: Path, progress: Progress
) -> None:
    """Write every member the manifest lists into ``into``, checking size and SHA-256 as it
    goes; refuse a member it does not list, and a listed one that is missing."""
    wanted = {m.name: m for m in manifest.members}
    seen: set[str] = set()
    with progress("extract", sum(m.size for m in manifest.members)) as advance:
        while True:
            try:
                info = tar.next()
            except (tarfile.TarError, OSError, EOFError) as exc:
                raise BackupError(f"{path}: truncated or corrupt ({exc})") from None
            if info is None:
                break
            member = wanted.get(info.name)
            if member is None or not info.isfile() or info.name in seen:
                raise BackupMismatch(f"{path}: {info.name!r} is not in the manifest")
            if info.size != member.size:
                raise BackupMismatch(
                    f"{path}: {info.name} is {info.size} bytes, the manifest says {member.size}"
                )
            target = into / info.name
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            h = hashlib.sha256()
            src = tar.extractfile(info)
            assert src is not None
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                with os.fdopen(fd, "wb") as out:
                    left = info.size
                    while left:
                        block = src.read(min(CHUNK, left))
                        if not block:
                            raise BackupError(f"{path}: truncated in {info.name}")
                        h.update(block)
                        out.write(block)
                        left -= len(block)
                        advance(len(block))
                    out.flush()
                    os.fsync(out.fileno())
            except (tarfile.TarError, EOFError, OSError) as exc:
                raise BackupError(f"{path}: truncated or corrupt in {info.name} ({exc})") from None
            if h.hexdigest() != member.sha256:
                raise BackupMismatch(f"{path}: {info.name} does not match its SHA-256")
            seen.add(info.name)
    missing = sorted(set(wanted) - seen)
    if missing:
        raise BackupError(f"{path}: truncated: {', '.join(missing)} missing")


def restored_consumer(node_did: str) -> str:
    """A durable consumer name of its own for a restored node (``<DID key>-r<8 hex>``).

    The node it was restored from may still run (or its consumer still stand at
    where that node got to, past the snapshot): sharing its consumer would split the
    stream between them, or skip what happened after the snapshot. A new consumer
    delivers the whole stream; what the store already holds is absorbed as known.
    """
    return f"{did_key_part(node_did)}-r{secrets.token_hex(4)}"


def compare_coops(manifest: Manifest, restored: list[CoopSnapshot]) -> list[str]:
    """How the restored store's logs differ from the manifest's (empty: they are equal)."""
    want = {c.coop: c for c in manifest.coops}
    have = {c.coop: c for c in restored}
    problems = []
    for coop in sorted(set(want) | set(have)):
        w, h = want.get(coop), have.get(coop)
        if w is None or h is None:
            problems.append(f"{coop}: {'not in the manifest' if w is None else 'not restored'}")
        elif (w.size, w.root) != (h.size, h.root):
            problems.append(
                f"{coop}: restored size {h.size} root {h.root},"
                f" manifest size {w.size} root {w.root}"
            )
    return problems


def read_log(folder: Path, coop: str) -> Iterator[tuple[bytes, int | None]]:
    """A ``logs`` backup's lines of ``coop`` with their trusted times."""
    with (
        (folder / f"{coop}.jsonl").open("rb") as lines,
        (folder / f"{coop}.times").open("rb") as times,
    ):
        for line in lines:
            t = times.readline().strip()
            if not t:
                raise BackupMismatch(f"{coop}: fewer trusted times than lines")
            yield line.rstrip(b"\n"), None if t == b"-" else int(t)


def move_into_place(stage: Path, data_dir: Path) -> None:
    """Move the staged data dir to ``data_dir`` (absent: one rename; empty: its entries)."""
    check_target(data_dir)
    if not data_dir.exists():
        os.rename(stage, data_dir)
        return
    for child in stage.iterdir():
        os.rename(child, data_dir / child.name)
    stage.rmdir()
    data_dir.chmod(0o700)


def stage_dir(data_dir: Path) -> Path:
    """A private folder beside ``data_dir`` (same file system, so the move is a rename)."""
    parent = data_dir.absolute().parent
    parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    return Path(tempfile.mkdtemp(prefix=f".{data_dir.name}.restore-", dir=parent))
