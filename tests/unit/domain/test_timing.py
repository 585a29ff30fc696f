"""Trusted time: the skew rule and the time a stream message carries."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from icn.domain.events.timing import clock_skew_reason, stream_time

SKEW = 300_000
Millis = st.integers(0, 2**53 - 1)


@given(ts=Millis, trusted=Millis)
def test_a_ts_is_refused_exactly_when_it_lies_beyond_trusted_time_plus_skew(
    ts: int, trusted: int
) -> None:
    refused = clock_skew_reason(ts, trusted, SKEW) is not None
    assert refused == (ts > trusted + SKEW)


def test_the_reason_says_how_far_ahead_in_words() -> None:
    day = 86_400_000
    assert "31 days ahead" in (clock_skew_reason(31 * day, 0, SKEW) or "")
    assert "6 min ahead" in (clock_skew_reason(SKEW + 60_000, 0, SKEW) or "")


@given(stream=Millis, offset=st.integers(-(10**9), 10**9))
def test_a_stamp_is_used_unless_missing_or_too_far_ahead_of_the_stream(
    stream: int, offset: int
) -> None:
    stamped = max(0, stream + offset)
    got = stream_time(stamped, stream, SKEW)
    assert got == (stamped if stamped - stream <= SKEW else stream)
    assert stream_time(None, stream, SKEW) == stream
