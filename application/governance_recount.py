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

What is read, and how (measured: ``bench/governance.py --recount-only``): the
close is found by the type index; the log is read a page of 1,000 entries per
query, up to the close, by the replay; the ballots are picked from the same
pages by a byte search, by the workers themselves (each reads its ranges of
leaves on its own connection) when they can open the store; and the close is
not judged by the rules before the recount (that would recount it twice: the
recount here is the same function at the same position).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor

import msgspec
from nacl.bindings import crypto_sign_open
from nacl.exceptions import BadSignatureError, CryptoError

from icn.application.coop_view import StateLayer
from icn.application.errors import NotFound
from icn.application.log_rejudge import KEEP_EVENTS, fresh_layer
from icn.application.parallel import cores
from icn.application.ports import EventStore, LogEntry
from icn.domain.coop.evolve import evolve
from icn.domain.events.envelope import Event, compute_id, decode_stored, signing_message
from icn.domain.governance import bodies as gb
from icn.domain.governance import state
from icn.domain.governance.bodies import Counts
from icn.domain.governance.closing import recount
from icn.domain.governance.tally import Tally
from icn.domain.identity.did import InvalidDid, public_key_from_did
from icn.domain.refusals import Refusal

BALLOTS = {gb.VOTE_CAST, gb.VOTE_COMMITTED, gb.VOTE_REVEALED}
VOTE_LIKE = b'"type":"governance.Vote'
"""In a stored (canonical) line: a cast, commitment, reveal or delegation."""
DELEGATION = f'"type":"{gb.VOTE_DELEGATED}"'.encode()
PAGE = 1_000
"""Entries per read of the log: one SQLite row per page (see ``EventStore.page``)."""
LEAVES = 1_000
"""Leaves of the log per unit of verification: small enough that the caller, once its
replay is done, takes over the units no worker has started (~75 ms of work for a range
that is all ballots)."""


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
    """Of the (event id, stored bytes) given, the ballots of ``proposal`` and the delegations,
    each checked again (its BLAKE3 id from its content, its Ed25519 signature by its author);
    how many were checked, and the ids of those that fail. Run in a worker process, or in the
    caller for the chunks no worker has started when the replay is done."""
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


def _log(
    store: EventStore,
    coop: str,
    *,
    type_prefix: str | None = None,
    start: int = 0,
    stop: int | None = None,
) -> Iterator[LogEntry]:
    """``coop``'s entries in leaf order (only types starting with ``type_prefix``: read by the
    type index, not by walking the log), leaves ``start`` to ``stop`` excluded, a page at a
    time."""
    after = start - 1
    while True:
        page = store.page(coop, after=after, limit=PAGE, type_prefix=type_prefix)
        for entry in page:
            if stop is not None and entry.leaf_index >= stop:
                return
            yield entry
        if len(page) < PAGE:
            return
        after = page[-1].leaf_index


def _ballot_lines(
    store: EventStore, coop: str, proposal: str, start: int, stop: int
) -> list[tuple[str, bytes]]:
    """The proposal's ballots and every delegation in leaves ``start`` to ``stop`` (excluded):
    one page of the log, and a byte search picks them out, no decoding (a line that only
    looks like one is decoded and passed over by :func:`_failures`). A page by the type
    index would not stop at ``stop``: it reads up to 1,000 ballots past it, which measured
    three times the CPU of reading the range whole."""
    named = f'"proposal":"{proposal}"'.encode()
    return [
        (e.event_id, e.wire)
        for e in _log(store, coop, start=start, stop=stop)
        if VOTE_LIKE in e.wire and (named in e.wire or DELEGATION in e.wire)
    ]


_WORKER_STORE: EventStore | None = None
"""A worker process's own connection to the store (opened once, by :func:`_open_store`)."""


def _open_store(reopen: Callable[[], EventStore]) -> None:
    global _WORKER_STORE
    _WORKER_STORE = reopen()


def _range_failures(coop: str, proposal: str, start: int, stop: int) -> tuple[int, list[str]]:
    """In a worker holding its own store: read one range of leaves and verify its ballots."""
    assert _WORKER_STORE is not None
    return _failures(_ballot_lines(_WORKER_STORE, coop, proposal, start, stop), proposal)


def _close_of(store: EventStore, coop: str, proposal: str) -> tuple[LogEntry, Event] | None:
    """The proposal's ``governance.ProposalClosed``, found by the type index."""
    named = f'"proposal":"{proposal}"'.encode()
    for entry in _log(store, coop, type_prefix=gb.PROPOSAL_CLOSED):
        if named in entry.wire:
            event = decode_stored(entry.wire)
            if event.type == gb.PROPOSAL_CLOSED and event.body.get("proposal") == proposal:
                return entry, event
    return None


Work = tuple[int, int] | list[tuple[str, bytes]]
"""A unit of verification: a range of leaves a worker reads itself, or lines handed over."""


class _Signatures:
    """The ballots and delegations before the close, verified in worker processes while
    the caller replays the log (processes: the replay holds the GIL).

    Given ``reopen`` (a picklable way to open the same store), each worker opens its
    own connection and reads its ranges of leaves, so the caller
    neither reads the ballots nor pickles them to the workers while it replays; without
    it the caller reads them first and hands them over. Either way the workers verify
    from the first moment, and when the replay is done the caller verifies itself every
    unit no worker has started yet, so no core idles while another finishes."""

    def __init__(
        self, store: EventStore, coop: str, proposal: str, reopen: Callable[[], EventStore] | None
    ) -> None:
        if reopen is None:
            self._pool = ProcessPoolExecutor(max(1, cores()))
        else:
            self._pool = ProcessPoolExecutor(
                max(1, cores()), initializer=_open_store, initargs=(reopen,)
            )
        self._store, self._coop, self._proposal = store, coop, proposal
        self._reopen = reopen
        self._work: list[Work] = []
        self._futures: list[Future[tuple[int, list[str]]]] = []

    def send(self, stop: int) -> None:
        """Hand the workers every leaf before ``stop``, :data:`LEAVES` at a time."""
        for start in range(0, stop, LEAVES):
            end = min(start + LEAVES, stop)
            if self._reopen is not None:
                future = self._pool.submit(_range_failures, self._coop, self._proposal, start, end)
                self._work.append((start, end))
            else:
                lines = _ballot_lines(self._store, self._coop, self._proposal, start, end)
                if not lines:
                    continue
                future = self._pool.submit(_failures, lines, self._proposal)
                self._work.append(lines)
            self._futures.append(future)

    def _here(self, work: Work) -> tuple[int, list[str]]:
        if isinstance(work, tuple):
            start, stop = work
            work = _ballot_lines(self._store, self._coop, self._proposal, start, stop)
        return _failures(work, self._proposal)

    def result(self) -> tuple[int, list[str]]:
        """How many lines were checked, and the ids of those that failed."""
        mine = {
            i: self._here(self._work[i])
            for i in reversed(range(len(self._futures)))
            if self._futures[i].cancel()
        }
        checked, bad = 0, []
        for i, future in enumerate(self._futures):
            n, failed = mine[i] if i in mine else future.result()
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


def recount_proposal(
    store: EventStore,
    coop: str,
    proposal_id: str,
    reopen: Callable[[], EventStore] | None = None,
) -> Recount:
    """Replay ``coop``'s log up to the proposal's close (or its end) and recount it there,
    verifying every ballot's and delegation's signature again on the way (in workers that
    read the store themselves when ``reopen`` opens it again in another process)."""
    close = _close_of(store, coop, proposal_id)
    stop = close[0].leaf_index if close is not None else store.tree_size(coop)
    signatures = _Signatures(store, coop, proposal_id, reopen)
    try:
        signatures.send(stop)
        layer = fresh_layer(store)
        for entry in _log(store, coop, stop=stop):
            event = decode_stored(entry.wire)
            trusted = entry.trusted_ms if entry.trusted_ms is not None else event.ts
            result = evolve(event, layer, trusted)
            if not isinstance(result, Refusal):
                layer.write(event, result)
            if len(layer.events) > KEEP_EVENTS:
                layer.events.clear()
        tally = _recount_here(layer, coop, proposal_id)
        verified, bad = signatures.result()
    finally:
        signatures.close()
    matches = close is not None and _stated(close[1].body) == _of(tally) and not bad
    return _doc(proposal_id, tally, close is not None, matches, verified, bad)


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
