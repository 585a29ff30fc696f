"""What the coop's own DID does, signed by the node that keeps its key.

Two duties follow from recorded facts rather than from anyone's request:
a dispute resolution that orders money back is carried out by an entry of
the coop's DID (spec section 6: the coop's DID may debit any account when a
recorded decision orders it), linked by ``ledger.DisputeSettled``; and
demurrage, where a currency's policy asks for it, is charged once per period
to the coop account. Both run in the node's background loop and on demand
from the CLI; running them twice does nothing the second time. Several nodes may
keep the coop's key and run them at once, so each event is computed from its
trigger alone, ``ts`` included: a settlement is dated at the resolution's trusted
time, a demurrage charge at the end of its period (never before the coop chain's
head). Two nodes racing sign the same bytes, and the slower one's events are
duplicates of the faster one's; one that computed on an older log finds, when
refused, the duty done by the other, and leaves it. The same round
publishes the standing epochs that are due (:mod:`icn.application.trust_epochs`)
and closes and executes proposals (:mod:`icn.application.governance_duties`), then
carries out contract invocations and runs contract schedules
(:mod:`icn.application.contract_duties`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

from nacl.signing import SigningKey

from icn.application.authoring import BodyOf, EventAuthor
from icn.application.compute_duties import ComputeDuties
from icn.application.contract_duties import ContractDuties
from icn.application.coop_view import decode_record
from icn.application.errors import ApplicationError, BatchRefused
from icn.application.governance_duties import GovernanceDuties
from icn.application.ports import EventStore
from icn.application.queries import coop_of
from icn.application.trust_epochs import TrustEpochs
from icn.domain.coop.records import AccountRecord, CoopRecord, DisputeRecord, DisputeStatus
from icn.domain.events.bodies import ENTRY_RECORDED
from icn.domain.events.envelope import Event
from icn.domain.ledger import bodies as lb
from icn.domain.ledger.demurrage import charges, periods_due
from icn.domain.ledger.rules import ordered_transaction
from icn.domain.refusals import Code

MAX_TRANSACTIONS = 64
"""Spec section 6: at most 64 transactions per entry."""

KeyFor = Callable[[str], SigningKey | None]
"""The coop's signing key if this node holds it, else ``None``."""


def _records(store: EventStore, coop: str, kind: str) -> list[Any]:
    return [decode_record(kind, value) for _, value in store.state_records(coop, kind)]


class CoopDuties:
    """Use case: settle resolved disputes and charge demurrage, for coops whose key we hold."""

    def __init__(
        self,
        store: EventStore,
        author: EventAuthor,
        key_for: KeyFor,
        epochs: TrustEpochs | None = None,
        governance: GovernanceDuties | None = None,
    ) -> None:
        self._store = store
        self._epochs = epochs
        """Standing epochs that are due are published in the same round."""
        self._governance = governance
        self._contracts = ContractDuties(store, author)
        """Judged contract invocations are carried out, and due schedules run, in the same round."""
        """Proposals due are closed, and accepted ones executed, in the same round."""
        self._author = author
        self._key_for = key_for
        self.failures: list[tuple[str, str, ApplicationError]] = []

    def unsettled(self, coop: str) -> list[DisputeRecord]:
        """Resolutions that ordered money to move and have no settlement yet."""
        return [
            d
            for d in _records(self._store, coop, DisputeRecord.kind)
            if d.status == DisputeStatus.RESOLVED and d.refund is not None
        ]

    def settle(self, coop: str, dispute: DisputeRecord, key: SigningKey) -> list[Event]:
        """The entry the resolution ordered, and the link from the dispute to it, atomically."""
        record = coop_of(self._store, coop)
        assert record is not None
        tx = {**ordered_transaction(dispute, record.did)}
        tx["memo"] = f"dispute {dispute.id[:12]}: {dispute.outcome}"
        items: list[tuple[str, BodyOf]] = [
            (ENTRY_RECORDED, {"transactions": [tx]}),
            (lb.DISPUTE_SETTLED, lambda before: {"dispute": dispute.id, "entry": before[0].id}),
        ]
        try:
            events, _ = self._author.submit(key, coop, items, at=dispute.closed_ms)
        except BatchRefused as refused:
            if refused.code == Code.DISPUTE_CLOSED.value and self._settled(coop, dispute.id):
                return []  # another node keeping the coop's key settled it first
            raise
        return events

    def _settled(self, coop: str, dispute_id: str) -> bool:
        raw = self._store.state_get(coop, DisputeRecord.kind, dispute_id)
        found = decode_record(DisputeRecord.kind, raw) if raw is not None else None
        return isinstance(found, DisputeRecord) and found.settlement is not None

    def charge_demurrage(self, coop: str, key: SigningKey, now_ms: int) -> list[Event]:
        """Every whole period due, per currency with a demurrage policy."""
        record = coop_of(self._store, coop)
        if record is None:
            return []
        signed: list[Event] = []
        for currency, policy in sorted(record.policy.demurrage.items()):
            for period_end in periods_due(
                policy, record.demurrage_until.get(currency), record.founded_ms, now_ms
            ):
                signed += self._charge_period(coop, record, currency, period_end, key)
        return signed

    def _charge_period(
        self, coop: str, record: CoopRecord, currency: str, period_end: int, key: SigningKey
    ) -> list[Event]:
        accounts: list[AccountRecord] = _records(self._store, coop, AccountRecord.kind)
        balances = [(a.did, a.balance) for a in accounts if a.currency == currency]
        due = charges(record.policy.demurrage[currency], balances, record.did)
        day = datetime.fromtimestamp(period_end / 1000, UTC).date().isoformat()
        items: list[tuple[str, BodyOf]] = []
        for start in range(0, len(due), MAX_TRANSACTIONS):
            chunk = due[start : start + MAX_TRANSACTIONS]
            txs = [
                {
                    "from": c.did,
                    "to": record.did,
                    "amount": c.amount,
                    "currency": currency,
                    "memo": f"demurrage to {day}",
                }
                for c in chunk
            ]
            items.append((ENTRY_RECORDED, {"transactions": txs}))
        n = len(items)
        items.append(
            (
                lb.DEMURRAGE_CHARGED,
                lambda before: {
                    "currency": currency,
                    "period_end": period_end,
                    "entries": [e.id for e in before[:n]],
                },
            )
        )
        try:
            events, _ = self._author.submit(key, coop, items, at=period_end)
        except BatchRefused as refused:
            now = coop_of(self._store, coop)
            until = now.demurrage_until.get(currency, 0) if now is not None else 0
            if refused.code == Code.ALREADY_CHARGED.value and until >= period_end:
                return []  # another node keeping the coop's key charged it first
            raise
        return events

    def run(self, now_ms: int) -> list[Event]:
        """One pass over every coop whose key this node holds.

        Each duty stands alone: one that is refused (recorded in
        :attr:`failures`, for the caller to log) never keeps the others, or
        other coops, from being done.
        """
        done: list[Event] = []
        self.failures = []
        for coop in self._store.coops():
            key = self._key_for(coop)
            if key is None:
                continue
            duties: list[tuple[str, Callable[[], list[Event]]]] = [
                (f"settle dispute {d.id}", partial(self.settle, coop, d, key))
                for d in self.unsettled(coop)
            ]
            duties.append(("charge demurrage", partial(self.charge_demurrage, coop, key, now_ms)))
            duties += self._epochs.duties(coop, key) if self._epochs else []
            duties += self._governance.duties(coop, key) if self._governance else []
            duties += self._contracts.duties(coop, key, now_ms)
            duties += ComputeDuties(self._store, self._author).duties(coop, key, now_ms)
            for what, duty in duties:
                try:
                    done += duty()
                except ApplicationError as exc:
                    self.failures.append((coop, what, exc))
        return done
