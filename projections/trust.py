"""The trust read models: every attestation, revocation and epoch, from the trust events.

Both tables only ever grow (one row per event, written by the event that made
it), so a batch costs one insert per trust event and replay compares them row
by row. The *live* graph is a question asked of them, not a table kept up to
date: an attestation counts while no later one by the same truster about the
same subject in the same context exists and no revocation names it (expiry is
judged when read, against the reader's clock). The rules already refused
everything else, so nothing here checks who may say what.

Standings are not projected: the event carries only their digest. The rules
keep each member's standing at the last epoch in ``coop_state``, and the
standing at every epoch, as they compute it, in ``trust_standing_history``
(written by the write path, see ``infrastructure/store/standing_history``).
Replay rebuilds and compares both.
"""

from __future__ import annotations

from icn.domain.trust import bodies as b
from icn.projections.ports import AppendTable, Changes, Fact, Projection

ATTESTATIONS = AppendTable(
    "trust_attestations",
    key=("coop", "leaf"),
    values=(
        "event_id",
        "context",
        "truster",
        "subject",
        "score_ppm",
        "ts",
        "expires_ts",
        "note",
    ),
)
REVOCATIONS = AppendTable(
    "trust_revocations",
    key=("coop", "attestation"),
    values=("leaf", "event_id"),
)
EPOCHS = AppendTable(
    "trust_epochs",
    key=("coop", "context", "epoch"),
    values=("leaf", "event_id", "as_of", "count", "digest", "ts"),
)


class Attestations:
    """One row per ``trust.AttestationRecorded``, at its leaf."""

    name = "trust.attestations"
    tables = (ATTESTATIONS,)

    def apply(self, leaf: int, event: Fact, changes: Changes) -> None:
        if event.type != b.ATTESTATION_RECORDED:
            return
        body = event.body
        changes.insert(
            ATTESTATIONS,
            (
                event.coop,
                leaf,
                event.id,
                body["context"],
                event.author,
                body["subject"],
                body["score_ppm"],
                event.ts,
                body.get("expires_ts"),
                body.get("note"),
            ),
        )


class Revocations:
    """One row per ``trust.AttestationRevoked``, under the attestation it withdrew."""

    name = "trust.revocations"
    tables = (REVOCATIONS,)

    def apply(self, leaf: int, event: Fact, changes: Changes) -> None:
        if event.type == b.ATTESTATION_REVOKED:
            changes.insert(REVOCATIONS, (event.coop, event.body["attestation"], leaf, event.id))


class Epochs:
    """One row per ``trust.StandingPublished``: every epoch of every context."""

    name = "trust.epochs"
    tables = (EPOCHS,)

    def apply(self, leaf: int, event: Fact, changes: Changes) -> None:
        if event.type != b.STANDING_PUBLISHED:
            return
        body = event.body
        changes.insert(
            EPOCHS,
            (
                event.coop,
                body["context"],
                body["epoch"],
                leaf,
                event.id,
                body["as_of"],
                body["count"],
                body["digest"],
                event.ts,
            ),
        )


TRUST_PROJECTIONS: tuple[Projection, ...] = (Attestations(), Revocations(), Epochs())
"""Every projection of the trust capability, in the order a runner applies them."""
