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
they were accepted does not match. The signatures are checked by the node's
one parallel verifier (:mod:`icn.application.parallel`, as audit, import,
HTTP batches and intake use it) while the log is replayed, so on a machine
with a core to spare they add little to the replay's own time. Unless given
one, it takes the verifier an audit of the same log gets (:func:`stream_verifier`:
worker processes for a long log, since the replay holds the GIL; the shared
threads measured 2.43 s against 1.89 s for 10,000 ballots, load 4).

What is read, and how (measured: ``bench/governance.py --recount-only``): the
close is found by the type index; the log is read once, a page of 1,000
entries per query, up to the close, up to 64 pages ahead of the replay; the
ballots are picked from those pages by a byte search and handed to the
workers (250 a unit) as soon as they are read, so the workers start on them
while the replay judges what comes before (before, each worker read its
ranges of the log again on its own connection: 0.4x the signatures' CPU more
in all, measured); and the close is not judged by the rules before the
recount (that would recount it twice: the recount here is the same function
at the same position).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from functools import partial

import msgspec
from nacl.bindings import crypto_sign_open
from nacl.exceptions import BadSignatureError, CryptoError

from icn.application.coop_view import StateLayer
from icn.application.errors import NotFound
from icn.application.log_rejudge import KEEP_EVENTS, fresh_layer
from icn.application.parallel import Verifier, cores, stream_verifier
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
UNIT = 250
"""Ballots per unit handed to a worker by the caller (~15 ms of verification): the units
the workers have not started when the replay ends are few and short."""
AHEAD = 64
"""Pages the caller reads ahead of its replay, handing their ballots to the workers at
once (64,000 entries at most held in memory)."""


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


def _closes(store: EventStore, coop: str) -> Iterator[LogEntry]:
    """``coop``'s ``governance.ProposalClosed`` entries in leaf order, by the type index."""
    after = -1
    while True:
        page = store.page(coop, after=after, limit=PAGE, type_prefix=gb.PROPOSAL_CLOSED)
        yield from page
        if len(page) < PAGE:
            return
        after = page[-1].leaf_index


def _pages(store: EventStore, coop: str, stop: int) -> Iterator[list[LogEntry]]:
    """``coop``'s entries before leaf ``stop``, a page at a time."""
    after = -1
    while True:
        page = store.page(coop, after=after, limit=PAGE)
        kept = [e for e in page if e.leaf_index < stop]
        if kept:
            yield kept
        if len(page) < PAGE or len(kept) < len(page):
            return
        after = page[-1].leaf_index


def _read_ahead(
    store: EventStore, coop: str, stop: int, take: Callable[[list[LogEntry], bool], None]
) -> Iterator[LogEntry]:
    """The entries before ``stop`` in leaf order, each page read once and shown to ``take``
    up to :data:`AHEAD` pages before it is yielded: the workers verify the ballots the
    caller read while it replays the pages before them."""
    pages = _pages(store, coop, stop)
    window: deque[list[LogEntry]] = deque()
    more = True
    while True:
        while more and len(window) < AHEAD:
            page = next(pages, None)
            more = page is not None
            take(page or [], not more)
            if page is not None:
                window.append(page)
        if not window:
            return
        yield from window.popleft()


def _close_of(store: EventStore, coop: str, proposal: str) -> tuple[LogEntry, Event] | None:
    """The proposal's ``governance.ProposalClosed``, found by the type index."""
    named = f'"proposal":"{proposal}"'.encode()
    for entry in _closes(store, coop):
        if named in entry.wire:
            event = decode_stored(entry.wire)
            if event.type == gb.PROPOSAL_CLOSED and event.body.get("proposal") == proposal:
                return entry, event
    return None


Lines = list[tuple[str, bytes]]
"""A unit of verification: (event id, stored bytes) of ballots and delegations."""


class _Signatures:
    """The ballots and delegations before the close, verified on the verifier's workers
    while the caller replays the log.

    The caller reads every page of the log once: :meth:`take` picks a page's ballots
    and delegations by a byte search, no decoding (a line that only looks like one is
    decoded and passed over by :func:`_failures`), and hands them to the workers
    :data:`UNIT` at a time, as the read runs ahead of the replay. When the replay is
    done, the caller verifies itself every unit no worker has started yet, so no core
    idles while another finishes."""

    def __init__(self, proposal: str, verifier: Verifier) -> None:
        self._verifier = verifier
        self._check = partial(_failures, proposal=proposal)
        self._named = f'"proposal":"{proposal}"'.encode()
        self._lines: Lines = []
        self._work: list[Lines] = []
        self._futures: list[Future[tuple[int, list[str]]]] = []

    def take(self, page: list[LogEntry], last: bool = False) -> None:
        """A page the caller read: its ballots and delegations go to the workers
        :data:`UNIT` at a time, the rest with the ``last`` page."""
        self._lines += [
            (e.event_id, e.wire)
            for e in page
            if VOTE_LIKE in e.wire and (self._named in e.wire or DELEGATION in e.wire)
        ]
        while len(self._lines) >= UNIT or (last and self._lines):
            lines, self._lines = self._lines[:UNIT], self._lines[UNIT:]
            self._futures.append(self._verifier.start(self._check, lines))
            self._work.append(lines)

    def result(self) -> tuple[int, list[str]]:
        """How many lines were checked, and the ids of those that failed."""
        mine = {
            i: self._check(self._work[i])
            for i in reversed(range(len(self._futures)))
            if self._futures[i].cancel()
        }
        checked, bad = 0, []
        for i, future in enumerate(self._futures):
            n, failed = mine[i] if i in mine else future.result()
            checked += n
            bad += failed
        return checked, bad

    def cancel(self) -> None:
        """Give back the units no worker has taken (the recount failed on the way)."""
        for future in self._futures:
            future.cancel()


def _stated(body: dict[str, object]) -> tuple[object, ...]:
    return tuple(
        body.get(k) for k in ("outcome", "counts", "eligible", "counted", "ballots_digest")
    )


def _of(t: Tally) -> tuple[object, ...]:
    return (t.outcome, msgspec.to_builtins(t.counts), t.eligible, t.counted, t.ballots_digest)


def recount_proposal(
    store: EventStore, coop: str, proposal_id: str, verifier: Verifier | None = None
) -> Recount:
    """Replay ``coop``'s log up to the proposal's close (or its end) and recount it there,
    verifying every ballot's and delegation's signature again on the way (on ``verifier``'s
    workers, from the pages the replay reads; without one, on the verifier an audit of
    that much log gets, stopped afterwards)."""
    close = _close_of(store, coop, proposal_id)
    stop = close[0].leaf_index if close is not None else store.tree_size(coop)
    own = verifier is None
    used = stream_verifier(cores(), stop) if verifier is None else verifier
    signatures = _Signatures(proposal_id, used)
    done = False
    try:
        layer = fresh_layer(store)
        for entry in _read_ahead(store, coop, stop, signatures.take):
            event = decode_stored(entry.wire)
            trusted = entry.trusted_ms if entry.trusted_ms is not None else event.ts
            result = evolve(event, layer, trusted)
            if not isinstance(result, Refusal):
                layer.write(event, result)
            if len(layer.events) > KEEP_EVENTS:
                layer.events.clear()
        tally = _recount_here(layer, coop, proposal_id)
        verified, bad = signatures.result()
        done = True
    finally:
        if not done:
            signatures.cancel()
        if own:
            used.close()
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
