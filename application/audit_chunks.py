"""What an audit's workers hand back for a chunk of a log: judged facts, not events.

An audit judges every event in log order, so the caller must see them all; if it
decodes each event again (the typed body too, ~26 µs of a verify's ~85 µs) it is
the bottleneck of two cores. But most chunks of a log are one run of ordinary
events: each passes its stateless checks and continues its author's chain from
the event before it in the chunk. A worker can find that out alone, judging
each event (:func:`~icn.domain.events.chain.judge`, the same rule) against the
chunk's own chains, and assume only that each author's first event in the
chunk continues what came before. It hands back that assumption (per author:
the first seq, prev and ts), the ids, the balance changes and the few events
the caller needs whole; the caller checks one boundary per author instead of
one event per line. Anything else (a refused line, a duplicate, a check that
needs the log's state) comes back as plain inspections, judged one by one.
"""

from __future__ import annotations

import mmap
from collections.abc import Iterator
from pathlib import Path

import msgspec

from icn.domain.events.bodies import CHECKPOINT_ISSUED, COOP_FOUNDED, ENTRY_RECORDED
from icn.domain.events.chain import ChainHead, judge
from icn.domain.events.envelope import Inspection, inspect
from icn.domain.events.verdicts import Verdict
from icn.domain.ledger.balances import Balances, BalanceSheet

KEPT_TYPES = frozenset({CHECKPOINT_ISSUED})
"""Types whose events a store audit needs whole (checked against the recomputed tree)."""


class Run(msgspec.Struct):
    """One author's events in a clean chunk: consecutive in the chain, in log order.

    The caller accepts the run if its head at the chunk's start is ``first_seq - 1``
    with id ``first_prev`` and a ts not after ``first_ts`` (or absent, for seq 1).
    """

    coop: str
    author: str
    first_seq: int
    first_prev: str | None
    first_ts: int
    ids: list[str]
    last_ts: int

    @property
    def head(self) -> ChainHead:
        """The author's head once the run is accepted."""
        return ChainHead(self.first_seq + len(self.ids) - 1, self.ids[-1], self.last_ts)

    def continues(self, head: ChainHead | None) -> bool:
        """Whether the run's first event is ``ok`` after ``head`` (spec section 4)."""
        if head is None:
            return self.first_seq == 1
        return (
            self.first_seq == head.seq + 1
            and self.first_prev == head.id
            and self.first_ts >= head.ts
        )


class CleanChunk(msgspec.Struct, frozen=True):
    """A chunk whose every event is ``ok`` if each run continues its author's chain."""

    count: int
    runs: list[Run]
    founded: list[tuple[str, str]]
    """(coop, author) of each ``coop.Founded``, in order: the coop's DID is its first."""
    balances: Balances
    """The chunk's ``ledger.EntryRecorded`` transactions summed, by first appearance."""
    kept: list[int]
    """Positions in the chunk of the events of :data:`KEPT_TYPES`."""


ChunkFacts = CleanChunk | list[Inspection]
"""A clean chunk's facts, or the inspection of every line for the caller to judge."""


class _NeedsState(Exception):
    """A check asked for state the chunk does not have: the caller judges the chunk."""


class _ChunkChains:
    """The chains as far as one chunk shows them (a :class:`ChainView`).

    An author's first event in the chunk sees a head that it continues (the
    assumption the caller checks); anything that needs more of the log raises
    :class:`_NeedsState`.
    """

    def __init__(self) -> None:
        self.heads: dict[tuple[str, str], ChainHead] = {}
        self.assume: ChainHead | None = None

    def head(self, coop: str, author: str) -> ChainHead | None:
        got = self.heads.get((coop, author))
        return got if got is not None else self.assume

    def id_at(self, coop: str, author: str, seq: int) -> str | None:
        raise _NeedsState

    def coop_did(self, coop: str) -> str | None:
        raise _NeedsState


def chunk_facts(lines: list[bytes]) -> ChunkFacts:
    """Inspect ``lines`` and, when they form a clean chunk, reduce them to its facts.

    Runs in a worker (module level, so a process pool can call it); the work
    beside ``inspect`` is about 2 µs per event.
    """
    inspections = [inspect(line) for line in lines]
    try:
        clean = _clean(inspections)
    except _NeedsState:
        clean = None
    return inspections if clean is None else clean


def _clean(inspections: list[Inspection]) -> CleanChunk | None:
    view = _ChunkChains()
    runs: dict[tuple[str, str], Run] = {}
    sheet = BalanceSheet()
    founded: list[tuple[str, str]] = []
    kept: list[int] = []
    for i, ins in enumerate(inspections):
        event = ins.event
        if event is None or ins.verdict is not None:
            return None
        key = (event.coop, event.author)
        run = runs.get(key)
        view.assume = (
            None if run is not None or event.seq == 1
            else ChainHead(event.seq - 1, event.prev or "", event.ts)
        )  # fmt: skip
        if judge(ins, view).verdict is not Verdict.OK:
            return None
        if run is None:
            run = runs[key] = Run(event.coop, event.author, event.seq, event.prev, event.ts, [], 0)
        run.ids.append(event.id)
        run.last_ts = event.ts
        view.heads[key] = ChainHead(event.seq, event.id, event.ts)
        if event.type == ENTRY_RECORDED:
            sheet.apply(event.body)
        elif event.type == COOP_FOUNDED:
            founded.append(key)
        if event.type in KEPT_TYPES:
            kept.append(i)
    return CleanChunk(
        count=len(inspections),
        runs=list(runs.values()),
        founded=founded,
        balances=sheet.as_dict(),
        kept=kept,
    )


# -- chunks of a file, read by the workers ------------------------------------------


TAPER = 8
"""The last ranges of a file shrink down to ``lines // TAPER`` lines: a worker that ends
its last range alone idles the other core for half a range on average (~40 ms of 1,000
lines, 2-4 % of an audit of 20,000 events on two cores); an eighth of that costs only a
few more hand-offs."""


def file_ranges(path: Path, lines: int) -> Iterator[tuple[int, int]]:
    """Byte ranges of ``path`` holding ``lines`` lines each, and fewer (down to
    ``lines // TAPER``) once about four ranges are left; each ends just after its last
    newline or at the end of the file. Found by a search for newlines in a map of the
    file, no line copied."""
    size = path.stat().st_size
    if size == 0:
        return
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        start, seen = 0, 0
        while start < size:
            left = (size - start) * seen // start if seen else size  # lines, as so far
            want = lines if left >= 4 * lines else max(lines // TAPER, left // 4, 1)
            end, n = start, 0
            while n < want and end < size:
                found = data.find(b"\n", end)
                end = size if found < 0 else found + 1
                n += 1
            yield start, end
            start, seen = end, seen + n


_range = msgspec.msgpack.Decoder(tuple[int, int])


def encode_range(start: int, end: int) -> bytes:
    """A byte range as the bytes a verifier's ``map`` hands to a worker."""
    return msgspec.msgpack.encode((start, end))


def read_range(path: str, task: bytes) -> list[bytes]:
    """The lines in a range of :func:`file_ranges`, without their newlines."""
    start, end = _range.decode(task)
    with open(path, "rb") as f:
        f.seek(start)
        data = f.read(end - start)
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    return lines


def file_chunk_facts(path: str, tasks: list[bytes]) -> list[tuple[int, ChunkFacts]]:
    """:func:`chunk_facts` of each range, read here (module level, so that a process pool
    can run it with ``path`` bound); with the number of lines each held."""
    out: list[tuple[int, ChunkFacts]] = []
    for task in tasks:
        lines = read_range(path, task)
        out.append((len(lines), chunk_facts(lines)))
    return out
