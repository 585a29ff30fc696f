"""``icn balance`` and ``icn history`` on the local store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.coops import CoopScript, write_jsonl
from support.ledger_story import balances_of, history_of, ledger_story


@pytest.fixture
def story_node(icn, node_dir: Path, tmp_path: Path):
    s, events = ledger_story("food-coop", payments=12)
    icn(
        "log",
        "import",
        str(write_jsonl(tmp_path / "story.jsonl", events)),
        "--data-dir",
        str(node_dir),
    )
    return s, events, ["--data-dir", str(node_dir), "--coop", "food-coop"]


def test_balance_in_units_and_with_decimals(icn, story_node) -> None:
    s, events, args = story_node
    dan = s.did("dan")
    doc = json.loads(icn("balance", *args, "--did", dan, "--json").stdout)
    expected = balances_of(events)
    assert doc["balances"] == {"hours": expected[(dan, "hours")], "food": 0}
    assert doc["display"] == {"hours": "-2.50", "food": "0"}
    text = icn("balance", *args, "--did", dan).stdout.decode()
    assert "-2.50" in text and "food" in text


def test_history_filters_and_pages(icn, story_node) -> None:
    s, events, args = story_node
    alice = s.did("alice")
    full = history_of(events, alice)
    first = json.loads(icn("history", *args, "--did", alice, "--limit", "5", "--json").stdout)
    rest = json.loads(
        icn("history", *args, "--did", alice, "--after", str(first["next"]), "--json").stdout
    )
    assert [i["cursor"] for i in first["items"] + rest["items"]] == [r["cursor"] for r in full]
    assert rest["next"] is None
    food = json.loads(icn("history", *args, "--did", alice, "--currency", "food", "--json").stdout)
    assert [(i["amount"], i["display"]) for i in food["items"]] == [(-7, "-7")]
    bob = s.did("bob")
    with_bob = json.loads(
        icn("history", *args, "--did", alice, "--counterparty", bob, "--json").stdout
    )
    assert {i["counterparty"] for i in with_bob["items"]} == {bob}
    text = icn("history", *args, "--did", alice, "--limit", "3").stdout.decode()
    assert "job 0" in text and "-1.00" in text and "more: --after" in text


def test_bad_input(icn, story_node) -> None:
    _, _, args = story_node
    icn("balance", *args, "--did", "did:icn:nope", check=2)
    proc = icn("balance", *args, "--did", CoopScript().did("stranger"), check=1)
    assert b"not-found" in proc.stderr
    icn("history", *args, "--did", CoopScript().did("alice"), "--limit", "0", check=2)
    proc = icn("balance", "--data-dir", args[1], "--coop", "no-coop", "--did",
               CoopScript().did("alice"), check=1)  # fmt: skip
    assert b"not been founded" in proc.stderr
