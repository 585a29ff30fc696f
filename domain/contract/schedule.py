"""When a contract's schedule is due, in trusted time (UTC calendar, midnight starts).

Pure functions of the schedule and two instants, so every node keeping the
coop's key computes the same periods and signs the same invocations.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from icn.domain.contract.language import Schedule

MAX_CATCH_UP = 12
"""Periods one duty round triggers for one schedule (a node that was down catches up)."""


def _ms(moment: datetime) -> int:
    return int(moment.timestamp()) * 1000


def next_period(schedule: Schedule, after_ms: int) -> int:
    """The first period start strictly after ``after_ms``."""
    moment = datetime.fromtimestamp(after_ms // 1000, UTC)
    if schedule.every == "day":
        start = datetime(moment.year, moment.month, moment.day, tzinfo=UTC)
        while _ms(start) <= after_ms:
            start += timedelta(days=1)
        return _ms(start)
    year, month = moment.year, moment.month
    while True:
        start = datetime(year, month, schedule.day, tzinfo=UTC)
        if _ms(start) > after_ms:
            return _ms(start)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


def periods_due(schedule: Schedule, done_ms: int, now_ms: int) -> list[int]:
    """Period starts after ``done_ms`` (the last run, or the deploy) up to ``now_ms``."""
    due: list[int] = []
    at = done_ms
    while len(due) < MAX_CATCH_UP:
        at = next_period(schedule, at)
        if at > now_ms:
            break
        due.append(at)
    return due
