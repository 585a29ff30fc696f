"""Any single-byte change to a valid wire event changes its verdict away from ``ok``."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey

from icn.application.memory_view import MemoryChains
from icn.domain.events.chain import judge
from icn.domain.events.envelope import inspect, sign_event
from icn.domain.events.verdicts import Verdict
from icn.domain.identity.did import did_from_public_key

_KEY = SigningKey(bytes(range(32)))
_OTHER = did_from_public_key(bytes(SigningKey(bytes(range(1, 33))).verify_key))

memos = st.one_of(st.none(), st.text(st.characters(exclude_categories=("Cs",)), max_size=40))
amounts = st.integers(min_value=1, max_value=2**53 - 1)


def _wire(amount: int, memo: str | None, ts: int) -> bytes:
    author = did_from_public_key(bytes(_KEY.verify_key))
    tx = {"from": author, "to": _OTHER, "amount": amount, "currency": "hours", "memo": memo}
    event = sign_event(
        _KEY,
        coop="food-coop",
        seq=1,
        prev=None,
        ts=ts,
        type="ledger.EntryRecorded",
        body={"transactions": [tx]},
    )
    return event.wire_bytes()


def _verdict(wire: bytes) -> Verdict:
    return judge(inspect(wire), MemoryChains()).verdict


@settings(max_examples=300, deadline=None)
@given(
    amount=amounts,
    memo=memos,
    ts=st.integers(min_value=0, max_value=2**53 - 1),
    position=st.integers(min_value=0),
    replacement=st.integers(min_value=0, max_value=255),
)
def test_any_single_byte_change_is_detected(
    amount: int, memo: str | None, ts: int, position: int, replacement: int
) -> None:
    wire = _wire(amount, memo, ts)
    assert _verdict(wire) is Verdict.OK
    i = position % len(wire)
    if wire[i] == replacement:
        replacement = (replacement + 1) % 256
    tampered = wire[:i] + bytes([replacement]) + wire[i + 1 :]
    assert _verdict(tampered) is not Verdict.OK
