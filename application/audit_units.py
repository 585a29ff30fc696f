"""A store audit's unit of work: 1,024 leaves of the log, read and checked by a worker.

An audit on two cores is bound by whatever its caller does per event. Reading
every event from the store, shipping it to a worker and appending every leaf to
the recomputed Merkle tree was most of what was left of it once the workers
judged their chunks (:mod:`icn.application.audit_chunks`). So a worker is given
a leaf range, not the events: it reads the range on its own connection
(:class:`~icn.application.ports.LogRanges`), judges it as a chunk, and hashes
its part of the tree. A unit starts at a multiple of 1,024 leaves and is 1,024
long (the last one may be shorter), so in RFC 6962's tree it is one complete
subtree: every node a leaf's stored row holds below the unit's top is the
unit's own and the worker checks it; the caller appends the unit's top as one
node (:meth:`~icn.domain.log.merkle.Frontier.append_subtree`) and checks the
few nodes above it against the tail of the last leaf's row. A checkpoint's
size inside a unit needs the root there: the worker hands back the unit's own
edge at that size, and the edge of the tree at the unit's start followed by it
is the tree's edge at that size (the unit's start is a multiple of every level
below the top).

Anything irregular (a leaf without its entry or its row, an entry out of
place) is reported as such, and the audit then runs one event at a time as it
always did, so that its report names what is wrong.
"""

from __future__ import annotations

from collections.abc import Iterator

import msgspec

from icn.application.audit_chunks import ChunkFacts, CleanChunk, chunk_facts
from icn.application.ports import LogRanges
from icn.domain.log.merkle import Frontier, leaf_hash

UNIT_LEVEL = 10
UNIT = 1 << UNIT_LEVEL
"""Leaves per unit: a power of two, so each whole unit is one complete subtree."""

TAPER_LEVELS = 3
"""The last units of a log shrink down to ``UNIT >> TAPER_LEVELS`` leaves: a worker that
ends its last unit alone idles the other core for half a unit on average (~40 ms, 2-4 %
of an audit of 20,000 events on two cores). Units only ever shrink, so each still starts
at a multiple of its own size and is a complete subtree."""

Task = tuple[str, int, int, int, list[int]]
"""(coop, start, stop, the unit's level, checkpoint sizes strictly inside the unit)."""


def units(size: int) -> Iterator[tuple[int, int, int]]:
    """(start, stop, level) of the units covering leaves 0 to ``size``: :data:`UNIT` long,
    then shorter once about four are left; the last one may be cut short by the end."""
    start, level = 0, UNIT_LEVEL
    while start < size:
        quarter = (size - start) // 4
        while level > UNIT_LEVEL - TAPER_LEVELS and quarter < 1 << level:
            level -= 1
        yield start, min(start + (1 << level), size), level
        start += 1 << level


def encode_task(coop: str, start: int, stop: int, level: int, sizes: list[int]) -> bytes:
    """A unit as the bytes a verifier's ``map`` hands to a worker."""
    return msgspec.msgpack.encode((coop, start, stop, level, sizes))


class UnitTree(msgspec.Struct):
    """A unit's part of the Merkle tree, checked against the stored rows."""

    rows_match: bool
    """Every node below the unit's top in its leaves' stored rows is the recomputed one."""
    edge: list[bytes]
    """The unit's own tree at its end: one hash (its top) when the unit is whole."""
    tail: bytes
    """A whole unit's last stored row past the unit's own nodes: the nodes above it."""
    at: dict[int, list[bytes]]
    """For each asked size inside the unit, the unit's own edge at that size."""


class UnitFacts(msgspec.Struct):
    """What a worker hands back for one unit."""

    start: int
    count: int
    level: int
    """The unit is ``2**level`` leaves long (``count`` is fewer only for the last one)."""
    regular: bool
    """Leaves ``start`` to ``start + count`` each had one entry and one stored row, in place."""
    tree: UnitTree | None
    judged: ChunkFacts | None
    entries: list[tuple[int, str]]
    """(leaf, id) of each event, when ``judged`` is inspections the caller judges one by one."""
    kept: list[bytes]
    """A clean unit's checkpoint events (:data:`~icn.application.audit_chunks.KEPT_TYPES`)."""


_tasks = msgspec.msgpack.Decoder(tuple[str, int, int, int, list[int]])


def unit_facts(ranges: LogRanges, tasks: list[bytes]) -> list[UnitFacts]:
    """Read, judge and hash each unit (module level, so that a process pool can run it
    with ``ranges`` bound: the worker then reads on its own connection)."""
    return [_unit(ranges, _tasks.decode(task)) for task in tasks]


def _unit(ranges: LogRanges, task: Task) -> UnitFacts:
    coop, start, stop, level, sizes = task
    entries = ranges.entries(coop, start, stop)
    rows = ranges.stored_node_rows(coop, start, stop)
    n = stop - start
    regular = (
        len(entries) == n
        and len(rows) == n
        and all(e.leaf_index == start + i for i, e in enumerate(entries))
        and all(leaf == start + i for i, (leaf, _) in enumerate(rows))
    )
    if not regular:
        return UnitFacts(start, len(entries), level, False, None, None, [], [])
    ids = [e.event_id for e in entries]
    tree = _tree(ids, [r for _, r in rows], start, 1 << level, sizes)
    judged = chunk_facts([e.wire for e in entries])
    if isinstance(judged, CleanChunk):
        kept = [entries[i].wire for i in judged.kept]
        return UnitFacts(start, n, level, True, tree, judged, [], kept)
    listed = [(start + i, event_id) for i, event_id in enumerate(ids)]
    return UnitFacts(start, n, level, True, tree, judged, listed, [])


def _tree(ids: list[str], rows: list[bytes], start: int, span: int, sizes: list[int]) -> UnitTree:
    local = Frontier()
    whole = len(ids) == span
    matches, tail = True, b""
    wanted = set(sizes)
    at: dict[int, list[bytes]] = {}
    for i, (event_id, row) in enumerate(zip(ids, rows, strict=True)):
        mine = b"".join(h for *_, h in local.append(leaf_hash(bytes.fromhex(event_id))))
        if whole and i == span - 1:
            matches = matches and row[: len(mine)] == mine
            tail = row[len(mine) :]
        else:
            matches = matches and row == mine
        if start + local.size in wanted and local.size < span:
            at[start + local.size] = local.edge()
    return UnitTree(matches, local.edge(), tail, at)
