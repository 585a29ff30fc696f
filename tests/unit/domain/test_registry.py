"""Capabilities meet only in the registry, and a known body is decoded once, by inspect()."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from support.coops import CoopScript

from icn.domain import registry
from icn.domain.events.envelope import inspect, stored_inspection
from icn.domain.ledger.bodies import EntryRecorded
from icn.domain.log.bodies import CheckpointIssued

DOMAIN = Path(__file__).resolve().parents[3] / "domain"


def _runtime_imports(path: Path) -> set[str]:
    """Modules ``path`` imports when it runs (``if TYPE_CHECKING:`` blocks left out)."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


@pytest.mark.parametrize(
    ("package", "must_not_import"),
    [
        ("coop", ("icn.domain.ledger", "icn.domain.log")),
        ("events", ("icn.domain.coop", "icn.domain.ledger", "icn.domain.log")),
        ("log", ("icn.domain.coop", "icn.domain.ledger")),
    ],
)
def test_a_capability_reaches_another_only_through_the_registry(
    package: str, must_not_import: tuple[str, ...]
) -> None:
    for path in sorted((DOMAIN / package).glob("*.py")):
        for module in _runtime_imports(path):
            assert not module.startswith(must_not_import), f"{path.name} imports {module}"


def test_every_event_type_is_registered_once() -> None:
    names = [t.name for types in registry.CAPABILITIES for t in types]
    assert len(names) == len(set(names)) == len(registry.TYPES)
    assert registry.TYPES["log.CheckpointIssued"].body is CheckpointIssued


def test_inspect_hands_over_the_typed_body_and_the_wire_bytes_stay_canonical() -> None:
    script = CoopScript()
    script.found()
    pay = script.pay("alice", "bob", 250, memo="bike repair")
    ins = inspect(pay.wire_bytes())
    assert ins.verdict is None and isinstance(ins.body, EntryRecorded)
    assert ins.body.transactions[0].amount == 250 and ins.body.transactions[0].memo == "bike repair"
    assert ins.wire == pay.wire_bytes()
    again = stored_inspection(ins.wire)
    assert again.body == ins.body and again.event == ins.event


def test_an_unknown_type_keeps_no_body_and_a_bad_node_body_is_left_to_the_rules() -> None:
    script = CoopScript()
    script.found()
    vote = script.event("alice", "governance.VoteCast", {"proposal": "p1", "choice": "yes"})
    assert inspect(vote.wire_bytes()).body is None
    odd = script.event("alice", "coop.MemberApplied", {"note": 5})
    ins = inspect(odd.wire_bytes())
    assert ins.verdict is None and ins.body is None  # refused later as invalid-body
