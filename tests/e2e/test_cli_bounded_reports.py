"""A report of a whole log lists a bounded number of problems and counts the rest.

An import of a million bad lines must not answer with a million problems held
in memory (and printed): it lists the first 1,000 by line and counts them all.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess

LINES = 1_100


def test_an_import_lists_the_first_thousand_problems_and_counts_all(
    icn: Callable[..., CompletedProcess[bytes]], tmp_path: Path, node_dir: Path
) -> None:
    path = tmp_path / "other.jsonl"
    path.write_bytes(b'{"coop": "other-coop"}\n' * LINES)
    proc = icn("log", "import", str(path), "--coop", "demo", "--data-dir", str(node_dir),
               "--json", check=1)  # fmt: skip
    report = json.loads(proc.stdout)
    assert (report["lines"], report["stored"], report["problem_count"]) == (LINES, 0, LINES)
    assert report["summary"] == {"refused": LINES}
    assert [p["line"] for p in report["problems"]] == list(range(1, 1001))
    assert {p["code"] for p in report["problems"]} == {"wrong-coop"}
