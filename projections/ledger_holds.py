"""The ledger's holds read model: what each task holds on its submitter's account.

Fed by the events the write path places and releases holds on: a
``compute.TaskSubmitted`` holds its ``max_fee`` (the rules refused every
submission that did not fit, so each one in the log holds), a
``compute.TaskSettled`` or ``compute.TaskExpired`` releases the whole hold. A
release names only its task, and a projection is pure (it reads no rows), so
both tables only grow, one row per event: an account's open holds are its
hold rows without a release row. ``icn replay`` rebuilds and compares them.
"""

from __future__ import annotations

from icn.domain.compute import task_bodies as tb
from icn.projections.ports import AppendTable, Changes, Fact, Projection

HOLDS = AppendTable(
    "ledger_holds",
    key=("coop", "task"),
    values=("did", "currency", "amount", "leaf", "ts"),
)
RELEASES = AppendTable(
    "ledger_releases",
    key=("coop", "task"),
    values=("reason", "leaf", "ts"),
)
RELEASED_BY = {tb.TASK_SETTLED: "settled", tb.TASK_EXPIRED: "expired"}
"""The events that release a task's hold, and the reason each one is shown with."""


class Holds:
    """One hold row per submitted task, one release row when it settles or expires."""

    name = "ledger.holds"
    tables = (HOLDS, RELEASES)

    def apply(self, leaf: int, event: Fact, changes: Changes) -> None:
        body = event.body
        if event.type == tb.TASK_SUBMITTED:
            changes.insert(
                HOLDS,
                (event.coop, event.id, event.author, body["currency"], body["max_fee"], leaf,
                 event.ts),
            )  # fmt: skip
        elif event.type in RELEASED_BY:
            changes.insert(
                RELEASES, (event.coop, body["task"], RELEASED_BY[event.type], leaf, event.ts)
            )


HOLDS_PROJECTIONS: tuple[Projection, ...] = (Holds(),)
