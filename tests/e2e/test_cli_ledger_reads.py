"""``icn balance`` and ``icn history`` on the local store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.coops import CoopScript, write_jsonl
from support.ledger_story import balances_of, history_of, ledger_story

from icn.infrastructure.keystore import Keystore


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


def test_key_names_work_wherever_a_did_is_taken(
    icn, story_node, node_dir: Path, icn_process_env: dict
) -> None:
    s, _, args = story_node
    keys = Keystore(node_dir / "keys")
    for name in ("alice", "bob"):
        keys.create(name, icn_process_env["ICN_PASSPHRASE"], seed=bytes(s.key(name)))
    by_name = json.loads(icn("balance", *args, "--did", "alice", "--json").stdout)
    by_did = json.loads(icn("balance", *args, "--did", s.did("alice"), "--json").stdout)
    del by_name["now_ms"], by_did["now_ms"]  # the clock moved between the two commands
    assert by_name == by_did
    with_bob = json.loads(
        icn("history", *args, "--did", "alice", "--counterparty", "bob", "--json").stdout
    )
    assert with_bob["did"] == s.did("alice")
    assert {i["counterparty"] for i in with_bob["items"]} == {s.did("bob")}
    proc = icn("balance", *args, "--did", "nobody", check=2)
    assert b"neither a DID nor the name of a key" in proc.stderr


def test_history_shows_positions_as_leaf_indexes(icn, story_node) -> None:
    s, _, args = story_node
    page = json.loads(icn("history", *args, "--did", s.did("alice"), "--json").stdout)
    text = icn("history", *args, "--did", s.did("alice")).stdout.decode()
    firsts = [line.split()[0] for line in text.splitlines()[1:] if line.strip()]
    assert firsts[: len(page["items"])] == [
        str(i["position"]) if i["tx"] == 0 else f"{i['position']}#{i['tx']}" for i in page["items"]
    ]
    assert any("#" in f for f in firsts)  # alice's two-transaction entry
    assert all(f.split("#")[0].isdigit() for f in firsts[: len(page["items"])])
