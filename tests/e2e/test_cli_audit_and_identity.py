"""``icn audit verify`` on files, identities, and bad input at the command line."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from support.coops import two_coop_log, write_jsonl


def test_audit_of_a_file_prints_exactly_the_spec_object(icn, vectors_dir: Path):
    expected = json.loads((vectors_dir / "expected.json").read_text())
    for name, want in expected.items():
        proc = icn(
            "audit",
            "verify",
            str(vectors_dir / name),
            "--json",
            check=0 if name == "ok.jsonl" else 1,
        )
        assert json.loads(proc.stdout) == {
            "verdicts": want["verdicts"],
            "balances": want["balances"],
        }
        assert proc.stdout.count(b"\n") == 1


def test_audit_with_workers_gives_the_same_answer(icn, vectors_dir: Path):
    one = icn("audit", "verify", str(vectors_dir / "faults.jsonl"), "--json", check=1).stdout
    two = icn(
        "audit", "verify", str(vectors_dir / "faults.jsonl"), "--json", "--workers", "2", check=1
    ).stdout
    assert one == two


def test_audit_text_output_names_each_bad_line(icn, vectors_dir: Path):
    proc = icn("audit", "verify", str(vectors_dir / "faults.jsonl"), check=1)
    assert b"line 31: bad-id" in proc.stderr
    assert b"line 34: fork" in proc.stderr
    assert b"FAIL" in proc.stdout


def test_audit_of_a_missing_file_is_a_usage_error(icn, tmp_path: Path):
    icn("audit", "verify", str(tmp_path / "nope.jsonl"), check=2)


def test_commands_on_an_uninitialised_data_dir_say_what_to_do(icn, tmp_path: Path):
    proc = icn("log", "export", "--coop", "x", "--data-dir", str(tmp_path / "empty"), check=1)
    assert b"icn node init" in proc.stderr


def test_identities_are_created_listed_and_shown(icn, node_dir: Path):
    d = ["--data-dir", str(node_dir)]
    created = json.loads(icn("id", "init", "alice", "--json", *d).stdout)
    assert created["did"].startswith("did:icn:z6Mk")
    listed = json.loads(icn("id", "list", "--json", *d).stdout)
    assert [k["name"] for k in listed] == ["alice", "node"]
    shown = json.loads(icn("id", "show", "alice", "--json", *d).stdout)
    assert shown["did"] == created["did"]
    key_file = node_dir / "keys" / "alice.json"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    icn("id", "init", "alice", *d, check=1)


def test_a_wrong_passphrase_is_a_clear_error_and_changes_nothing(
    icn, node_dir: Path, tmp_path: Path
):
    d = ["--data-dir", str(node_dir)]
    icn("log", "import", str(write_jsonl(tmp_path / "log.jsonl", two_coop_log())), *d)
    before = icn("log", "export", "--coop", "food-coop", *d).stdout
    assert before.count(b"\n") == 29
    key_bytes = (node_dir / "keys" / "node.json").read_bytes()
    proc = icn(
        "log",
        "checkpoint",
        "--coop",
        "food-coop",
        *d,
        env={"ICN_PASSPHRASE": "not-the-passphrase"},
        check=1,
    )
    assert b"wrong passphrase" in proc.stderr
    assert icn("log", "export", "--coop", "food-coop", *d).stdout == before
    assert (node_dir / "keys" / "node.json").read_bytes() == key_bytes


def test_no_passphrase_without_a_terminal_is_a_clear_error(icn, tmp_path: Path):
    proc = icn(
        "node", "init", "--data-dir", str(tmp_path / "n"), env={"ICN_PASSPHRASE": ""}, check=1
    )
    assert b"ICN_PASSPHRASE" in proc.stderr


def test_garbage_input_lines_are_refused_without_a_traceback(icn, node_dir: Path, tmp_path: Path):
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"v":1}\n\xff\xfe\n[]\n' + b"x" * 300_000 + b"\n")
    proc = icn("log", "import", str(bad), "--data-dir", str(node_dir), "--json", check=1)
    report = json.loads(proc.stdout)
    assert report["stored"] == 0
    assert [p["verdict"] for p in report["problems"]] == ["malformed"] * 4
