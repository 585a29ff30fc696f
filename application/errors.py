"""Errors the use cases raise; interfaces map each to one exit code or one problem ``code``."""

from __future__ import annotations

from icn.domain.identity.did import is_valid_did
from icn.domain.refusals import Code


class ApplicationError(Exception):
    """Base of every error a use case raises on purpose.

    ``code`` is stable (it ends up in RFC 9457 problem documents and CLI JSON);
    the message is for people.
    """

    code = "error"


class BatchRefused(ApplicationError):
    """An all-or-nothing batch had a bad line; nothing of it was stored."""

    code = "batch-refused"

    def __init__(self, line: int, verdict: str, reason: str, code: str = "") -> None:
        super().__init__(f"line {line}: {code or verdict}: {reason}")
        self.line = line
        self.verdict = verdict
        self.reason = reason
        self.code = code or verdict
        """The line's own stable code: a verdict, or the node rule that refused it."""

    def __reduce__(self) -> tuple[type[BatchRefused], tuple[int, str, str, str]]:
        """Pickled as its fields (a writer process answers refusals across a pipe)."""
        return (BatchRefused, (self.line, self.verdict, self.reason, self.code))


class StoreBusy(ApplicationError):
    """Other writers kept winning the race for the log; try again later."""

    code: str = Code.STORE_BUSY


class NotFound(ApplicationError):
    """The thing asked for does not exist in this node's log."""

    code = "not-found"


class InvalidRequest(ApplicationError):
    """A request that can never succeed as given (sizes out of range, …)."""

    code = "invalid-request"


class InvalidDidError(InvalidRequest):
    """A DID that does not decode (spec section 1), wherever a read takes one."""

    code = "invalid-did"


def did_of(value: str) -> str:
    """A DID as typed, or ``invalid-did``: one check for every read model's DID parameter."""
    if not is_valid_did(value):
        raise InvalidDidError(f"{value!r} is not a valid DID")
    return value
