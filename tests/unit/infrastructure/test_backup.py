"""The backup file's manifest: what a restore accepts before extracting anything."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import msgspec
import pytest

from icn.infrastructure.backup import (
    FORMAT,
    VERSION,
    BackupError,
    BackupMismatch,
    CoopSnapshot,
    DataDirNotEmpty,
    Manifest,
    Member,
    check_target,
    compare_coops,
    open_backup,
    restored_consumer,
)
from icn.infrastructure.replication.subjects import durable_name

DID = "did:icn:z6MkkXjenAePsuTk9nUcUqkh1D2zPhYnx5viU1MwQCFMyvzs"


def _manifest(**changes: object) -> Manifest:
    base = Manifest(
        format=FORMAT, version=VERSION, node_did=DID, created_at="2026-12-03T15:00:00+00:00",
        store="sqlite", coops=[CoopSnapshot("food-coop", 3, "ab" * 32)],
        members=[Member("node.json", 2, "00" * 32), Member("keys/node.json", 2, "00" * 32)],
    )  # fmt: skip
    return msgspec.structs.replace(base, **changes)


def _tar(path: Path, members: list[tuple[str, bytes]]) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_a_manifest_round_trips_and_is_read_first(tmp_path: Path) -> None:
    m = _manifest()
    path = _tar(tmp_path / "b.tar", [("manifest.json", msgspec.json.encode(m))])
    tar, read = open_backup(path)
    tar.close()
    assert read == m


@pytest.mark.parametrize(
    ("changes", "error", "says"),
    [
        ({"format": "tarball"}, BackupError, "not an ICN backup"),
        ({"version": 2}, BackupError, "version 2"),
        ({"store": "mysql"}, BackupError, "unknown store kind"),
        (
            {"members": [Member("node.json", 2, "0"), Member("../etc/passwd", 1, "0")]},
            BackupMismatch,
            "unexpected",
        ),
        (
            {"members": [Member("/keys/node.json", 2, "0"), Member("node.json", 2, "0")]},
            BackupMismatch,
            "unexpected",
        ),
        (
            {"members": [Member("node.json", 2, "0"), Member("node.json", 2, "0")]},
            BackupMismatch,
            "repeated",
        ),
        ({"members": [Member("node.json", 2, "0")]}, BackupMismatch, "node key"),
    ],
)
def test_manifests_a_restore_refuses(
    tmp_path: Path, changes: dict[str, object], error: type[Exception], says: str
) -> None:
    path = _tar(tmp_path / "b.tar", [("manifest.json", msgspec.json.encode(_manifest(**changes)))])
    with pytest.raises(error, match=says):
        open_backup(path)


def test_files_that_are_not_backups(tmp_path: Path) -> None:
    with pytest.raises(BackupError, match="no such file"):
        open_backup(tmp_path / "missing.tar")
    (tmp_path / "junk").write_bytes(b"\x00garbage" * 100)
    with pytest.raises(BackupError, match="not an ICN backup"):
        open_backup(tmp_path / "junk")
    with pytest.raises(BackupError, match=r"no manifest\.json first"):
        open_backup(_tar(tmp_path / "t.tar", [("node.json", b"{}"), ("manifest.json", b"{}")]))
    with pytest.raises(BackupError, match="unreadable manifest"):
        open_backup(_tar(tmp_path / "u.tar", [("manifest.json", b"{not json")]))


def test_compare_coops_names_each_difference() -> None:
    m = _manifest(coops=[CoopSnapshot("a", 3, "aa"), CoopSnapshot("b", 1, "bb")])
    assert compare_coops(m, [CoopSnapshot("a", 3, "aa"), CoopSnapshot("b", 1, "bb")]) == []
    problems = compare_coops(m, [CoopSnapshot("a", 4, "ff"), CoopSnapshot("c", 1, "cc")])
    assert problems == [
        "a: restored size 4 root ff, manifest size 3 root aa",
        "b: not restored",
        "c: not in the manifest",
    ]


def test_the_target_must_be_absent_or_empty(tmp_path: Path) -> None:
    check_target(tmp_path / "new")
    (tmp_path / "empty").mkdir()
    check_target(tmp_path / "empty")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / ".hidden").write_text("x")
    with pytest.raises(DataDirNotEmpty):
        check_target(tmp_path / "full")
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataDirNotEmpty, match="not a directory"):
        check_target(tmp_path / "file")


def test_a_restored_node_gets_a_valid_consumer_name_of_its_own() -> None:
    a, b = restored_consumer(DID), restored_consumer(DID)
    assert a != b and a.startswith(DID.removeprefix("did:icn:") + "-r")
    assert durable_name(a) == a  # a valid JetStream consumer name (at most 64 characters)
