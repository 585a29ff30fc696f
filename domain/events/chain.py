"""Chain verdicts (spec section 4) as a pure function of the chains seen so far.

``judge`` takes the result of the stateless checks and a read-only
:class:`ChainView`; it never changes anything. The caller appends the event
(and so moves the view forward) only when the verdict is ``ok``.
"""

from __future__ import annotations

from typing import Protocol

import msgspec

from icn.domain import registry
from icn.domain.events.envelope import Event, Inspection
from icn.domain.events.verdicts import Verdict
from icn.domain.refusals import Code, Refusal


class ChainHead(msgspec.Struct, frozen=True):
    """The last accepted event of one author's chain in one coop."""

    seq: int
    id: str
    ts: int


class ChainView(Protocol):
    """What a verifier needs to know about the events it has already accepted."""

    def head(self, coop: str, author: str) -> ChainHead | None:
        """The author's last accepted event in ``coop``."""
        ...

    def id_at(self, coop: str, author: str, seq: int) -> str | None:
        """The id accepted at ``seq`` of the author's chain in ``coop``."""
        ...

    def coop_did(self, coop: str) -> str | None:
        """The author of the coop's first ``ok`` ``coop.Founded`` event."""
        ...


class Judgement(msgspec.Struct, frozen=True):
    """A verdict and a one-line reason a person can act on."""

    verdict: Verdict
    reason: str = ""
    code: str = ""
    """A finer stable code than the verdict, where one exists (``self-payment`` …)."""


OK = Judgement(Verdict.OK)


class ForkFlags(Protocol):
    """Which authors have a fork on record (evidence in quarantine) in which coop."""

    def is_flagged(self, coop: str, author: str) -> bool:
        """True when ``author`` forked their chain in ``coop``."""
        ...


def author_flagged(event: Event, flags: ForkFlags) -> Refusal | None:
    """Spec section 4: nothing of a forked chain is applied until governance resolves it.

    Every later event of a flagged author is refused, whichever branch it
    extends, so no node applies one side of the fork and another node the other.
    """
    if not flags.is_flagged(event.coop, event.author):
        return None
    return Refusal(
        Code.AUTHOR_FLAGGED,
        "author is flagged for a fork in this coop; nothing of the chain"
        " past the fork is applied until governance resolves it",
    )


def _state_problem(inspection: Inspection, event: Event, view: ChainView) -> Refusal | None:
    """The spec checks of a known body that need the log (:attr:`EventType.chain_check`)."""
    kind = registry.known(event.type)
    if kind is None or kind.chain_check is None:
        return None
    body = inspection.body
    if body is None:  # an inspection rebuilt without its body (stored or worker-checked)
        body = registry.typed_body(kind, event.body)
    return kind.chain_check(event, body, view)


def judge(inspection: Inspection, view: ChainView) -> Judgement:
    """The verdict of spec section 4 for one inspected event against ``view``."""
    event = inspection.event
    if event is None:
        verdict = inspection.verdict or Verdict.MALFORMED
        return Judgement(verdict, inspection.reason, inspection.code)
    if inspection.verdict is Verdict.MALFORMED:
        return Judgement(Verdict.MALFORMED, inspection.reason, inspection.code)
    problem = _state_problem(inspection, event, view)
    if problem is not None:
        return Judgement(Verdict.MALFORMED, problem.reason, problem.code)
    if inspection.verdict is not None:
        return Judgement(inspection.verdict, inspection.reason)
    head = view.head(event.coop, event.author)
    last = head.seq if head else 0
    if event.seq <= last:
        if view.id_at(event.coop, event.author, event.seq) == event.id:
            return Judgement(Verdict.DUPLICATE, "already accepted")
        return Judgement(
            Verdict.FORK, f"a different event is already at seq {event.seq} of this chain"
        )
    if event.seq > last + 1:
        return Judgement(Verdict.GAP, f"seq {event.seq} but the chain ends at {last}")
    if head is not None:
        if event.prev != head.id:
            return Judgement(Verdict.BROKEN_LINK, f"prev is not the id of seq {head.seq}")
        if event.ts < head.ts:
            return Judgement(Verdict.BROKEN_LINK, "ts goes back along the chain")
    return OK
