"""``icn governance recount``: a proposal's tally recomputed from the coop's log alone.

The log is judged again in order, in memory, by the rules the write path
used (as :mod:`icn.application.trust_verify` does for epochs), never by the
records the store kept: so the answer is the one any auditor holding the log
reaches. The recount is taken at the close's own position, just before it is
applied, which is where every node judged it; a proposal not closed yet is
recounted as the whole log stands, and ``matches`` is then false.
"""

from __future__ import annotations

import msgspec

from icn.application.coop_view import StateLayer
from icn.application.errors import NotFound
from icn.application.log_rejudge import fresh_layer, rejudge
from icn.application.ports import EventStore
from icn.domain.governance import bodies as gb
from icn.domain.governance import state
from icn.domain.governance.bodies import Counts
from icn.domain.governance.closing import recount
from icn.domain.governance.tally import Tally


class Recount(msgspec.Struct):
    """The recomputed tally, and whether the stored close states exactly it."""

    proposal: str
    outcome: str
    counts: Counts
    eligible: int
    counted: int
    ballots_digest: str
    closed: bool
    """A ``governance.ProposalClosed`` for it is in the log."""
    matches: bool
    """The close's outcome, counts, eligible, counted and digest all equal the recount."""


def _stated(body: dict[str, object]) -> tuple[object, ...]:
    return tuple(
        body.get(k) for k in ("outcome", "counts", "eligible", "counted", "ballots_digest")
    )


def _of(t: Tally) -> tuple[object, ...]:
    return (t.outcome, msgspec.to_builtins(t.counts), t.eligible, t.counted, t.ballots_digest)


def recount_proposal(store: EventStore, coop: str, proposal_id: str) -> Recount:
    """Replay ``coop``'s log up to the proposal's close (or its end) and recount it there."""
    layer = fresh_layer(store)
    for judged in rejudge(store, coop, layer):
        event = judged.event
        if event.type == gb.PROPOSAL_CLOSED and event.body.get("proposal") == proposal_id:
            result = _recount_here(layer, coop, proposal_id)
            matches = _stated(event.body) == _of(result)
            return _doc(proposal_id, result, closed=True, matches=matches)
    return _doc(proposal_id, _recount_here(layer, coop, proposal_id), closed=False, matches=False)


def _recount_here(layer: StateLayer, coop: str, proposal_id: str) -> Tally:
    record = layer.coop(coop)
    p = state.proposal(layer, coop, proposal_id)
    if record is None or p is None:
        raise NotFound(f"no proposal {proposal_id} in {coop}")
    return recount(layer, record, p)


def _doc(proposal_id: str, t: Tally, *, closed: bool, matches: bool) -> Recount:
    return Recount(
        proposal_id, t.outcome, t.counts, t.eligible, t.counted, t.ballots_digest, closed, matches
    )
