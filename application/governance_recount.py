"""``icn governance recount``: a proposal's tally recomputed from the coop's log alone.

The log is judged again in order, in memory, by the rules the write path
used (as :mod:`icn.application.trust_verify` does for epochs), never by the
records the store kept: so the answer is the one any auditor holding the log
reaches. The recount is taken at the close's own position, just before it is
applied, which is where every node judged it; a proposal not closed yet is
recounted as the whole log stands, and ``matches`` is then false.

Every ballot of the proposal (cast, committed, revealed) and every delegation
before the close is also verified again from its stored bytes (BLAKE3 id and
Ed25519 signature by its author): a store whose ballots were altered after
they were accepted does not match. The signatures are checked in worker
processes while the log is replayed, so on a machine with a core to spare
they add little to the replay's own time.
"""

from __future__ import annotations

from concurrent.futures import Future, ProcessPoolExecutor

import msgspec
from nacl.bindings import crypto_sign_open
from nacl.exceptions import BadSignatureError, CryptoError

from icn.application.coop_view import StateLayer
from icn.application.errors import NotFound
from icn.application.log_rejudge import fresh_layer, rejudge
from icn.application.parallel import cores
from icn.application.ports import EventStore
from icn.domain.events.envelope import compute_id, decode_stored, signing_message
from icn.domain.governance import bodies as gb
from icn.domain.governance import state
from icn.domain.governance.bodies import Counts
from icn.domain.governance.closing import recount
from icn.domain.governance.tally import Tally
from icn.domain.identity.did import InvalidDid, public_key_from_did

BALLOTS = {gb.VOTE_CAST, gb.VOTE_COMMITTED, gb.VOTE_REVEALED}
VOTE_LIKE = b'"type":"governance.Vote'
"""In a stored (canonical) line: a cast, commitment, reveal or delegation."""
CLOSE = f'"type":"{gb.PROPOSAL_CLOSED}"'.encode()
CHUNK = 250
"""Signed lines per unit of work in a verifying process (~15 ms of work)."""


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


def _failures(lines: list[tuple[str, bytes]], proposal: str) -> tuple[int, list[str]]:
    """In a worker process: of the (event id, stored bytes) given, the ballots of ``proposal``
    and the delegations, each checked again (its BLAKE3 id from its content, its Ed25519
    signature by its author); how many were checked, and the ids of those that fail."""
    checked, bad = 0, []
    for event_id, wire in lines:
        try:
            event = decode_stored(wire)
        except (msgspec.DecodeError, msgspec.ValidationError):
            checked += 1
            bad.append(event_id)
            continue
        if event.type != gb.VOTE_DELEGATED and (
            event.type not in BALLOTS or event.body.get("proposal") != proposal
        ):
            continue
        checked += 1
        try:
            key = public_key_from_did(event.author)
            if compute_id(event.unsigned()) != event.id or event.id != event_id:
                raise ValueError("id")
            crypto_sign_open(bytes.fromhex(event.sig) + signing_message(event.id), key)
        except (InvalidDid, BadSignatureError, CryptoError, ValueError):
            bad.append(event_id)
    return checked, bad


class _Signatures:
    """The ballots and delegations before the close, verified in worker processes while
    the caller replays the log (processes: the replay holds the GIL).

    One quick pass over the stored bytes finds every vote-like line before the replay
    starts (a byte search, ~6 µs a line, no decoding), so the workers verify from the
    first moment instead of from when the replay reaches the ballots."""

    def __init__(self, proposal: str) -> None:
        self._pool = ProcessPoolExecutor(max(1, cores()))
        self._proposal = proposal
        self._futures: list[Future[tuple[int, list[str]]]] = []

    def send(self, store: EventStore, coop: str) -> None:
        """Hand the workers every vote-like line of ``coop``'s log up to the proposal's close."""
        named = f'"proposal":"{self._proposal}"'.encode()
        pending: list[tuple[str, bytes]] = []
        for entry in store.entries(coop):
            wire = entry.wire
            if VOTE_LIKE in wire:
                pending.append((entry.event_id, wire))
                if len(pending) >= CHUNK:
                    self._submit(pending)
                    pending = []
            elif (
                CLOSE in wire
                and named in wire
                and decode_stored(wire).body.get("proposal") == self._proposal
            ):
                break
        self._submit(pending)

    def _submit(self, lines: list[tuple[str, bytes]]) -> None:
        if lines:
            self._futures.append(self._pool.submit(_failures, lines, self._proposal))

    def result(self) -> tuple[int, list[str]]:
        """How many lines were checked, and the ids of those that failed."""
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
    signatures = _Signatures(proposal_id)
    try:
        signatures.send(store, coop)
        for judged in rejudge(store, coop, layer):
            event = judged.event
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
