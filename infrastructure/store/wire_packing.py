"""How ``stored_events.state`` holds an event's wire bytes: verbatim, or deflated (PostgreSQL).

PostgreSQL keeps each stored event in a heap row with a 24-byte header, 8-byte
alignment and whole rows per 8 KiB page; at 644 wire bytes an event took 747
bytes there, 39 % of the store's 1,933 per event (3.00x the wire, issue 13's target
2.5x). Its own compression (pglz, no lz4 in this build) keeps a result only if it
saves 25 % and finds nothing to match in one event: ids, signatures and DIDs are
random. Deflate with a fixed dictionary does: the dictionary holds what every
event repeats (the envelope's member names, DID prefixes, the common types), and
Huffman coding packs the hex (4 bits of each 8). A ledger entry of 644 bytes
stores as about 315 (``bench/storage.py``).

SQLite is left verbatim: it stores rows at their size (1.90x the wire, within the
target), and its one-statement page read (``event_store.PAGE_SQL``) joins the wires
as text in SQL.

The packed form is ``PACKED_V1`` then raw deflate (no zlib header) against
:data:`DICTIONARY_V1`. A wire is a JSON object and starts with ``{``, so the first
byte tells the forms apart and a store may hold both (rows from before the
packing, see ``event_store.pack_stored_wires``). The dictionary is part of the
stored format: it never changes; another one would be another first byte.
Unpacking gives the exact bytes that were signed, so id and signature are checked
on them as before.
"""

from __future__ import annotations

import zlib

from icn.application.ports import StoreError

PACKED_V1 = 0x01
"""First byte of a state deflated against :data:`DICTIONARY_V1`."""

DICTIONARY_V1 = (
    b'"coop.Founded""coop.MemberAdmitted""log.CheckpointIssued""trust.AttestationRecorded"'
    b'"trust.StandingPublished""governance.VoteCast""governance.ProposalSubmitted"'
    b'"body":{"transactions":[{"amount":,"currency":"hours","from":"did:icn:z6Mk"},{"amount":'
    b'"memo":"","to":"did:icn:z6Mk"}]},"coop":"","id":"","prev":null,"prev":"","seq":,"sig":"",'
    b'"ts":17,"type":"ledger.EntryRecorded","v":1}{"author":"did:icn:z6Mk'
)
"""What events repeat, the most common last (deflate reaches back into it as if it
preceded each event). Frozen: rows packed against it are read with it forever."""

_LEVEL = 6
_WBITS = -15  # raw deflate: no header or checksum (the event's id covers its bytes)


def pack(wire: bytes) -> bytes:
    """``wire`` as PostgreSQL stores it."""
    c = zlib.compressobj(_LEVEL, zlib.DEFLATED, _WBITS, 8, zlib.Z_DEFAULT_STRATEGY, DICTIONARY_V1)
    return bytes((PACKED_V1,)) + c.compress(wire) + c.flush()


def unpack(state: bytes) -> bytes:
    """The wire bytes of a stored state, packed or verbatim.

    Raises :class:`StoreError` for a state in neither form (a store written by a later
    release, or damaged), rather than handing on bytes that are not the event.
    """
    first = state[:1]
    if first == b"{":
        return state
    if first == bytes((PACKED_V1,)):
        d = zlib.decompressobj(_WBITS, DICTIONARY_V1)
        try:
            wire = d.decompress(state[1:]) + d.flush()
        except zlib.error as exc:
            raise StoreError(f"a packed stored event does not inflate: {exc}") from None
        if not d.eof or d.unused_data:
            raise StoreError("a packed stored event is cut short or has bytes after its end")
        return wire
    raise StoreError(f"a stored event in an unknown form (first byte {state[:1]!r})")
