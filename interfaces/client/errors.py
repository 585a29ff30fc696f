"""What the client raises: every error has a stable ``code`` and a one-line message.

Kept free of httpx so the CLI can register these classes for its error
handler without paying for the HTTP stack on commands that never call a node.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from icn.interfaces.client.models import Placed

_LINE_PREFIX = re.compile(r"^line \d+: ")


class ClientError(Exception):
    """Base of the client's errors; ``code`` is what scripts match on."""

    code = "client-error"


class ApiError(ClientError):
    """The node refused a request (an RFC 9457 problem document), or could not be reached.

    ``line`` is 1-based and counts from the start of everything the caller
    handed in, not from the start of the chunk the node saw. ``placed`` lists
    what earlier chunks already stored, since only one chunk is all-or-nothing.
    """

    def __init__(self, status: int, code: str, detail: str, line: int | None = None) -> None:
        # The node writes "line N: " into the detail too; keep the bare reason so
        # the number can be re-based without leaving a stale one in the text.
        self.detail = _LINE_PREFIX.sub("", detail, count=1) if line is not None else detail
        self.status = status
        self.code = code
        self.line = line
        self.placed: list[Placed] = []
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"line {self.line}: {self.detail}" if self.line is not None else self.detail

    def __repr__(self) -> str:
        return f"ApiError(status={self.status}, code={self.code!r}, line={self.line})"

    def shifted(self, offset: int) -> ApiError:
        """The same error with its line counted ``offset`` lines further on."""
        line = None if self.line is None else self.line + offset
        return ApiError(self.status, self.code, self.detail, line)


class InputError(ClientError):
    """A line the client would not send (not a JSON object): caught before any request."""

    def __init__(self, line: int, reason: str, code: str = "malformed") -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line
        self.code = code


class SessionError(ClientError):
    """No usable stored session: missing, expired, or for another node."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
