"""The ``icn`` exit codes, and how a refusal's code picks one.

Scripts branch on the exit status first and on the printed ``code`` second,
so the status must follow from the code's kind in one place
(:mod:`icn.domain.refusals`), never from a list kept beside it. Every kind
of refusal is a refused request today (1): a script that wants to retry an
``unavailable`` refusal reads the code.
"""

from __future__ import annotations

from icn.domain.refusals import Kind, lookup

OK = 0
REFUSED = 1
"""A failed check or a refused request (the one-line reason names its code)."""
USAGE = 2
"""Wrong usage, or the data dir is held by another process."""
INTERRUPTED = 130

KIND_EXIT = {
    Kind.INVALID: REFUSED,
    Kind.FORBIDDEN: REFUSED,
    Kind.CONFLICT: REFUSED,
    Kind.UNAVAILABLE: REFUSED,
}


def exit_code_for(code: str) -> int:
    """The exit status for an error with this ``code`` (a refusal code or another error's)."""
    found = lookup(code)
    return KIND_EXIT[found.kind] if found is not None else REFUSED
