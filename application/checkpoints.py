"""Checkpoints: the node's signed statement of each coop's tree.

A checkpoint is both a C2SP signed note and a ``log.CheckpointIssued``
event of the node's own chain, appended through the ordinary write path so
it is verified, replicated and audited like any other event.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec
from nacl.signing import SigningKey

from icn.application.append import AppendEvents
from icn.application.errors import InvalidRequest
from icn.application.ports import EventStore, StoredCheckpoint
from icn.domain.events.bodies import CHECKPOINT_ISSUED
from icn.domain.events.envelope import sign_event
from icn.domain.identity.did import did_from_public_key
from icn.domain.log.checkpoint import sign_checkpoint


class CheckpointPolicy(msgspec.Struct, frozen=True):
    """Issue after ``every_events`` new events, or ``every_seconds`` after the first new one."""

    every_events: int = 1000
    every_seconds: float = 60.0

    def due(self, new_events: int, waited_ms: int) -> bool:
        """True when a checkpoint should be issued now."""
        if new_events <= 0:
            return False
        return new_events >= self.every_events or waited_ms >= self.every_seconds * 1000


class IssueCheckpoint:
    """Use case: sign and append a checkpoint of one coop's log."""

    def __init__(
        self,
        store: EventStore,
        append: AppendEvents,
        key: SigningKey,
        clock_ms: Callable[[], int],
    ) -> None:
        self._store = store
        self._append = append
        self._key = key
        self._clock_ms = clock_ms
        self.node_did = did_from_public_key(bytes(key.verify_key))

    def latest(self, coop: str) -> StoredCheckpoint | None:
        """The node's most recent checkpoint of ``coop``."""
        return self._store.latest_checkpoint(coop, self.node_did)

    def new_events(self, coop: str) -> int:
        """Events appended since this node's latest checkpoint, checkpoints not counted.

        Other nodes' checkpoints arrive by replication; counting them made every
        node of a cluster checkpoint in turn for ever, each answering the last
        one's checkpoint with its own, on an otherwise idle coop.
        """
        latest = self.latest(coop)
        covered = latest.leaf_index + 1 if latest else 0
        others = len(self._store.checkpoints(coop, from_leaf=covered))
        return self._store.tree_size(coop) - covered - others

    def issue(self, coop: str) -> StoredCheckpoint:
        """Return the latest checkpoint if nothing happened since, else sign a new one."""
        latest = self.latest(coop)
        size = self._store.tree_size(coop)
        if (
            latest is not None
            and size == latest.leaf_index + 1
            and latest.size == latest.leaf_index
        ):
            return latest
        if size == 0:
            raise InvalidRequest(f"coop {coop!r} has no events in this node's log")
        root = self._store.root(coop, size)
        note = sign_checkpoint(self._key, coop, size, root)
        head = self._store.head(coop, self.node_did)
        event = sign_event(
            self._key,
            coop=coop,
            seq=head.seq + 1 if head else 1,
            prev=head.id if head else None,
            ts=max(self._clock_ms(), head.ts if head else 0),
            type=CHECKPOINT_ISSUED,
            body={"size": size, "root": root.hex(), "note": note},
        )
        [outcome] = self._append.append([event.wire_bytes()], atomic=True)
        assert outcome.position is not None
        return StoredCheckpoint(
            event_id=event.id,
            coop=coop,
            author=self.node_did,
            size=size,
            root=root.hex(),
            note=note,
            leaf_index=outcome.position,
        )
