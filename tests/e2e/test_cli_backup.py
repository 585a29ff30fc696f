"""``icn backup`` / ``icn restore`` through the real CLI: the file, its manifest, the refusals.

Every refusal leaves the target data dir as it was (absent, or empty) and nothing
staged beside it. The backup taken under load and the restored node catching up from
JetStream: test_backup_replication.py.
"""

from __future__ import annotations

import io
import json
import stat
import tarfile
from pathlib import Path

import pytest
from support.coops import did_for
from support.nodes import coop_log

from icn.infrastructure.store.database import parse_database_url
from icn.infrastructure.store.event_store import SqlEventStore


def _roots(data_dir: Path, url: str | None = None) -> dict[str, tuple[int, str]]:
    store = SqlEventStore(parse_database_url(url, data_dir))
    try:
        return {c: (n, store.root(c, n).hex()) for c in store.coops() for n in [store.tree_size(c)]}
    finally:
        store.close()


@pytest.fixture
def backup(icn, node_dir: Path, tmp_path: Path) -> Path:
    """A node with two coops (51 and 1 events), backed up to ``backup.tar``."""
    icn("log", "import", str(coop_log(tmp_path / "log.jsonl", payments=50)), "--data-dir",
        str(node_dir))  # fmt: skip
    path = tmp_path / "backup.tar"
    icn("backup", "--to", str(path), "--data-dir", str(node_dir))
    return path


def _members(path: Path) -> list[tuple[str, bytes]]:
    with tarfile.open(path) as tar:
        out = []
        for info in tar.getmembers():
            f = tar.extractfile(info)
            assert f is not None
            out.append((info.name, f.read()))
    return out


def _write_tar(path: Path, members: list[tuple[str, bytes]]) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _nothing_restored(target: Path) -> None:
    assert not target.exists() or not any(target.iterdir())
    assert not [p for p in target.parent.iterdir() if ".restore-" in p.name]


def test_the_file_holds_the_manifest_first_the_keys_as_they_are_and_the_store(
    icn, node_dir: Path, backup: Path, tmp_path: Path
) -> None:
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    members = _members(backup)
    names = [n for n, _ in members]
    assert names == ["manifest.json", "node.json", "keys/node.json", "store/icn.sqlite3"]
    manifest = json.loads(members[0][1])
    assert manifest["format"] == "icn-backup" and manifest["version"] == 1
    assert manifest["store"] == "sqlite"
    assert manifest["node_did"] == json.loads((node_dir / "node.json").read_text())["node_did"]
    roots = _roots(node_dir)
    assert {c["coop"]: (c["size"], c["root"]) for c in manifest["coops"]} == roots
    assert roots["food-coop"][0] == 51 and roots["bike-coop"][0] == 1
    assert dict(members)["keys/node.json"] == (node_dir / "keys" / "node.json").read_bytes()
    assert [m["name"] for m in manifest["members"]] == names[1:]
    assert manifest["created_at"].endswith("+00:00")
    # The data dir's config file goes along, and comes back last.
    (node_dir / "icn.toml").write_text("checkpoint_every = 500\n")
    icn("backup", "--to", str(backup), "--data-dir", str(node_dir))
    assert [n for n, _ in _members(backup)][-2:] == ["icn.toml", "store/icn.sqlite3"]
    icn("restore", str(backup), "--data-dir", str(tmp_path / "with-config"))
    assert (tmp_path / "with-config" / "icn.toml").read_text() == "checkpoint_every = 500\n"


def test_restore_audits_every_coop_and_gives_the_same_logs(
    icn, node_dir: Path, backup: Path, tmp_path: Path
) -> None:
    target = tmp_path / "restored"
    report = json.loads(icn("restore", str(backup), "--data-dir", str(target), "--json").stdout)
    assert report["passed"] and report["restored"]
    assert {c["coop"]: c["passed"] for c in report["coops"]} == {
        "bike-coop": True,
        "food-coop": True,
    }
    assert _roots(target) == _roots(node_dir)
    assert stat.S_IMODE(target.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in target.rglob("*") if p.is_file())
    # The restored node reads like the original, with a consumer name of its own.
    alice = ["balance", "--coop", "food-coop", "--did", did_for("alice"), "--json", "--data-dir"]
    balance = json.loads(icn(*alice, str(target)).stdout)
    original = json.loads(icn(*alice, str(node_dir)).stdout)
    assert balance["accounts"] == original["accounts"] and balance["as_of"] == original["as_of"]
    store = SqlEventStore(parse_database_url(None, target))
    try:
        consumer = store.get_meta("replication_consumer")
    finally:
        store.close()
    did = json.loads((node_dir / "node.json").read_text())["node_did"]
    assert consumer is not None and consumer.startswith(did.split(":")[-1] + "-r")
    # An empty directory is a fine target too.
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = icn("restore", str(backup), "--data-dir", str(empty))
    assert proc.stdout.decode().rstrip().endswith("PASS")
    assert _roots(empty) == _roots(node_dir)


def test_a_data_dir_that_is_not_empty_is_refused(
    icn, node_dir: Path, backup: Path, tmp_path: Path
) -> None:
    target = tmp_path / "busy"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    proc = icn("restore", str(backup), "--data-dir", str(target), check=1)
    assert b"data-dir-not-empty" in proc.stderr
    assert [p.name for p in target.iterdir()] == ["notes.txt"]
    proc = icn("restore", str(backup), "--data-dir", str(node_dir), check=1)  # a live node's
    assert b"data-dir-not-empty" in proc.stderr


def test_truncated_foreign_and_missing_files_are_refused(icn, backup: Path, tmp_path: Path) -> None:
    target = tmp_path / "restored"
    data = backup.read_bytes()
    # (A cut in the zero padding after the last member loses nothing: every member is whole.)
    for cut in (100, 2000, len(data) // 2, len(data) - 20_000):
        short = tmp_path / f"short-{cut}.tar"
        short.write_bytes(data[:cut])
        proc = icn("restore", str(short), "--data-dir", str(target), check=1)
        assert b"(not-a-backup)" in proc.stderr, proc.stderr
        _nothing_restored(target)
    foreign = tmp_path / "foreign.tar"
    foreign.write_bytes(b"just some bytes\n" * 100)
    proc = icn("restore", str(foreign), "--data-dir", str(target), check=1)
    assert b"(not-a-backup)" in proc.stderr
    # A tar, but not ours: no manifest first, or a manifest of something else.
    other = _write_tar(tmp_path / "other.tar", [("hello.txt", b"hi")])
    proc = icn("restore", str(other), "--data-dir", str(target), check=1)
    assert b"(not-a-backup)" in proc.stderr and b"no manifest.json first" in proc.stderr
    members = _members(backup)
    manifest = json.loads(members[0][1]) | {"format": "something-else"}
    alien = _write_tar(tmp_path / "alien.tar", [("manifest.json", json.dumps(manifest).encode())])
    proc = icn("restore", str(alien), "--data-dir", str(target), check=1)
    assert b"(not-a-backup)" in proc.stderr
    _nothing_restored(target)
    proc = icn("restore", str(tmp_path / "nope.tar"), "--data-dir", str(target), check=2)
    assert b"does not exist" in proc.stderr
    _nothing_restored(target)


def test_contents_that_differ_from_the_manifest_are_refused(
    icn, backup: Path, tmp_path: Path
) -> None:
    target = tmp_path / "restored"
    members = _members(backup)
    manifest = json.loads(members[0][1])
    # One byte of the store changed: its SHA-256 no longer matches.
    store = bytearray(dict(members)["store/icn.sqlite3"])
    store[len(store) // 2] ^= 0xFF
    bad = [(n, bytes(store) if n == "store/icn.sqlite3" else d) for n, d in members]
    proc = icn("restore", str(_write_tar(tmp_path / "flip.tar", bad)), "--data-dir", str(target),
               check=1)  # fmt: skip
    assert b"(backup-mismatch)" in proc.stderr and b"SHA-256" in proc.stderr
    _nothing_restored(target)
    # A file the manifest does not list.
    extra = [*members, ("keys/extra.json", b"{}")]
    proc = icn("restore", str(_write_tar(tmp_path / "extra.tar", extra)), "--data-dir",
               str(target), check=1)  # fmt: skip
    assert b"(backup-mismatch)" in proc.stderr
    _nothing_restored(target)
    # A member the manifest lists is missing.
    proc = icn("restore", str(_write_tar(tmp_path / "less.tar", members[:-1])), "--data-dir",
               str(target), check=1)  # fmt: skip
    assert b"(not-a-backup)" in proc.stderr and b"missing" in proc.stderr
    _nothing_restored(target)
    # Every file intact, but the manifest names another root: the restored log differs.
    coops = [c | {"root": "00" * 32} if c["coop"] == "food-coop" else c for c in manifest["coops"]]
    lying = [("manifest.json", json.dumps(manifest | {"coops": coops}).encode()), *members[1:]]
    proc = icn("restore", str(_write_tar(tmp_path / "lying.tar", lying)), "--data-dir",
               str(target), check=1)  # fmt: skip
    assert b"(backup-mismatch)" in proc.stderr and b"food-coop: restored size 51" in proc.stderr
    _nothing_restored(target)
    # The manifest's node is not the key's.
    did = "did:icn:z6MkkXjenAePsuTk9nUcUqkh1D2zPhYnx5viU1MwQCFMyvzs"
    other = [("manifest.json", json.dumps(manifest | {"node_did": did}).encode()), *members[1:]]
    proc = icn("restore", str(_write_tar(tmp_path / "other.tar", other)), "--data-dir",
               str(target), check=1)  # fmt: skip
    assert b"(backup-mismatch)" in proc.stderr
    _nothing_restored(target)


def test_backup_replaces_the_file_atomically(icn, node_dir: Path, backup: Path) -> None:
    before = backup.stat().st_ino
    icn("backup", "--to", str(backup), "--data-dir", str(node_dir))
    assert backup.stat().st_ino != before  # a new file renamed over the old one
    assert [p.name for p in backup.parent.iterdir() if p.name.startswith(".backup.tar")] == []


@pytest.mark.postgres
def test_a_postgresql_node_backs_up_its_logs_and_restores_into_either_store(
    icn, tmp_path: Path, pg_cluster
) -> None:
    names = [pg_cluster.create_database() for _ in range(3)]
    source, into, lite_into = (pg_cluster.url(n) for n in names)
    pg = {"ICN_DATABASE_URL": source}
    node = tmp_path / "pg-node"
    try:
        icn("node", "init", "--data-dir", str(node), env=pg)
        log = coop_log(tmp_path / "log.jsonl", payments=50)
        icn("log", "import", str(log), "--data-dir", str(node), env=pg)
        icn("log", "checkpoint", "--coop", "food-coop", "--data-dir", str(node), env=pg)
        file = tmp_path / "pg.backup"
        icn("backup", "--to", str(file), "--data-dir", str(node), env=pg)
        members = _members(file)
        assert [n for n, _ in members] == [
            "manifest.json", "node.json", "keys/node.json", "logs/bike-coop.jsonl",
            "logs/bike-coop.times", "logs/food-coop.jsonl", "logs/food-coop.times",
        ]  # fmt: skip
        assert json.loads(members[0][1])["store"] == "logs"
        exported = icn("log", "export", "--coop", "food-coop", "--data-dir", str(node), env=pg)
        assert dict(members)["logs/food-coop.jsonl"] == exported.stdout
        want = _roots(node, source)
        assert want["food-coop"][0] == 52  # 51 events and the node's checkpoint
        # Into a new SQLite data dir: the logs are appended again, at their trusted times.
        lite = tmp_path / "lite"
        icn("restore", str(file), "--data-dir", str(lite))
        assert _roots(lite) == want
        # Into another (empty) PostgreSQL database.
        again = tmp_path / "pg-again"
        icn("restore", str(file), "--data-dir", str(again), env={"ICN_DATABASE_URL": into})
        assert _roots(again, into) == want
        audit = icn("audit", "verify", "--coop", "food-coop", "--json", "--data-dir", str(again),
                    env={"ICN_DATABASE_URL": into})  # fmt: skip
        assert json.loads(audit.stdout)["passed"]
        # A database that already holds coops is refused, and the data dir stays empty.
        proc = icn("restore", str(file), "--data-dir", str(tmp_path / "pg-3"),
                   env={"ICN_DATABASE_URL": into}, check=1)  # fmt: skip
        assert b"(backup-mismatch)" in proc.stderr and b"already holds coops" in proc.stderr
        _nothing_restored(tmp_path / "pg-3")
        # An SQLite node's backup restores into PostgreSQL the same way.
        sqlite_node = tmp_path / "sqlite-node"
        icn("node", "init", "--data-dir", str(sqlite_node))
        icn("log", "import", str(log), "--data-dir", str(sqlite_node))
        icn("backup", "--to", str(tmp_path / "lite.backup"), "--data-dir", str(sqlite_node))
        moved = tmp_path / "to-pg"
        icn("restore", str(tmp_path / "lite.backup"), "--data-dir", str(moved),
            env={"ICN_DATABASE_URL": lite_into})  # fmt: skip
        assert _roots(moved, lite_into) == _roots(sqlite_node)
    finally:
        for n in names:
            pg_cluster.drop_database(n)


def test_republish_sets_the_outbox_cursors_back_so_the_whole_log_is_published_again(
    icn, node_dir: Path, backup: Path, tmp_path: Path
) -> None:
    from icn.infrastructure.store.parked import SqlReplicationState

    def cursors(data_dir: Path) -> dict[str, int]:
        store = SqlEventStore(parse_database_url(None, data_dir))
        state = SqlReplicationState(store)
        try:
            return {c: state.outbox_cursor(c) for c in ("bike-coop", "food-coop")}
        finally:
            state.close()
            store.close()

    store = SqlEventStore(parse_database_url(None, node_dir))
    state = SqlReplicationState(store)
    try:  # as a relay leaves them once the stream acknowledged everything
        state.set_outbox_cursor("food-coop", 50)
        state.set_outbox_cursor("bike-coop", 0)
    finally:
        state.close()
        store.close()
    icn("backup", "--to", str(backup), "--data-dir", str(node_dir))
    icn("restore", str(backup), "--data-dir", str(tmp_path / "kept"))
    assert cursors(tmp_path / "kept") == {"bike-coop": 0, "food-coop": 50}
    icn("restore", str(backup), "--data-dir", str(tmp_path / "again"), "--republish")
    assert cursors(tmp_path / "again") == {"bike-coop": -1, "food-coop": -1}
