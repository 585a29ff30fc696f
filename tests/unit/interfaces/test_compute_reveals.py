"""The executor's reveals wait on disk, private, until posted; its posts go out in batches."""

from __future__ import annotations

import stat
from pathlib import Path

import msgspec

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


def test_a_pass_posts_in_batches_under_the_smallest_body_cap() -> None:
    from icn.interfaces.cli.compute_executor import BATCH_BYTES, BATCH_EVENTS, _batches

    small = [(f"{i:064x}", {"task": f"{i:064x}", "commitment": "ab" * 32}) for i in range(120)]
    cut = _batches(small)
    assert [item for batch in cut for item in batch] == small  # in order, none lost
    assert all(len(b) <= BATCH_EVENTS for b in cut)
    assert all(sum(len(msgspec.json.encode(x)) + 400 for _, x in b) <= BATCH_BYTES for b in cut)
    big = ("cd" * 32, {"task": "cd" * 32, "output": "x" * (2 * BATCH_BYTES)})
    assert _batches([small[0], big, small[1]]) == [[small[0]], [big], [small[1]]]
    assert _batches([]) == []
