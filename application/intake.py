"""Events received from other nodes: verified and appended exactly like the write path.

A batch delivered by a coop's stream goes through the same checks as an HTTP
or CLI write (:meth:`AppendEvents.append_stream`, each line on its own, in
stream order). What comes back decides the line's fate:

- ``ok`` / ``duplicate``: done (an event id the log holds is a no-op);
- ``fork``: the store keeps it in quarantine beside the event it conflicts
  with, and flags the author;
- ``gap``, and node-rule refusals that other events may still lift
  (codes that may clear, :mod:`icn.domain.refusals`: the coop is not founded
  here yet, the payer is not a member yet, the credit that covers a payment
  has not arrived …): it **waits**, and is **parked** if it still waits when
  the batch is committed, until it passes or the bound evicts it;
- anything else (``malformed``, ``bad-id``, ``bad-signature``,
  ``broken-link``, ``author-flagged``, refusals no later event can lift):
  **rejected**: counted, recorded with its stream sequence, code, reason and
  (the first bytes of) the message, and dropped. A message that cannot even be
  decoded (not JSON, nested too deep, not an event at all) is ``malformed``
  like any other: a verdict, never an exception that would stall the stream.

**Where a parked event lands.** A waiting event is appended immediately after
the first event, in log (= stream) order, after which it passes: the write
that appends an event judges the waiting ones again right behind it, in the
same transaction, oldest first, in passes (one may wait for another). That
holds whatever the batch boundaries (fetch sizes, timing, restarts differ
between nodes), and whether that event was received here or written here: the
intake is the write path's :attr:`~AppendEvents.lot`, so a local write releases
parked events behind itself before the next write is judged, where every node
that receives it from the stream releases them too. Every replica thus holds a
parked event at the same position, with the same Merkle root, and later rules
read the same state. An event the log already held (a duplicate, our own read
back) appends nothing and so releases nothing.

The stream delivers every node's events in one order, and a node publishes
its log in its own order, so an event normally arrives after everything it
depends on; parking covers the rest (a publish retried after its successors,
a node catching up, events published straight to the stream).

Messages whose event id the log already holds (a node reads its own events
back from the stream; re-publishes; replays) are recognised with one query
per batch and skipped before any signature is checked: the id is the hash of
the content, so they are either that very event or fail the id check, and
neither changes anything. Nothing here acknowledges
anything: the caller acks the batch after :meth:`Intake.receive` returned,
that is, after every append and park committed.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

import msgspec

from icn.application.append import (
    AppendEvents,
    Outcome,
    WaitingLine,
)
from icn.application.append import parkable as parkable
from icn.application.parallel import Verifier, shared_verifier
from icn.application.remembered_ids import RememberedIds
from icn.domain.events.envelope import Inspection, inspect, stored_inspection
from icn.domain.events.verdicts import Verdict
from icn.domain.refusals import Code

DEFAULT_MAX_PARKED = 10_000
"""Events kept waiting per coop; beyond it the oldest waiting one is dropped. Which events
are dropped decides what the log holds, so this is a constant of the protocol, the same
on every node, not a node's setting (tests pass a smaller one to reach it)."""
RECHECK_EMPTY_S = 5.0
"""A lot found empty is looked at again after this long (another process may park too)."""
DEFAULT_MAX_REJECTED = 10_000
"""Rejected messages kept per coop (the oldest go first)."""
REJECTED_WIRE_MAX = 16_384
"""Bytes of a rejected message kept: enough to see what and whose it was (events are at
most 64 KiB, a NATS message up to 1 MiB), and the table stays bounded."""
REASON_MAX = 500
MAX_REMEMBERED = 200_000
"""Ids of appended stream events kept for :meth:`Intake.came_from_stream`, per coop, while
the relay has not asked for them yet (it asks as it reaches them, so a running node holds
about its relay's lag; 200,000 ids are 22 MiB). Forgetting one costs a publish that
JetStream's duplicate window drops, or that receivers' known-id check makes a no-op."""


class ToPark(NamedTuple):
    """A verified event to keep until what it waits for arrives."""

    event_id: str
    author: str
    seq: int
    code: str
    wire: bytes
    trusted_ms: int | None = None
    """The trusted time its stream position carried: every retry judges it at that time."""


class ToReject(NamedTuple):
    """A stream message refused for good, as recorded (``wire`` already cut to the bound)."""

    stream_seq: int | None
    code: str
    reason: str
    wire: bytes
    size: int
    """The whole message's length in bytes."""


def to_reject(stream_seq: int | None, code: str, reason: str, message: bytes) -> ToReject:
    """A :class:`ToReject` with its bytes and reason cut to their bounds."""
    return ToReject(
        stream_seq, code[:64], reason[:REASON_MAX], bytes(message[:REJECTED_WIRE_MAX]), len(message)
    )


class Parked(NamedTuple):
    """A parked event as stored: its id, canonical wire bytes and why it waits."""

    event_id: str
    wire: bytes
    code: str
    trusted_ms: int | None = None


class ParkingLot(Protocol):
    """Where received events wait, and what intake needs to know of the log."""

    def tree_size(self, coop: str) -> int:
        """Events in the coop's log."""
        ...

    def known_ids(self, coop: str, event_ids: Sequence[str]) -> set[str]:
        """Those of ``event_ids`` that the coop's log holds."""
        ...

    def park(self, coop: str, events: Sequence[ToPark], bound: int, now_ms: int) -> tuple[int, int]:
        """Keep ``events`` (ignoring ones already parked); evict the oldest beyond ``bound``.

        Returns (newly parked, evicted).
        """
        ...

    def parked(self, coop: str) -> list[Parked]:
        """Every parked event of ``coop``, oldest first."""
        ...

    def unpark(self, coop: str, event_ids: Sequence[str]) -> None:
        """Forget these parked events."""
        ...

    def drop(self, coop: str, event_ids: Sequence[str]) -> int:
        """Forget these parked events, counted as dropped by the bound; how many there were."""
        ...

    def parked_count(self, coop: str) -> int:
        """How many events of ``coop`` are parked."""
        ...

    def reject(self, coop: str, rows: Sequence[ToReject], bound: int, now_ms: int) -> int:
        """Record refused messages (one already recorded at its stream sequence is ignored);
        drop the oldest beyond ``bound``. Returns how many were newly recorded."""
        ...


@dataclass
class IntakeCounts:
    """What one :meth:`Intake.receive` did (or, added up, everything so far)."""

    received: int = 0
    accepted: int = 0
    """Appended to the log, including parked events that passed now."""
    duplicates: int = 0
    forks: int = 0
    """Quarantined as fork evidence."""
    parked: int = 0
    """Newly parked."""
    unparked: int = 0
    """Parked earlier, appended now."""
    rejected: int = 0
    """Permanently invalid here: counted and dropped."""
    evicted: int = 0
    """Parked events dropped by the bound."""
    rejected_codes: Counter[str] = field(default_factory=Counter)

    def add(self, other: IntakeCounts) -> None:
        """Add ``other``'s counts to these."""
        for name in (
            "received", "accepted", "duplicates", "forks", "parked", "unparked", "rejected",
            "evicted",
        ):  # fmt: skip
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.rejected_codes.update(other.rejected_codes)

    def as_dict(self) -> dict[str, object]:
        """Plain values, for JSON and metrics."""
        return {
            "received": self.received,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "forks": self.forks,
            "parked": self.parked,
            "unparked": self.unparked,
            "rejected": self.rejected,
            "evicted": self.evicted,
            "rejected_codes": dict(self.rejected_codes),
        }


class _Ids(msgspec.Struct):
    id: str = ""


_ids = msgspec.json.Decoder(_Ids)


def _claimed_id(message: bytes) -> str:
    """The id a message claims, or "" (not JSON, nested too deep for the decoder …)."""
    try:
        return _ids.decode(message).id
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return ""


def first_refusals(rows: Sequence[ToReject], recorded: int) -> list[ToReject]:
    """Those of ``rows`` (in stream order) refused here for the first time, given that
    :meth:`ParkingLot.reject` newly recorded ``recorded`` of them: a redelivered batch (its
    ack lost, a node killed before acking) is judged again, and its refusals must not be
    counted again. A row without a stream sequence is always new; of the others, the
    stream is applied in order, so the ones recorded before are the earliest."""
    unnumbered = [r for r in rows if r.stream_seq is None]
    numbered = [r for r in rows if r.stream_seq is not None]
    new = max(0, recorded - len(unnumbered))
    return unnumbered + (numbered[len(numbered) - new :] if new else [])


class Intake:
    """Use case: take a batch of one coop's stream into the log."""

    def __init__(
        self,
        append: AppendEvents,
        lot: ParkingLot,
        clock_ms: Callable[[], int],
        *,
        max_parked: int = DEFAULT_MAX_PARKED,
        max_rejected: int = DEFAULT_MAX_REJECTED,
        verifier: Verifier | None = None,
        remember: int = MAX_REMEMBERED,
    ) -> None:
        self._append = append
        self._verifier = verifier or shared_verifier()
        """Checks each batch's signatures on every core (the process's shared pool)."""
        self._lot = lot
        self._clock_ms = clock_ms
        self.max_parked = max_parked
        self.max_rejected = max_rejected
        self._empty_at: dict[str, float] = {}
        self._received = RememberedIds(remember)
        """Ids for :meth:`came_from_stream`, at most ``remember`` per coop (0: none, where
        no relay runs beside this intake to ask)."""
        # Local writes release parked events too, right behind the event that lets them pass.
        append.lot = self

    def came_from_stream(self, coop: str, event_id: str) -> bool:
        """True, once, for an event this intake received intact: the stream already holds it.

        The outbox relay asks for every event it is about to publish; forgetting
        is harmless (the event is published again and dropped as a duplicate).
        """
        return self._received.take(coop, event_id)

    def may_have_parked(self, coop: str) -> bool:
        """False while the coop's parked lot is known to be empty (checked at most
        :data:`RECHECK_EMPTY_S` ago): then a batch that adds nothing need not look."""
        empty_at = self._empty_at.get(coop)
        return empty_at is None or time.monotonic() - empty_at >= RECHECK_EMPTY_S

    def skip_own(self, coop: str, messages: Sequence[bytes], own: Callable[[str], bool]) -> bool:
        """True when every message is an event ``own`` vouches the log holds and nothing is
        parked that the log's growth might release: the batch needs no further work.

        ``own`` answers for ids this node published itself (its consumer reads them back).
        Judged by the id the message claims, as :meth:`receive` judges known ids.
        """
        if self.may_have_parked(coop):
            return False
        for message in messages:
            claimed = _claimed_id(message)
            if not claimed or not own(claimed):
                return False
        return True

    def receive(
        self,
        coop: str,
        messages: Sequence[bytes],
        trusted_ms: Sequence[int] | None = None,
        *,
        stream_seq: Callable[[int], int | None] | None = None,
    ) -> IntakeCounts:
        """Verify and append one delivered batch of ``coop``; park what must wait.

        ``trusted_ms``: each message's trusted time, as the stream carries it
        (:func:`icn.domain.events.timing.stream_time`); without it, the node's
        clock now. Returns after everything it decided is committed (appends,
        quarantine, parked rows), so the caller may then acknowledge the batch.
        ``stream_seq(i)``: the stream sequence of ``messages[i]``, asked only for
        messages refused for good (recorded with it, before this returns).
        """
        # One trace per delivered batch: intake (which ids are new), verify, append.
        attributes: dict[str, str | int] = {"icn.coop": coop, "icn.messages": len(messages)}
        with self._append.telemetry.span("icn.replication.batch", attributes):
            return self._receive(coop, messages, trusted_ms, stream_seq)

    def _receive(
        self,
        coop: str,
        messages: Sequence[bytes],
        trusted_ms: Sequence[int] | None,
        stream_seq: Callable[[int], int | None] | None,
    ) -> IntakeCounts:
        telemetry = self._append.telemetry
        if trusted_ms is None:
            now = self._clock_ms()
            trusted_ms = [now] * len(messages)
        counts = IntakeCounts(received=len(messages))
        with telemetry.span("icn.intake"):
            claimed = [_claimed_id(m) for m in messages]
            known = self._lot.known_ids(coop, [i for i in claimed if i])
        inspections: list[Inspection] = []
        times: list[int] = []
        positions: list[int] = []
        refused: list[tuple[int, ToReject]] = []  # with the message's index: kept in order

        def seq_of(i: int) -> int | None:
            return stream_seq(i) if stream_seq is not None else None

        # The log holds a known id: the same id is the same event, and other bytes
        # under it would fail the id check; either way nothing to append.
        fresh = [i for i, claimed_id in enumerate(claimed) if claimed_id not in known]
        counts.duplicates += len(messages) - len(fresh)
        with telemetry.span("icn.verify", {"icn.events": len(fresh)}):
            started = time.perf_counter()
            checked = self._inspect_all([messages[i] for i in fresh])
            if fresh:
                telemetry.verified(time.perf_counter() - started, len(fresh))
        for i, ins in zip(fresh, checked, strict=True):
            message, trusted = messages[i], trusted_ms[i]
            if ins.event is not None and ins.event.coop != coop:
                counts.rejected += 1
                counts.rejected_codes[Code.WRONG_COOP] += 1
                reason = f"an event of coop {ins.event.coop!r} in the stream of {coop!r}"
                refused.append((i, to_reject(seq_of(i), Code.WRONG_COOP, reason, message)))
                continue
            inspections.append(ins)
            positions.append(i)
            times.append(trusted)
        to_park: list[ToPark] = []
        waiting: list[WaitingLine] = []
        parked: list[Parked] = []
        if inspections:
            # Remembered before the append commits: the relay may read the new log rows
            # the moment they are visible, and must already know they need no publishing.
            # Only lines that passed every stateless check (verdict None: the id is the hash
            # of the content, the signature holds): a forged line must not hide a real event.
            self._received.add(
                coop, [i.event.id for i in inspections if i.event is not None and i.verdict is None]
            )
            parked, waiting = self._waiting(coop)
            with telemetry.span("icn.append", {"icn.events": len(inspections)}):
                appended = self._append.append_stream(inspections, times, waiting, self.max_parked)
            judged = zip(inspections, appended.outcomes, times, positions, strict=True)
            for ins, outcome, trusted, i in judged:
                if parkable(outcome) and ins.event is not None:
                    event = ins.event
                    code = outcome.code or outcome.verdict
                    to_park.append(
                        ToPark(event.id, event.author, event.seq, code, ins.wire, trusted)
                    )
                elif _count(counts, outcome):
                    code = outcome.code or outcome.verdict
                    refused.append((i, to_reject(seq_of(i), code, outcome.reason, messages[i])))
        first_time: Counter[str] = Counter()
        if parked and inspections:  # first: the bound below counts what still waits
            released = self._settle(coop, parked, appended.waited)
            counts.add(released)
            first_time.update(released.rejected_codes)
        if to_park:
            # Forgotten before the rows commit: a local write judged after them must read them.
            self._empty_at.pop(coop, None)
            counts.parked, counts.evicted = self._lot.park(
                coop, to_park, self.max_parked, self._clock_ms()
            )
        if inspections and appended.dropped:
            # The bound as the write applied it, line by line in stream order (the store's
            # own bound, above, can only have dropped some of these: the oldest).
            counts.evicted += self._lot.drop(coop, appended.dropped)
        if refused:
            rows = [r for _, r in sorted(refused, key=lambda ir: ir[0])]
            recorded = self._lot.reject(coop, rows, self.max_rejected, self._clock_ms())
            first_time.update(r.code for r in first_refusals(rows, recorded))
        for code, n in first_time.items():  # icn_events_refused_total, as posts'
            telemetry.refused(coop, code, n)
        return counts

    def _waiting(self, coop: str) -> tuple[list[Parked], list[WaitingLine]]:
        """The coop's parked events, oldest first, as the write path's waiting lines."""
        if not self.may_have_parked(coop):
            return [], []
        parked = self._lot.parked(coop)
        if not parked:
            self._empty_at[coop] = time.monotonic()
            return [], []
        # Remembered before a write that releases them commits (as received lines are).
        self._received.add(coop, [p.event_id for p in parked])
        now = self._clock_ms()
        lines = [
            WaitingLine(stored_inspection(p.wire), now if p.trusted_ms is None else p.trusted_ms)
            for p in parked
        ]
        return parked, lines

    def waiting(self, coop: str) -> list[WaitingLine]:
        """The coop's parked events as a local write's waiting lines: read inside its
        transaction, so it sees every event parked at the stream position it is judged at."""
        return self._waiting(coop)[1]

    def settled(
        self, coop: str, lines: Sequence[WaitingLine], outcomes: Sequence[Outcome | None]
    ) -> None:
        """After a local write: forget the parked events it appended or found invalid."""
        ids = [line.inspection.event.id if line.inspection.event else "" for line in lines]
        parked = [Parked(i, line.inspection.wire, "") for i, line in zip(ids, lines, strict=True)]
        counts = self._settle(coop, parked, outcomes)
        for code, n in counts.rejected_codes.items():
            self._append.telemetry.refused(coop, code, n)

    def _settle(
        self, coop: str, parked: Sequence[Parked], outcomes: Sequence[Outcome | None]
    ) -> IntakeCounts:
        """Unpark what a committed write appended (or found invalid for good); count it."""
        counts = IntakeCounts()
        done: list[str] = []
        refused: list[ToReject] = []
        for p, outcome in zip(parked, outcomes, strict=True):
            if outcome is None or parkable(outcome):
                continue
            done.append(p.event_id)
            if outcome.verdict == Verdict.OK:
                counts.unparked += 1
            if _count(counts, outcome):
                code = outcome.code or outcome.verdict
                refused.append(to_reject(None, code, outcome.reason, p.wire))
        if refused:  # no stream sequence: the parked row does not keep it
            self._lot.reject(coop, refused, self.max_rejected, self._clock_ms())
        self._lot.unpark(coop, done)
        return counts

    def _inspect_all(self, messages: list[bytes]) -> list[Inspection]:
        """The batch on the verifier; should anything raise, line by line with the belt."""
        try:
            return self._verifier.inspect(messages)
        except Exception:  # one line nobody foresaw: find it, and give it its verdict
            return [_inspect(m) for m in messages]


def _inspect(message: bytes) -> Inspection:
    """:func:`inspect`, with any failure to decode a verdict rather than an exception.

    ``inspect`` already answers ``malformed`` for everything the spec names (not JSON,
    nested deeper than 64, repeated members); this is the belt to those braces: one
    message nobody foresaw must not stop a coop's stream.
    """
    try:
        return inspect(message)
    except Exception as exc:  # any failure to decode is the message's verdict
        return Inspection(None, Verdict.MALFORMED, f"cannot be decoded: {type(exc).__name__}")


def _count(counts: IntakeCounts, outcome: Outcome) -> bool:
    """Count ``outcome``; True when it is a rejection (to be recorded)."""
    verdict = outcome.verdict
    if verdict == Verdict.OK:
        counts.accepted += 1
    elif verdict == Verdict.DUPLICATE:
        counts.duplicates += 1
    elif verdict == Verdict.FORK:
        counts.forks += 1
    else:
        counts.rejected += 1
        counts.rejected_codes[outcome.code or verdict] += 1
        return True
    return False
