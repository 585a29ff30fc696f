"""What intake refuses for good is recorded, with its stream sequence, and never raises.

On a real SQLite store (milliseconds per test): the rows are the real
``rejected_messages`` rows ``icn node status`` counts.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.coops import CoopScript, key_for, story_clock
from support.poison import NOT_JSON, deep_signed_event
from support.stores import StoreNode

from icn.application.intake import REJECTED_WIRE_MAX, Intake

COOP = "intake-coop"


@pytest.fixture
def node(tmp_path: Path) -> Iterator[StoreNode]:
    n = StoreNode(tmp_path / "node", COOP)
    yield n
    n.close()


def test_poison_messages_are_malformed_recorded_with_their_stream_sequence(
    node: StoreNode,
) -> None:
    """A validly signed event nesting 10,000 levels, bytes that are not JSON, JSON that is
    not an event, an event of another coop: each a verdict (no exception), each recorded at
    its stream position, and the good events around them are appended."""
    s = CoopScript(COOP)
    founded = s.found({"alice": ["admin"], "bob": []})
    pay = s.pay("alice", "bob", 5)
    other = CoopScript("other-coop").found({"carol": ["admin"]})
    deep = deep_signed_event(key_for("mallory"), COOP)
    batch = [founded.wire_bytes(), deep, NOT_JSON, b"[1, 2, 3]", other.wire_bytes(),
             pay.wire_bytes()]  # fmt: skip
    seqs = [10, 11, 12, 13, 14, 15]
    counts = node.intake.receive(COOP, batch, stream_seq=lambda i: seqs[i])
    assert (counts.accepted, counts.rejected) == (2, 4)
    assert counts.rejected_codes == {"malformed": 3, "wrong-coop": 1}
    assert node.ids() == [founded.id, pay.id]
    rows = node.state.rejected(COOP)
    assert [(r.stream_seq, r.code) for r in rows] == [
        (11, "malformed"), (12, "malformed"), (13, "malformed"), (14, "wrong-coop"),
    ]  # fmt: skip
    assert "nesting deeper than 64" in rows[0].reason
    assert rows[0].size == len(deep) and rows[0].wire == deep[:REJECTED_WIRE_MAX]
    assert rows[1].wire == NOT_JSON
    # Redelivered (a crash between commit and ack): known ids skipped, refusals not doubled.
    node.intake.receive(COOP, batch, stream_seq=lambda i: seqs[i])
    assert node.state.rejected_count(COOP) == 4


def test_rejections_are_bounded_per_coop_oldest_first(tmp_path: Path) -> None:
    """Anyone who may publish can send garbage for ever: the table keeps the newest."""
    n = StoreNode(tmp_path / "n", COOP)
    try:
        intake = Intake(n.append, n.state, lambda: 1, max_rejected=3)
        for seq in range(1, 6):
            intake.receive(COOP, [b"junk %d" % seq], stream_seq=lambda _i, s=seq: s)
        assert [r.stream_seq for r in n.state.rejected(COOP)] == [3, 4, 5]
        assert n.state.rejected_count(COOP) == 3
    finally:
        n.close()


class _FailingLot:
    """The parking lot port, failing for one claimed id: a judge that raises mid-batch."""

    def __init__(self, lot: object, poison_id: str) -> None:
        self._lot, self._poison = lot, poison_id

    def __getattr__(self, name: str) -> object:
        return getattr(self._lot, name)

    def known_ids(self, coop: str, ids: list[str]) -> set[str]:
        if self._poison in ids:
            raise RuntimeError("the judge failed on this one")
        return self._lot.known_ids(coop, ids)  # type: ignore[attr-defined,no-any-return]


def test_a_failure_inside_intake_raises_so_the_consumer_can_dead_letter_it(
    node: StoreNode,
) -> None:
    """Intake does not swallow a failure it cannot judge (that would lose the event
    silently): it raises, commits nothing of the batch, and the consumer retries the
    message alone and sets it aside after N deliveries (tests/integration/replication/
    test_dead_letters.py); the messages around it are taken one by one."""
    s = CoopScript(COOP)
    founded = s.found({"alice": ["admin"], "bob": []})
    pay = s.pay("alice", "bob", 5)
    lot = _FailingLot(node.state, pay.id)
    intake = Intake(node.append, lot, story_clock)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError):
        intake.receive(COOP, [founded.wire_bytes(), pay.wire_bytes()])
    assert node.ids() == []
    assert intake.receive(COOP, [founded.wire_bytes()]).accepted == 1
    assert node.ids() == [founded.id]
