"""The executor's reveals wait on disk, private, until posted."""

from __future__ import annotations

import stat
from pathlib import Path

from icn.interfaces.cli.compute_executor import RevealBook


def test_a_reveal_is_kept_privately_until_dropped(tmp_path: Path) -> None:
    book = RevealBook(tmp_path / "reveals" / "food")
    body = {"task": "ab" * 32, "outcome": "ok", "output": "", "fuel": 7, "salt": "cd" * 32}
    assert book.get("ab" * 32) is None
    book.keep("ab" * 32, body)
    assert RevealBook(tmp_path / "reveals" / "food").get("ab" * 32) == body  # a new process
    path = tmp_path / "reveals" / "food" / f"{'ab' * 32}.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    book.drop("ab" * 32)
    assert book.get("ab" * 32) is None
    book.drop("ab" * 32)
