"""What ``icn contract`` checks before it signs anything: the deploy document, as the node
would judge the deploy, and ``--arg`` pairs typed as the rule's parameters are."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer

from icn.interfaces.cli.contract import _deploy_document, parse_args
from icn.interfaces.cli.writes import Refused
from tests.conftest import REPO_ROOT

TIMEBANK = REPO_ROOT / "examples" / "contracts" / "timebank.json"


def test_every_example_is_a_deploy_document_the_node_accepts() -> None:
    for path in sorted((REPO_ROOT / "examples" / "contracts").glob("*.json")):
        assert _deploy_document(path)["version"] == 1


def test_a_capability_not_granted_is_refused_before_the_vote(tmp_path: Path) -> None:
    doc = json.loads(TIMEBANK.read_text())
    doc["capabilities"] = ["read-ledger"]
    (tmp_path / "greedy.json").write_text(json.dumps(doc))
    with pytest.raises(Refused) as caught:
        _deploy_document(tmp_path / "greedy.json")
    assert caught.value.code == "capability-denied"
    (tmp_path / "extra.json").write_text(json.dumps({**doc, "owner": "me"}))
    with pytest.raises(typer.BadParameter):
        _deploy_document(tmp_path / "extra.json")


def test_args_are_typed_from_their_text() -> None:
    did = "did:key:z6MkAlice"
    assert parse_args([f"who={did}", "hours=3", "neg=-4", "ok=true", "cur=hours"]) == {
        "who": did, "hours": 3, "neg": -4, "ok": True, "cur": "hours"
    }  # fmt: skip
    for bad in (["hours"], ["=3"], ["a=1", "a=2"]):
        with pytest.raises(typer.BadParameter):
            parse_args(bad)


def test_the_demo_deploys_exactly_the_example_documents() -> None:
    from icn.interfaces.cli.demo_contracts import EXAMPLES

    for doc in EXAMPLES:
        path = REPO_ROOT / "examples" / "contracts" / f"{doc['name']}.json"
        assert json.loads(path.read_text()) == doc
