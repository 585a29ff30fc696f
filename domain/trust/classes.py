"""Classes: standing in words, for the text, the credit term, rate limits and governance.

A member's class reads their *normalised* standing: their standing against
a typical member's, capped at 1.0, where "typical" is the mean standing
weighted by standing (Σt²/Σt: the standing of the member an average unit of
trust sits with). So "Partner" means "trusted at least 40 % as much as a
typical member of this coop", whatever its size; a newcomer nobody vouches
for, and a Sybil ring with few attack edges, sit near 0 and are Isolated, and
adding a crowd of them changes no one else's class.
"""

from __future__ import annotations

from enum import StrEnum

from icn.domain.coop.records import TrustPolicy


class TrustClass(StrEnum):
    """From least to most trusted."""

    ISOLATED = "isolated"
    KNOWN = "known"
    PARTNER = "partner"
    FEDERATED = "federated"


def classify(normalised_ppm: int, policy: TrustPolicy) -> TrustClass:
    """The class a normalised standing falls in under the coop's thresholds."""
    if normalised_ppm >= policy.federated_ppm:
        return TrustClass.FEDERATED
    if normalised_ppm >= policy.partner_ppm:
        return TrustClass.PARTNER
    if normalised_ppm >= policy.known_ppm:
        return TrustClass.KNOWN
    return TrustClass.ISOLATED
