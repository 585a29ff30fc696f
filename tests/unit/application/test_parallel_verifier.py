"""Every verifier gives the same inspections, in input order, as ``inspect`` line by line.

Real signed events and real faults (a bad signature, a bad id, not JSON), on real
threads and processes: order and verdicts must not depend on how lines were split.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import msgspec
import pytest
from nacl.signing import SigningKey

from icn.application.parallel import (
    WORKER_NICE,
    InlineVerifier,
    ProcessVerifier,
    ThreadVerifier,
    Verifier,
    make_verifier,
    shared_verifier,
    split,
    stream_verifier,
)
from icn.domain.events.envelope import Event, Inspection, inspect, sign_event
from icn.domain.events.verdicts import Verdict
from icn.domain.identity.did import did_from_public_key


def _lines(n: int) -> list[bytes]:
    key = SigningKey.generate()
    events: list[Event] = []
    prev: str | None = None
    for seq in range(1, n + 1):
        body = {"note": f"n{seq}"}
        ev = sign_event(key, coop="c", seq=seq, prev=prev, ts=seq, type="test.Noted", body=body)
        prev = ev.id
        events.append(ev)
    events[3] = msgspec.structs.replace(events[3], sig=events[4].sig)  # bad signature
    events[7] = msgspec.structs.replace(events[7], ts=0)  # content changed: bad id
    out = [e.wire_bytes() for e in events]
    out[11] = b"not json"
    return out


def _seen(inspections: list[Inspection]) -> list[tuple[object, str | None]]:
    return [(i.verdict, i.event.id if i.event else None) for i in inspections]


@pytest.fixture(params=["inline", "threads", "processes", "processes-only"])
def verifier(request: pytest.FixtureRequest) -> Iterator[Verifier]:
    v: Verifier = {"inline": InlineVerifier, "threads": lambda: ThreadVerifier(3),
                   "processes": lambda: ProcessVerifier(2),
                   "processes-only": lambda: ProcessVerifier(2, caller_verifies=False),
                   }[request.param]()  # fmt: skip
    yield v
    v.close()


def test_a_batch_keeps_input_order_and_verdicts(verifier: Verifier) -> None:
    lines = _lines(40)
    expected = _seen([inspect(x) for x in lines])
    assert len({v for v, _ in expected}) == 4  # ok, bad-signature, bad-id, malformed
    assert _seen(verifier.inspect(lines)) == expected
    assert _seen(verifier.inspect(lines[:3])) == expected[:3]  # under the split threshold
    assert verifier.inspect([]) == []


def test_a_stream_yields_chunks_in_order(verifier: Verifier) -> None:
    lines = _lines(57)
    expected = _seen([inspect(x) for x in lines])
    got = list(verifier.stream(iter(lines), chunk=5))
    assert [c for c, _ in got] == [lines[i : i + 5] for i in range(0, 57, 5)]
    assert _seen([i for _, part in got for i in part]) == expected


def _typed_lines() -> list[bytes]:
    """Events whose bodies the registry types (a ledger entry, one that does not fit its
    Struct), an unknown type, and every stateless refusal, including a malformed body."""
    key, other = SigningKey.generate(), SigningKey.generate()
    me = did_from_public_key(bytes(key.verify_key))
    you = did_from_public_key(bytes(other.verify_key))
    tx = {"from": me, "to": you, "amount": 250, "currency": "hours", "memo": "ünïcode"}
    bodies: list[tuple[str, dict[str, object]]] = [
        ("ledger.EntryRecorded", {"transactions": [tx]}),
        ("test.Noted", {"nested": {"list": [1, None, True, "x"], "big": 2**53 - 1}}),
        ("ledger.EntryRecorded", {"transactions": [{**tx, "amount": 1.5}]}),
        ("ledger.EntryRecorded", {"transactions": []}),
    ]
    events: list[Event] = []
    prev: str | None = None
    for seq in range(1, 25):
        kind, body = bodies[seq % len(bodies)]
        ev = sign_event(key, coop="c", seq=seq, prev=prev, ts=seq, type=kind, body=body)
        prev = ev.id
        events.append(ev)
    events[3] = msgspec.structs.replace(events[3], sig=events[4].sig)
    events[8] = msgspec.structs.replace(events[8], ts=0)
    out = [e.wire_bytes() for e in events]
    out[0] = b" " + out[0].replace(b":", b": ", 1)  # not canonical, still valid: stored canonical
    out[13] = b"[]"
    return out


def test_every_inspection_equals_inspect_whole(verifier: Verifier) -> None:
    """Not only verdicts: the event, the canonical bytes, the typed body, reason and code a
    caller judges and stores are exactly ``inspect``'s, however a worker handed them back."""
    lines = _typed_lines()
    expected = [inspect(x) for x in lines]
    assert {i.verdict for i in expected} >= {None, Verdict.MALFORMED, Verdict.BAD_ID,
                                             Verdict.BAD_SIGNATURE}  # fmt: skip
    assert any(i.body is not None for i in expected)
    assert verifier.inspect(lines) == expected
    assert [i for _, part in verifier.stream(iter(lines), chunk=7) for i in part] == expected


def _lengths(lines: list[bytes]) -> list[int]:
    return [len(x) for x in lines]


def test_map_gives_each_chunk_its_function_in_order(verifier: Verifier) -> None:
    """What a caller gets that wants less than an inspection per line (the audit's facts)."""
    lines = _lines(23)
    got = list(verifier.map(_lengths, iter(lines), chunk=4))
    assert [c for c, _ in got] == [lines[i : i + 4] for i in range(0, 23, 4)]
    assert [n for _, part in got for n in part] == [len(x) for x in lines]


def test_started_work_comes_back_or_is_given_back_to_the_caller(verifier: Verifier) -> None:
    """What the recount does: hand out parts as it reads, collect them at the end, and run
    itself every part no worker has taken (all of them, on the inline verifier)."""
    lines = _lines(12)
    parts = [lines[i : i + 3] for i in range(0, 12, 3)]
    futures = [verifier.start(_lengths, part) for part in parts]
    pairs = zip(parts, futures, strict=True)
    got = [_lengths(part) if f.cancel() else f.result() for part, f in pairs]
    assert got == [[len(x) for x in part] for part in parts]
    if isinstance(verifier, InlineVerifier):
        assert all(f.cancelled() for f in futures)


def test_split_covers_every_line_once() -> None:
    items = list(range(10))
    assert [list(p) for p in split(items, 3)] == [[0, 1, 2], [3, 4, 5], [6, 7, 8, 9]]
    assert [list(p) for p in split(items[:2], 4)] == [[0], [1]]


def test_constructors() -> None:
    assert isinstance(make_verifier(1), InlineVerifier)
    assert isinstance(make_verifier(2), ThreadVerifier)
    assert isinstance(stream_verifier(2, 10), ThreadVerifier)
    assert isinstance(stream_verifier(2, 10_000), ProcessVerifier)
    assert shared_verifier() is shared_verifier()


def test_a_process_stream_reads_a_bounded_number_of_chunks_ahead() -> None:
    """The caller steals chunks while the pool is busy, but never holds more than the
    pool's depth of its own: a long file streams in bounded memory."""
    lines = _lines(300)
    read = 0

    def source() -> Iterator[bytes]:
        nonlocal read
        for line in lines:
            read += 1
            yield line

    verifier = ProcessVerifier(2)
    try:
        handed = 0
        ahead = []
        for part, inspections in verifier.stream(source(), chunk=3):
            handed += len(part)
            ahead.append(read - handed)
            assert len(inspections) == len(part)
    finally:
        verifier.close()
    assert handed == 300
    assert max(ahead) <= (2 * 2 + 2 * 2) * 3


def _niceness(_: list[int]) -> int:
    return os.nice(0)


def test_an_import_s_workers_yield_the_cores_to_its_caller() -> None:
    """The caller of an import judges and appends every event (the serial part): its worker
    processes run at a lower priority; an audit's run at the caller's."""
    mine = os.nice(0)
    importing = stream_verifier(2, 10_000, caller_appends=True)
    auditing = stream_verifier(2, 10_000)
    try:
        assert isinstance(importing, ProcessVerifier)
        assert importing.start(_niceness, []).result() == min(mine + WORKER_NICE, 19)
        assert auditing.start(_niceness, []).result() == mine
    finally:
        importing.close()
        auditing.close()
