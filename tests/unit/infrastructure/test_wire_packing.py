"""The packed form of a stored event (PostgreSQL's ``stored_events.state``) gives back the exact
wire bytes that were signed, is about half their size, and its dictionary never changes."""

from __future__ import annotations

import hashlib

import pytest
from support.coops import CoopScript

from icn.application.ports import StoreError
from icn.domain.events.envelope import inspect
from icn.infrastructure.store.wire_packing import DICTIONARY_V1, PACKED_V1, pack, unpack


def wires() -> list[bytes]:
    s = CoopScript("a-coop-with-a-longer-name")
    events = [s.found({"alice": ["admin"], "bob": [], "chloé": []})]
    events += [s.admit("alice", "dana")]
    memos = [None, "", "rent", "café ☕ über", '"quoted" \\ and \u2028', "x" * 1000]
    events += [s.pay("alice", "bob", 1 + i, memo=m) for i, m in enumerate(memos)]
    return [e.wire_bytes() for e in events]


def test_packing_gives_back_the_signed_bytes_of_every_event() -> None:
    for wire in wires():
        packed = pack(wire)
        assert packed[0] == PACKED_V1
        assert unpack(packed) == wire
        checked = inspect(unpack(packed))  # id and signature hold on the unpacked bytes
        assert checked.verdict is None and checked.event is not None


def test_a_payment_packs_to_about_half_its_wire() -> None:
    payment = wires()[3]
    assert len(pack(payment)) < 0.55 * len(payment), (len(pack(payment)), len(payment))


def test_a_wire_stored_verbatim_reads_as_it_is() -> None:
    for wire in wires():
        assert unpack(wire) is wire


def test_the_dictionary_is_frozen() -> None:
    # Rows packed against it are read with it for as long as the store lives: another
    # dictionary needs another first byte, and this one stays for the rows already packed.
    assert hashlib.sha256(DICTIONARY_V1).hexdigest() == (
        "899e803f0ab1ea5b72db0625bb06dea45ccfccc06a6585067170f3d6a6a49e7a"
    )


@pytest.mark.parametrize(
    "state",
    [b"", b"\x02abc", b"[1]", b"\x01not deflate at all", b"\x01"],
    ids=["empty", "unknown-form", "not-an-object", "not-deflate", "nothing-packed"],
)
def test_a_state_in_no_known_form_is_a_store_error(state: bytes) -> None:
    with pytest.raises(StoreError):
        unpack(state)


def test_a_packed_state_cut_short_or_with_bytes_after_it_is_a_store_error() -> None:
    packed = pack(wires()[3])
    with pytest.raises(StoreError):
        unpack(packed[:-5])
    with pytest.raises(StoreError):
        unpack(packed + b"\x00")
