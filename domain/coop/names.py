"""What a member may call themselves: a display name that cannot pass for markup, another
line, reordered text or an invisible difference.

A name is what the member states about themselves (``coop.ProfileUpdated``), so
anyone can choose "Treasurer" or another member's name; pages therefore show it
*beside* the member's DID, never instead of it. What this module refuses is what
would make two names look alike while differing, or make a name change how text
around it reads: control and format characters (bidi overrides and isolates,
zero-width joiners and spaces, soft hyphens), line and paragraph separators,
private-use and unassigned code points, any space but U+0020, spaces at the ends
or doubled, a leading combining mark and long runs of them (stacked marks that
draw over neighbouring lines). The name must already be in NFC, since a signed
body cannot be normalised by the node: the CLI normalises before it signs.

Every replica must decide alike, and ``unicodedata`` follows the Python release
(3.11: Unicode 14.0). Assigned characters keep their category across releases,
so only a code point assigned after the oldest node's Unicode version could be
judged differently; nodes of one coop run one Python minor version (docs/ledger.md).
"""

from __future__ import annotations

import unicodedata

MAX_NAME_CHARS = 64
"""Code points, after NFC: room for a full name in any script, short enough for a list."""
MAX_NAME_BYTES = 256
"""UTF-8 bytes: 64 code points of at most 4 bytes each."""
MAX_MARKS = 3
"""Combining marks in a row. NFC composes most accented letters into one code point;
scripts that stack marks (Vietnamese, Devanagari, Thai) need two or three."""
REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
"""Control, format (bidi overrides and isolates, zero-width characters), surrogate,
private-use, unassigned, line and paragraph separators."""


def normalise(name: str) -> str:
    """The name as a member's tools sign it: NFC, ends trimmed, inner runs of spaces made one."""
    return " ".join(part for part in unicodedata.normalize("NFC", name).split(" ") if part)


def name_problem(name: str) -> str | None:
    """Why ``name`` is refused as a display name, or None when it may be used."""
    if not name:
        return "the name is empty"
    if len(name) > MAX_NAME_CHARS:
        return f"the name has {len(name)} characters; at most {MAX_NAME_CHARS}"
    size = len(name.encode("utf-8", "surrogatepass"))
    if size > MAX_NAME_BYTES:
        return f"the name is {size} bytes of UTF-8; at most {MAX_NAME_BYTES}"
    if unicodedata.normalize("NFC", name) != name:
        return "the name is not in Unicode NFC"
    if name[0] == " " or name[-1] == " " or "  " in name:
        return "the name starts or ends with a space, or has two in a row"
    marks = 0
    for i, ch in enumerate(name):
        category = unicodedata.category(ch)
        if category in REFUSED_CATEGORIES:
            return f"the name has {_code_point(ch)}, a control, format or invisible character"
        if category == "Zs" and ch != " ":
            return f"the name has {_code_point(ch)}; the only space allowed is U+0020"
        if category.startswith("M"):
            marks += 1
            if i == 0:
                return "the name starts with a combining mark"
            if marks > MAX_MARKS:
                return f"the name stacks more than {MAX_MARKS} combining marks"
        else:
            marks = 0
    return None


def _code_point(ch: str) -> str:
    return f"U+{ord(ch):04X}"
