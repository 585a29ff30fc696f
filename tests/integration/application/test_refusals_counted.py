"""``icn_events_refused_total`` counts refusals on every write path, not only HTTP posts:
events a node's replication intake refuses for good, and writes signed and appended in
the node's own process (coop duties, a local ``icn`` write) that its rules refuse.

On a real SQLite store, with the node's real instruments read through their Prometheus
rendering (what ``GET /metrics`` answers); HTTP posts' refusals are counted in
tests/e2e/test_telemetry_metrics.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.coops import CoopScript, did_for, key_for
from support.poison import NOT_JSON
from support.stores import StoreNode

from icn.application.authoring import EventAuthor
from icn.application.errors import BatchRefused
from icn.application.intake import Intake
from icn.domain.events.bodies import ENTRY_RECORDED
from icn.infrastructure.telemetry import Measures, NodeMetrics

COOP = "refusing-coop"
REFUSED = re.compile(r'^icn_events_refused_total\{code="([^"]+)",coop="([^"]+)"\} (\S+)$', re.M)


@pytest.fixture
def metrics() -> Iterator[NodeMetrics]:
    m = NodeMetrics()
    yield m
    m.shutdown()


@pytest.fixture
def node(tmp_path: Path, metrics: NodeMetrics) -> Iterator[StoreNode]:
    n = StoreNode(tmp_path / "node", COOP)
    n.append.telemetry = Measures(metrics)
    yield n
    n.close()


def refused(metrics: NodeMetrics) -> dict[tuple[str, str], float]:
    """``{(coop, code): count}`` of ``icn_events_refused_total`` in a scrape."""
    text = metrics.render().decode()
    return {(coop, code): float(n) for code, coop, n in REFUSED.findall(text)}


def test_refusals_of_replication_intake_are_counted(node: StoreNode, metrics: NodeMetrics) -> None:
    s = CoopScript(COOP)
    founded = s.found({"alice": ["admin"], "bob": []})
    pay = s.pay("alice", "bob", 5)
    other = CoopScript("other-coop").found({"carol": ["admin"]})
    batch = [founded.wire_bytes(), NOT_JSON, b"[1, 2, 3]", other.wire_bytes(), pay.wire_bytes()]
    counts = node.intake.receive(COOP, batch, stream_seq=lambda i: i + 1)
    assert counts.rejected_codes == {"malformed": 2, "wrong-coop": 1}
    assert refused(metrics) == {(COOP, "malformed"): 2, (COOP, "wrong-coop"): 1}
    # Events it took, and its own events read back, are no refusals.
    node.intake.receive(COOP, [pay.wire_bytes()], stream_seq=lambda i: 6)
    assert refused(metrics) == {(COOP, "malformed"): 2, (COOP, "wrong-coop"): 1}


def test_a_redelivered_batch_counts_each_stream_sequence_once(
    node: StoreNode, metrics: NodeMetrics
) -> None:
    """JetStream hands a batch back when its ack is lost (or the node died before acking):
    judged again, its refusals are recorded once and counted once, also by a restarted
    node; a later batch that overlaps it counts only what is new."""
    s = CoopScript(COOP)
    founded = s.found({"alice": ["admin"], "bob": []})
    batch = [founded.wire_bytes(), NOT_JSON, b"[1, 2, 3]"]
    for _ in range(2):
        node.intake.receive(COOP, batch, stream_seq=lambda i: i + 1)
    assert refused(metrics) == {(COOP, "malformed"): 2}
    restarted = Intake(node.append, node.state, lambda: 1_900_000_000_000)
    restarted.receive(COOP, batch, stream_seq=lambda i: i + 1)
    assert refused(metrics) == {(COOP, "malformed"): 2}
    other = CoopScript("other-coop").found({"carol": ["admin"]})
    overlapping = [b"[1, 2, 3]", other.wire_bytes(), NOT_JSON]  # stream sequences 3, 4, 5
    restarted.receive(COOP, overlapping, stream_seq=lambda i: i + 3)
    assert refused(metrics) == {(COOP, "malformed"): 3, (COOP, "wrong-coop"): 1}
    # Without stream sequences (nothing to tell a redelivery by) every refusal counts.
    node.intake.receive(COOP, [NOT_JSON])
    assert refused(metrics) == {(COOP, "malformed"): 4, (COOP, "wrong-coop"): 1}


def test_refused_local_writes_are_counted_once_each(node: StoreNode, metrics: NodeMetrics) -> None:
    s = CoopScript(COOP)
    assert node.append.append([s.found({"alice": ["admin"], "bob": []}).wire_bytes()])[0].stored
    ticks = iter(range(1_900_000_000_000, 1_900_000_001_000))
    author = EventAuthor(node.store, node.append, lambda: next(ticks))
    tx = {"from": did_for("mallory"), "to": did_for("bob"), "amount": 1, "currency": "hours",
          "memo": None}  # fmt: skip
    for _ in range(2):  # mallory is no member: her payment is refused by the coop's rules
        with pytest.raises(BatchRefused) as refusal:
            author.submit(key_for("mallory"), COOP, [(ENTRY_RECORDED, {"transactions": [tx]})])
    code = refusal.value.code
    assert code != "batch-refused"
    assert refused(metrics) == {(COOP, code): 2}
