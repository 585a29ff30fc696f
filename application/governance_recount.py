"""``icn governance recount``: a proposal's tally recomputed from the coop's log alone.

The log is judged again in order, in memory, by the rules the write path
used (as :mod:`icn.application.trust_verify` does for epochs), never by the
records the store kept: so the answer is the one any auditor holding the log
reaches. The recount is taken at the close's own position, just before it is
applied, which is where every node judged it; a proposal not closed yet is
recounted as the whole log stands, and ``matches`` is then false.

Every ballot of the proposal (cast, committed, revealed) and every delegation
before the close is also verified again from its stored bytes (BLAKE3 id and
Ed25519 signature, :func:`~icn.domain.events.envelope.inspect`): a store whose
ballots were altered after they were accepted does not match. The signatures
are checked in worker processes while the log is replayed, so on a machine
with a core to spare they add little to the replay's own time.
"""

from __future__ import annotations

from concurrent.futures import Future, ProcessPoolExecutor

import msgspec

from icn.application.coop_view import StateLayer
from icn.application.errors import NotFound
from icn.application.log_rejudge import fresh_layer, rejudge
from icn.application.parallel import cores
from icn.application.ports import EventStore
from icn.domain.events.envelope import decode_stored, inspect
from icn.domain.governance import bodies as gb
from icn.domain.governance import state
from icn.domain.governance.bodies import Counts
from icn.domain.governance.closing import recount
from icn.domain.governance.tally import Tally

BALLOTS = {gb.VOTE_CAST, gb.VOTE_COMMITTED, gb.VOTE_REVEALED}
CHUNK = 1000
"""Signed lines per unit of work in a verifying process (~70 ms of work)."""


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
    """The close's outcome, counts, eligible, counted and digest all equal the recount,
    and every ballot and delegation verified."""
    verified: int = 0
    """Ballot and delegation events whose id and signature were checked again."""
    bad_signatures: list[str] = msgspec.field(default_factory=list)
    """Ids of those that failed (their stored bytes no longer verify)."""


def _failures(lines: list[bytes]) -> tuple[int, list[str]]:
    """In a worker process: how many lines were checked, and the ids of those that fail."""
    bad = []
    for line in lines:
        found = inspect(line)
        if found.verdict is not None:
            bad.append(found.event.id if found.event is not None else decode_stored(line).id)
    return len(lines), bad


class _Signatures:
    """Stored lines verified in worker processes while the caller goes on replaying: the
    replay holds the GIL, so threads would wait for it; processes take the other cores."""

    def __init__(self) -> None:
        self._pool = ProcessPoolExecutor(max(1, cores()))
        self._pending: list[bytes] = []
        self._futures: list[Future[tuple[int, list[str]]]] = []

    def add(self, wire: bytes) -> None:
        self._pending.append(wire)
        if len(self._pending) >= CHUNK:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._futures.append(self._pool.submit(_failures, self._pending))
            self._pending = []

    def result(self) -> tuple[int, list[str]]:
        """How many lines were checked, and the ids of those that failed."""
        self._flush()
        checked, bad = 0, []
        for future in self._futures:
            n, failed = future.result()
            checked += n
            bad += failed
        return checked, bad

    def close(self) -> None:
        self._pool.shutdown(cancel_futures=True)


def _stated(body: dict[str, object]) -> tuple[object, ...]:
    return tuple(
        body.get(k) for k in ("outcome", "counts", "eligible", "counted", "ballots_digest")
    )


def _of(t: Tally) -> tuple[object, ...]:
    return (t.outcome, msgspec.to_builtins(t.counts), t.eligible, t.counted, t.ballots_digest)


def recount_proposal(store: EventStore, coop: str, proposal_id: str) -> Recount:
    """Replay ``coop``'s log up to the proposal's close (or its end) and recount it there,
    verifying every ballot's and delegation's signature again on the way."""
    layer = fresh_layer(store)
    signatures = _Signatures()
    try:
        for judged in rejudge(store, coop, layer):
            event = judged.event
            if event.type == gb.VOTE_DELEGATED or (
                event.type in BALLOTS and event.body.get("proposal") == proposal_id
            ):
                signatures.add(judged.entry.wire)
            if event.type == gb.PROPOSAL_CLOSED and event.body.get("proposal") == proposal_id:
                result = _recount_here(layer, coop, proposal_id)
                verified, bad = signatures.result()
                matches = _stated(event.body) == _of(result) and not bad
                return _doc(proposal_id, result, True, matches, verified, bad)
        result = _recount_here(layer, coop, proposal_id)
        verified, bad = signatures.result()
        return _doc(proposal_id, result, False, False, verified, bad)
    finally:
        signatures.close()


def _recount_here(layer: StateLayer, coop: str, proposal_id: str) -> Tally:
    record = layer.coop(coop)
    p = state.proposal(layer, coop, proposal_id)
    if record is None or p is None:
        raise NotFound(f"no proposal {proposal_id} in {coop}")
    return recount(layer, record, p)


def _doc(
    proposal_id: str, t: Tally, closed: bool, matches: bool, verified: int, bad: list[str]
) -> Recount:
    return Recount(
        proposal_id, t.outcome, t.counts, t.eligible, t.counted, t.ballots_digest,
        closed, matches, verified, bad,
    )  # fmt: skip
