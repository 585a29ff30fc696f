"""Hostile lines in files, through the real ``icn``: a verdict for each, never a traceback.

A validly signed event nested 10,000 levels deep, and a valid event with a repeated
member name (two parsers could read two different events from it), sit between good
lines. ``icn audit verify`` names them ``malformed``; ``icn log import`` stores the good
lines only, with and without ``--coop`` (which reads each line's coop first).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.coops import CoopScript, key_for
from support.poison import deep_signed_event

COOP = "hostile-coop"


def _lines() -> tuple[list[bytes], list[str]]:
    s = CoopScript(COOP)
    founded = s.found({"alice": ["admin"], "bob": []})
    paid = s.pay("alice", "bob", 100)
    wire = paid.wire_bytes()
    # The amount twice: a parser that keeps the first reads 9,999.99 hours, one that keeps
    # the last (and the signature) reads 1.00.
    repeated = wire.replace(b'"amount":100,', b'"amount":999999,"amount":100,', 1)
    assert repeated != wire
    deep = deep_signed_event(key_for("mallory"), COOP)
    later = s.pay("bob", "alice", 50)
    lines = [founded.wire_bytes(), deep, repeated, wire, later.wire_bytes()]
    return lines, ["ok", "malformed", "malformed", "ok", "ok"]


@pytest.fixture
def hostile_file(tmp_path: Path) -> Path:
    path = tmp_path / "hostile.jsonl"
    path.write_bytes(b"\n".join(_lines()[0]) + b"\n")
    return path


def test_audit_verify_names_deep_and_repeated_lines_malformed(icn, hostile_file: Path) -> None:
    proc = icn("audit", "verify", str(hostile_file), "--json", check=1)
    assert b"Traceback" not in proc.stderr + proc.stdout
    report = json.loads(proc.stdout)
    assert report["verdicts"] == _lines()[1]
    text = icn("audit", "verify", str(hostile_file), check=1)
    assert b"Traceback" not in text.stderr + text.stdout
    assert b"nesting deeper than 64" in text.stdout + text.stderr
    assert b"repeats the member name 'amount'" in text.stdout + text.stderr


@pytest.mark.parametrize("only_coop", [False, True])
def test_log_import_stores_the_good_lines_only(
    icn, node_dir: Path, hostile_file: Path, only_coop: bool
) -> None:
    extra = ["--coop", COOP] if only_coop else []
    d = ["--data-dir", str(node_dir)]
    proc = icn("log", "import", str(hostile_file), "--json", *extra, *d, check=1)
    assert b"Traceback" not in proc.stderr + proc.stdout
    report = json.loads(proc.stdout)
    assert report["summary"] == {"ok": 3, "malformed": 2}, report
    assert [p["line"] for p in report["problems"]] == [2, 3]
    exported = icn("log", "export", "--coop", COOP, *d).stdout.splitlines()
    lines, verdicts = _lines()
    assert exported == [line for line, v in zip(lines, verdicts, strict=True) if v == "ok"]
