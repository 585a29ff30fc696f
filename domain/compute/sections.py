"""The few facts about a module's binary that wasmtime's Python API does not expose.

Whether a module has a start section and how many tables it defines are only
visible in the binary itself (WebAssembly core spec §5.5: a module is a magic
number, a version and a sequence of sections, each an id byte and a LEB128
size). This reads section headers and the first count of two sections; it
never interprets code. It is run on bytes that wasmtime has already validated,
and refuses anything else by raising ``ValueError``.
"""

from __future__ import annotations

from dataclasses import dataclass

MAGIC = b"\x00asm"
VERSION = b"\x01\x00\x00\x00"
_TABLE, _MEMORY, _START = 4, 5, 8


@dataclass(frozen=True)
class Layout:
    """What the section headers say: a start function, and the defined tables and memories."""

    start: bool
    tables: int
    memories: int


def _leb_u32(data: bytes, pos: int) -> tuple[int, int]:
    """An unsigned LEB128 of at most 5 bytes at ``pos``: (value, position after it)."""
    value = shift = 0
    for _ in range(5):
        if pos >= len(data):
            raise ValueError("truncated LEB128")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
    raise ValueError("LEB128 longer than 5 bytes")


def layout(binary: bytes) -> Layout:
    """The :class:`Layout` of a WebAssembly binary module."""
    if binary[:4] != MAGIC or binary[4:8] != VERSION:
        raise ValueError("not a WebAssembly 1.0 binary module")
    pos, start, tables, memories = 8, False, 0, 0
    while pos < len(binary):
        section = binary[pos]
        size, body = _leb_u32(binary, pos + 1)
        end = body + size
        if end > len(binary):
            raise ValueError("section past the end of the module")
        if section == _START:
            start = True
        elif section == _TABLE:
            tables = _leb_u32(binary, body)[0]
        elif section == _MEMORY:
            memories = _leb_u32(binary, body)[0]
        pos = end
    return Layout(start=start, tables=tables, memories=memories)
