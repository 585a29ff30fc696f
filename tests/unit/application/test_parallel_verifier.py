"""Every verifier gives the same inspections, in input order, as ``inspect`` line by line.

Real signed events and real faults (a bad signature, a bad id, not JSON), on real
threads and processes: order and verdicts must not depend on how lines were split.
"""

from __future__ import annotations

from collections.abc import Iterator

import msgspec
import pytest
from nacl.signing import SigningKey

from icn.application.parallel import (
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
