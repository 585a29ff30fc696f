"""The governance duties: the coop's DID closes proposals when due and executes accepted ones.

Both are signed with the coop's key by every node that keeps it, so two
such nodes must sign the same bytes or they fork the coop's chain. Each
event is therefore computed from its trigger alone: a close from the
proposal and the ballots as the log stands (the recount of
:mod:`icn.domain.governance.closing`, which every node repeats when it
judges it), dated when the tally was due; an execution from the proposal's
action, dated the same way. ``ts`` never goes back along the coop chain, so
it is the later of that moment and the chain head's ``ts``. Two nodes racing
produce the same event ids and the store keeps one; the loser's next attempt
finds the proposal closed or executed and does nothing.

An execution appends the action's effect events and the
``governance.ProposalExecuted`` that lists them in one atomic batch (an
effect that is in the log without its execution, signed by some other
holder of the key, is listed rather than signed again). If an
effect is refused (the treasury over its limit, a member already admitted),
the refusal's code is recorded instead, with no effects: never dropped
silently, never executed twice (the rules refuse a second execution).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import msgspec
from nacl.signing import SigningKey

from icn.application.append import REFUSED, AppendEvents
from icn.application.errors import BatchRefused
from icn.application.ports import EventStore
from icn.application.trust_epochs import CommittedState
from icn.domain.contract import bodies as contract_bodies
from icn.domain.coop import bodies as cb
from icn.domain.coop.records import CoopRecord
from icn.domain.events.bodies import ENTRY_RECORDED
from icn.domain.events.envelope import Event, sign_event
from icn.domain.events.verdicts import Verdict
from icn.domain.governance import actions as a
from icn.domain.governance import bodies as gb
from icn.domain.governance import state
from icn.domain.governance.closing import recount
from icn.domain.governance.links import budget_transaction, pretrusted_policy
from icn.domain.governance.records import ProposalRecord, ProposalState
from icn.domain.identity.did import did_from_public_key
from icn.domain.ledger import bodies as lb
from icn.domain.refusals import Code
from icn.domain.trust import bodies as tb

ATTEMPTS = 3
"""Signings per duty before leaving it to the next round."""
RACES = {Verdict.FORK.value, Verdict.BROKEN_LINK.value, Verdict.GAP.value}
"""Refusals meaning "another writer extended the coop chain": sign again on the new head."""
DONE_ELSEWHERE = {Code.ALREADY_CLOSED.value, Code.ALREADY_EXECUTED.value}
"""Another node holding the coop key did this duty first: nothing left to do."""

Item = tuple[str, dict[str, Any]]
"""An event type and its body, before signing."""


def _plain(struct: msgspec.Struct) -> dict[str, Any]:
    """A body struct as JSON-ready builtins (the variant tag dropped)."""
    raw = msgspec.to_builtins(struct)
    assert isinstance(raw, dict)
    raw.pop("kind", None)
    return raw


def effects_of(view: CommittedState, coop: CoopRecord, p: ProposalRecord) -> list[Item] | None:
    """The events that carry out ``p``'s action, each naming ``p`` in its ``proposal`` field
    (a budget's entry in its memo: an entry's body is the spec's), computed from the
    proposal and the coop as the log stands; ``None`` for an action no duty executes."""
    act, link = p.action, {"proposal": p.id}
    if isinstance(act, a.TextOnly):
        return []
    if isinstance(act, a.AddMember):
        return [(cb.MEMBER_ADMITTED, {"member": act.member, "roles": list(act.roles), **link})]
    if isinstance(act, a.RemoveMember):
        return [(cb.MEMBER_SUSPENDED, {"member": act.member, "reason": act.reason, **link})]
    if isinstance(act, a.ReinstateMember):
        return [(cb.MEMBER_REINSTATED, {"member": act.member, **link})]
    if isinstance(act, a.ChangePolicy):
        return [(cb.POLICY_CHANGED, {**_plain(act), **link})]
    if isinstance(act, a.SetPretrusted):
        policy = msgspec.to_builtins(pretrusted_policy(coop.policy, act.pretrusted))
        return [(cb.POLICY_CHANGED, {"policy": policy, **link})]
    if isinstance(act, a.AllocateBudget | a.ReclaimBudget):
        tx = budget_transaction(act, coop.did, p.id)
        return [(ENTRY_RECORDED, {"transactions": [tx]})]
    if isinstance(act, a.Freeze):
        return [(lb.ACCOUNT_FROZEN, {**_plain(act), **link})]
    if isinstance(act, a.Unfreeze):
        return [(lb.ACCOUNT_UNFROZEN, {"member": act.member, **link})]
    if isinstance(act, a.AmendCharter):
        return [(gb.CHARTER_AMENDED, {**_plain(act), **link})]
    if isinstance(act, a.ChangeDomain):
        exists = state.domain(view, coop, act.domain) is not None
        kind = gb.DOMAIN_CHANGED if exists else gb.DOMAIN_DEFINED
        return [(kind, {**_plain(act), **link})]
    if isinstance(act, a.RevokeTrust):
        return [(tb.ATTESTATION_REVOKED, {"attestation": act.attestation, **link})]
    if isinstance(act, a.EscalatedDispute):
        # The ruling as the dispute's resolution; the coop duty that settles resolutions
        # then moves the money it orders (ledger.DisputeSettled), as for a mediator's.
        ruling = {"dispute": act.dispute, "outcome": act.ruling, "refund": act.refund}
        note = f"ruled by proposal {p.id}"
        return [(lb.DISPUTE_RESOLVED, {**ruling, "note": note, **link})]
    if isinstance(act, a.DeployContract):
        return [(contract_bodies.DEPLOYED, {**_plain(act), **link})]
    return None


def close_body(view: CommittedState, coop: CoopRecord, p: ProposalRecord) -> dict[str, Any]:
    """The ``governance.ProposalClosed`` body: the recount as the log stands."""
    t = recount(view, coop, p)
    return {
        "proposal": p.id,
        "outcome": t.outcome,
        "counts": msgspec.to_builtins(t.counts),
        "eligible": t.eligible,
        "counted": t.counted,
        "ballots_digest": t.ballots_digest,
    }


class GovernanceDuties:
    """Use case: close the proposals that are due and execute the accepted ones."""

    def __init__(self, store: EventStore, append: AppendEvents, clock_ms: Callable[[], int]):
        self._store = store
        self._append = append
        self._clock_ms = clock_ms

    def _proposals(self, coop: str) -> list[ProposalRecord]:
        found = CommittedState(self._store).scan(coop, ProposalRecord.kind, "")
        return [r for r in found if isinstance(r, ProposalRecord)]

    def due_closes(self, coop: str) -> list[ProposalRecord]:
        """Open proposals whose tally is due at the node's trusted clock."""
        now = self._clock_ms()
        return [
            p
            for p in self._proposals(coop)
            if p.state == ProposalState.OPEN and p.tally_due() <= now
        ]

    def due_executions(self, coop: str) -> list[ProposalRecord]:
        """Accepted proposals not executed yet whose action a duty carries out."""
        view = CommittedState(self._store)
        record = view.coop(coop)
        if record is None:
            return []
        return [
            p
            for p in self._proposals(coop)
            if p.state == ProposalState.ACCEPTED
            and p.execution is None
            and effects_of(view, record, p) is not None
        ]

    def _sign(self, coop: str, key: SigningKey, ts: int, items: list[Item]) -> list[Event]:
        """The items on top of the coop chain's head; the last body may list the others' ids."""
        author = did_from_public_key(bytes(key.verify_key))
        head = self._store.head(coop, author)
        seq, prev = (head.seq, head.id) if head else (0, None)
        ts = max(ts, head.ts if head else 0)
        events: list[Event] = []
        for kind, body in items:
            if kind == gb.PROPOSAL_EXECUTED and "effects" in body and events:
                body = {**body, "effects": [e.id for e in events]}
            event = sign_event(key, coop=coop, seq=seq + 1, prev=prev, ts=ts, type=kind, body=body)
            events.append(event)
            seq, prev = event.seq, event.id
        return events

    def _run(
        self, coop: str, key: SigningKey, build: Callable[[], tuple[int, list[Item]] | None]
    ) -> list[Event]:
        """Sign what ``build`` computes and append it atomically, again when the chain moved."""
        for attempt in range(ATTEMPTS):
            built = build()
            if built is None:
                return []
            events = self._sign(coop, key, *built)
            try:
                self._append.append([e.wire_bytes() for e in events], atomic=True)
            except BatchRefused as refused:
                if refused.code in DONE_ELSEWHERE:
                    return []
                if refused.code in RACES and attempt < ATTEMPTS - 1:
                    continue
                raise
            return events
        raise AssertionError("unreachable")

    def close(self, coop: str, proposal_id: str, key: SigningKey) -> list[Event]:
        """Close one proposal with its recount, dated when its tally was due."""

        def build() -> tuple[int, list[Item]] | None:
            view = CommittedState(self._store)
            record = view.coop(coop)
            p = state.proposal(view, coop, proposal_id)
            if record is None or p is None or p.state != ProposalState.OPEN:
                return None
            return p.tally_due(), [(gb.PROPOSAL_CLOSED, close_body(view, record, p))]

        return self._run(coop, key, build)

    def execute(self, coop: str, proposal_id: str, key: SigningKey) -> list[Event]:
        """Carry out one accepted proposal with its effects, or record why an effect was refused."""
        failed: list[str] = []
        effect_lines: list[int] = [0]
        """How many effect events the last batch held (lines after them are the execution)."""

        def build() -> tuple[int, list[Item]] | None:
            view = CommittedState(self._store)
            record = view.coop(coop)
            p = state.proposal(view, coop, proposal_id)
            if record is None or p is None or p.execution is not None:
                return None
            if p.state != ProposalState.ACCEPTED:
                return None
            effects = effects_of(view, record, p)
            if effects is None:
                return None
            if p.carried:  # its effect is in the log already, without the execution: list it
                done_by = {"proposal": p.id, "effects": list(p.carried)}
                return p.tally_due(), [(gb.PROPOSAL_EXECUTED, done_by)]
            if failed:
                return p.tally_due(), [
                    (gb.PROPOSAL_EXECUTED, {"proposal": p.id, "failed": failed[0]})
                ]
            effect_lines[0] = len(effects)
            done = {"proposal": p.id, "effects": []}
            return p.tally_due(), [*effects, (gb.PROPOSAL_EXECUTED, done)]

        try:
            return self._run(coop, key, build)
        except BatchRefused as refused:
            if refused.verdict != REFUSED or refused.line > effect_lines[0]:
                raise  # not an effect's refusal: the execution itself is wrong, say so
            failed.append(refused.code)  # an effect refused by its rules: record it
            return self._run(coop, key, build)

    def close_and_execute(self, coop: str, proposal_id: str, key: SigningKey) -> list[Event]:
        """Close a due proposal and, when accepted, execute it at once (same ``ts``)."""
        closed = self.close(coop, proposal_id, key)
        p = state.proposal(CommittedState(self._store), coop, proposal_id)
        if p is None or p.state != ProposalState.ACCEPTED:
            return closed
        return closed + self.execute(coop, proposal_id, key)

    def duties(self, coop: str, key: SigningKey) -> list[tuple[str, Callable[[], list[Event]]]]:
        """Each due close (executed at once when accepted), then the executions left over
        (a round that stopped between the two, or a node that received the close)."""
        found: list[tuple[str, Callable[[], list[Event]]]] = [
            (f"close proposal {p.id}", partial(self.close_and_execute, coop, p.id, key))
            for p in self.due_closes(coop)
        ]
        found += [
            (f"execute proposal {p.id}", partial(self.execute, coop, p.id, key))
            for p in self.due_executions(coop)
        ]
        return found
