"""What docs/cli.md promises about usage: its reference is the command tree's, and an
unknown key name is wrong usage (exit 2) wherever a key is named."""

from __future__ import annotations

from pathlib import Path

from icn.interfaces.cli import reference

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def test_the_command_reference_in_docs_is_generated_and_current() -> None:
    assert reference.main(["--check", str(DOC)]) == 0, (
        "docs/cli.md is stale: run python -m icn.interfaces.cli.reference docs/cli.md"
    )
    text = DOC.read_text()
    for command in ("icn balance", "icn history", "icn replay", "icn node stop"):
        assert f"### `{command}`" in text


def test_an_unknown_key_name_is_usage_everywhere(icn, node_dir: Path) -> None:
    data = ["--data-dir", str(node_dir)]
    for args in (
        ["id", "show", "nobody"],
        ["login", "--coop", "food", "--key", "nobody", "--url", "http://127.0.0.1:9"],
        ["member", "apply", "--coop", "food", "--key", "nobody"],
        ["balance", "--coop", "food", "--did", "nobody"],
    ):
        proc = icn(*args, *data, check=2)
        assert b"nobody" in proc.stderr, args
