"""The verdicts of spec section 4, in the order in which they are decided."""

from enum import StrEnum


class Verdict(StrEnum):
    """What a verifier says about one event; the first that applies wins."""

    MALFORMED = "malformed"
    BAD_ID = "bad-id"
    BAD_SIGNATURE = "bad-signature"
    FORK = "fork"
    GAP = "gap"
    BROKEN_LINK = "broken-link"
    DUPLICATE = "duplicate"
    OK = "ok"

    @property
    def acceptable(self) -> bool:
        """True for verdicts that leave a log valid: ``ok`` and ``duplicate``."""
        return self in (Verdict.OK, Verdict.DUPLICATE)
