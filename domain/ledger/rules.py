"""Rules for money: entries, freezes, disputes and demurrage.

An entry by a member is checked against the payer's membership, freeze and
credit limit *as of trusted time* (``now``: the time the event's stream
position carries, never the author's ``ts``; see :mod:`icn.domain.events.timing`),
so an author cannot move a ramp, a freeze or a period by dating an event,
and every node that replays the same log reaches the same decision. Entries by the
coop's DID (charges, write-offs, reversals a resolution ordered) may debit
any member and are not limited; that is spec section 6's one exception.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from icn.domain.capability import CoopDids, EventType
from icn.domain.coop.records import (
    DAY_MS,
    AccountRecord,
    CoopRecord,
    DisputeRecord,
    DisputeStatus,
    MemberRecord,
    MemberStatus,
    format_amount,
)
from icn.domain.coop.state import (
    CoopView,
    DisputeClaim,
    Effects,
    account_of,
    active_problem,
    founded_coop,
    is_authority,
)
from icn.domain.events.bodies import ENTRY_RECORDED
from icn.domain.governance import actions as ga
from icn.domain.governance.links import Fits, follow_link, is_action
from icn.domain.ledger import bodies as b
from icn.domain.ledger.holds import credit_room
from icn.domain.refusals import Code, Refusal

if TYPE_CHECKING:
    from icn.domain.events.envelope import Event

OPEN = (DisputeStatus.FILED, DisputeStatus.ANSWERED)


def _party_problem(view: CoopView, coop: CoopRecord, did: str, role: str) -> Refusal | None:
    """Who may take part in a member's payment: the coop account or an active member."""
    if did == coop.did:
        return None
    return active_problem(view, coop.coop, did, role)


def limit_for(
    view: CoopView, coop: CoopRecord, member: MemberRecord, currency: str, ts: int
) -> int:
    """The member's credit limit in ``currency`` at ``ts`` (:func:`credit_room`'s)."""
    return credit_room(view, coop, member, currency, ts).limit


def entry_recorded(
    body: b.EntryRecorded, event: Event, view: CoopView, now: int
) -> Refusal | Effects:
    """Move money: checks, then every account touched, once, with its new balance."""
    coop = founded_coop(view, event)
    by_coop = event.author == coop.did
    payer: MemberRecord | None = None
    if not by_coop:
        problem = _party_problem(view, coop, event.author, "payer")
        if problem:
            return problem
        payer = view.member(coop.coop, event.author)
        assert payer is not None
        if payer.is_frozen_at(now):
            return Refusal(
                Code.ACCOUNT_FROZEN,
                f"{event.author}'s account is frozen: it can receive but not pay",
            )
    accounts: dict[tuple[str, str], AccountRecord] = {}

    def get(did: str, currency: str) -> AccountRecord:
        if (did, currency) not in accounts:
            accounts[(did, currency)] = account_of(view, coop.coop, did, currency)
        return accounts[(did, currency)]

    for i, tx in enumerate(body.transactions):
        if tx.currency not in coop.currencies:
            return Refusal(
                Code.UNKNOWN_CURRENCY,
                f"transaction {i}: {coop.coop} has no currency {tx.currency!r}",
            )
        if by_coop:
            for did, role in ((tx.from_, "debited account"), (tx.to, "payee")):
                if did != coop.did and view.member(coop.coop, did) is None:
                    return Refusal(
                        Code.NOT_A_MEMBER, f"transaction {i}: {role} {did} is not a member"
                    )
        else:
            problem = _party_problem(view, coop, tx.to, "payee")
            if problem:
                return Refusal(problem.code, f"transaction {i}: {problem.reason}")
        src, dst = get(tx.from_, tx.currency), get(tx.to, tx.currency)
        accounts[(tx.from_, tx.currency)] = msgspec.structs.replace(
            src, balance=src.balance - tx.amount
        )
        accounts[(tx.to, tx.currency)] = msgspec.structs.replace(
            dst, balance=dst.balance + tx.amount, cleared_volume=dst.cleared_volume + tx.amount
        )
    if payer is not None:
        for (did, currency), account in accounts.items():
            if did != payer.did:
                continue
            room = credit_room(view, coop, payer, currency, now)
            if not room.allows(account.balance):
                spec = coop.currencies[currency]
                after = spec.show(account.balance)
                if room.held:
                    after += f" with {spec.show(room.held)} held"
                return Refusal(
                    Code.CREDIT_LIMIT_EXCEEDED,
                    f"the balance after this entry would be {after},"
                    f" below the credit limit of {format_amount(-room.limit, spec.decimals)}",
                )
    return list(accounts.values())


def _member_target(view: CoopView, event: Event, did: str) -> MemberRecord | Refusal:
    member = view.member(event.coop, did)
    if member is None or member.status in (MemberStatus.APPLIED, MemberStatus.EXITED):
        return Refusal(Code.NOT_A_MEMBER, f"{did} is not a member of {event.coop}")
    return member


def account_frozen(
    body: b.AccountFrozen, event: Event, view: CoopView, now: int
) -> Refusal | Effects:
    """An admin (or the coop's DID) freezes a member's paying side."""
    coop = founded_coop(view, event)
    if not is_authority(view, coop, event.author):
        return Refusal(Code.NOT_AUTHORIZED, "freezing an account needs an admin or the coop's DID")
    wanted = ga.Freeze(member=body.member, reason=body.reason, until=body.until)
    linked = follow_link(view, event, coop, body.proposal, is_action(wanted))
    if isinstance(linked, Refusal):
        return linked
    member = _member_target(view, event, body.member)
    if isinstance(member, Refusal):
        return member
    if body.until is not None and body.until <= now:
        return Refusal(Code.INVALID_FREEZE, "a freeze must end after it starts")
    return [
        *linked,
        msgspec.structs.replace(
            member, frozen=True, frozen_until=body.until, freeze_reason=body.reason
        ),
    ]


def account_unfrozen(
    body: b.AccountUnfrozen, event: Event, view: CoopView, now: int
) -> Refusal | Effects:
    """Ends a freeze in force."""
    coop = founded_coop(view, event)
    if not is_authority(view, coop, event.author):
        return Refusal(
            Code.NOT_AUTHORIZED, "unfreezing an account needs an admin or the coop's DID"
        )
    wanted = ga.Unfreeze(member=body.member)
    linked = follow_link(view, event, coop, body.proposal, is_action(wanted))
    if isinstance(linked, Refusal):
        return linked
    member = _member_target(view, event, body.member)
    if isinstance(member, Refusal):
        return member
    if not member.is_frozen_at(now):
        return Refusal(Code.NOT_FROZEN, f"{body.member}'s account is not frozen")
    unfrozen = msgspec.structs.replace(member, frozen=False, frozen_until=None, freeze_reason=None)
    return [*linked, unfrozen]


def dispute_filed(
    body: b.DisputeFiled, event: Event, view: CoopView, now: int
) -> Refusal | Effects:
    """A party to a transaction disputes it, once."""
    entry = view.event(event.coop, body.entry)
    if entry is None or entry.type != ENTRY_RECORDED:
        return Refusal(Code.UNKNOWN_ENTRY, f"no ledger entry {body.entry} in {event.coop}")
    txs = entry_transactions(entry)
    if body.transaction >= len(txs):
        return Refusal(Code.UNKNOWN_ENTRY, f"entry {body.entry} has {len(txs)} transaction(s)")
    tx = txs[body.transaction]
    if event.author not in (tx.from_, tx.to):
        return Refusal(Code.NOT_A_PARTY, "only the payer or the payee may dispute a transaction")
    problem = _standing_problem(view, event)
    if problem:
        return problem
    if view.claim(event.coop, body.entry, body.transaction) is not None:
        return Refusal(Code.ALREADY_DISPUTED, "this transaction has been disputed already")
    counterparty = tx.to if event.author == tx.from_ else tx.from_
    return [
        DisputeRecord(
            id=event.id,
            entry=body.entry,
            transaction=body.transaction,
            filed_by=event.author,
            counterparty=counterparty,
            payer=tx.from_,
            payee=tx.to,
            amount=tx.amount,
            currency=tx.currency,
            reason=body.reason,
            filed_ms=now,
        ),
        DisputeClaim(entry=body.entry, transaction=body.transaction, dispute=event.id),
    ]


def _standing_problem(view: CoopView, event: Event) -> Refusal | None:
    """A party speaks in a dispute while a member (suspended included) or as the coop's DID."""
    coop = founded_coop(view, event)
    if event.author == coop.did:
        return None
    member = view.member(event.coop, event.author)
    if member is None or member.status not in (MemberStatus.ACTIVE, MemberStatus.SUSPENDED):
        return Refusal(Code.NOT_A_MEMBER, f"{event.author} is not a member of {event.coop}")
    return None


def _open_dispute(view: CoopView, event: Event, dispute_id: str) -> DisputeRecord | Refusal:
    dispute = view.dispute(event.coop, dispute_id)
    if dispute is None:
        return Refusal(Code.UNKNOWN_DISPUTE, f"no dispute {dispute_id} in {event.coop}")
    if dispute.status not in OPEN:
        return Refusal(Code.DISPUTE_CLOSED, f"dispute {dispute_id} is {dispute.status}")
    return dispute


def dispute_answered(
    body: b.DisputeAnswered, event: Event, view: CoopView, now: int
) -> Refusal | Effects:
    """The counterparty answers, once."""
    dispute = _open_dispute(view, event, body.dispute)
    if isinstance(dispute, Refusal):
        return dispute
    if event.author != dispute.counterparty:
        return Refusal(Code.NOT_A_PARTY, "only the counterparty answers a dispute")
    problem = _standing_problem(view, event)
    if problem:
        return problem
    if dispute.status == DisputeStatus.ANSWERED:
        return Refusal(Code.ALREADY_ANSWERED, "this dispute has been answered already")
    return [msgspec.structs.replace(dispute, status=DisputeStatus.ANSWERED)]


def mediator_assigned(
    body: b.MediatorAssigned, event: Event, view: CoopView, now: int
) -> Refusal | Effects:
    """An admin names an active member who is not a party."""
    coop = founded_coop(view, event)
    if not is_authority(view, coop, event.author):
        return Refusal(Code.NOT_AUTHORIZED, "assigning a mediator needs an admin or the coop's DID")
    dispute = _open_dispute(view, event, body.dispute)
    if isinstance(dispute, Refusal):
        return dispute
    mediator = view.member(event.coop, body.mediator)
    if mediator is None or not mediator.is_active:
        return Refusal(Code.NOT_A_MEMBER, f"{body.mediator} is not an active member")
    if body.mediator in (dispute.payer, dispute.payee):
        return Refusal(Code.NOT_ELIGIBLE, "a party cannot mediate its own dispute")
    return [msgspec.structs.replace(dispute, mediator=body.mediator)]


def _ruling_ordered(body: b.DisputeResolved) -> Fits:
    """An ``escalated-dispute`` proposal whose ruling is this resolution."""

    def fits(action: ga.Action) -> bool:
        return isinstance(action, ga.EscalatedDispute) and (
            action.dispute,
            action.ruling,
            action.refund,
        ) == (body.dispute, body.outcome, body.refund)

    return fits


def _escalated(
    body: b.DisputeResolved, event: Event, view: CoopView, coop: CoopRecord
) -> tuple[DisputeRecord, Effects] | Refusal:
    """A dispute its mediator escalated, ruled as an accepted proposal orders."""
    dispute = view.dispute(event.coop, body.dispute)
    if dispute is None:
        return Refusal(Code.UNKNOWN_DISPUTE, f"no dispute {body.dispute} in {event.coop}")
    linked = follow_link(view, event, coop, body.proposal, _ruling_ordered(body))
    if isinstance(linked, Refusal):
        return linked
    if dispute.status != DisputeStatus.RESOLVED or dispute.outcome != b.Outcome.ESCALATED:
        return Refusal(Code.DISPUTE_CLOSED, "only an escalated dispute is ruled by a proposal")
    return dispute, linked


def dispute_resolved(
    body: b.DisputeResolved, event: Event, view: CoopView, now: int
) -> Refusal | Effects:
    """The mediator (or, without one, an admin or the coop's DID) decides; a dispute the
    mediator escalated is ruled by a proposal, which the coop's DID carries out."""
    coop = founded_coop(view, event)
    linked: Effects = []
    if body.proposal is not None:
        ruled = _escalated(body, event, view, coop)
        if isinstance(ruled, Refusal):
            return ruled
        dispute, linked = ruled
    else:
        found = _open_dispute(view, event, body.dispute)
        if isinstance(found, Refusal):
            return found
        dispute = found
        allowed = (
            event.author == dispute.mediator
            if dispute.mediator
            else is_authority(view, coop, event.author)
        )
        if not allowed or event.author in (dispute.payer, dispute.payee):
            return Refusal(
                Code.NOT_AUTHORIZED,
                "only the dispute's mediator (or an admin when none) resolves it",
            )
    if dispute.task is not None and body.outcome in b.Outcome.MOVES_MONEY:
        return Refusal(
            Code.INVALID_OUTCOME,
            f"a dispute about compute task {dispute.task} moved no money: dismiss or escalate it",
        )
    refund: int | None = None
    if body.outcome == b.Outcome.PARTIAL_REFUND:
        if body.refund is None or body.refund >= dispute.amount:
            return Refusal(
                Code.INVALID_AMOUNT, "a partial refund needs a refund below the disputed amount"
            )
        refund = body.refund
    elif body.refund is not None:
        return Refusal(Code.INVALID_AMOUNT, f"outcome {body.outcome} takes no refund amount")
    elif body.outcome in b.Outcome.MOVES_MONEY:
        refund = dispute.amount
    if refund is not None:
        source = coop.did if body.outcome == b.Outcome.WRITTEN_OFF else dispute.payee
        if source == dispute.payer:
            return Refusal(
                Code.INVALID_OUTCOME, f"{body.outcome} would pay {dispute.payer} back from itself"
            )
    status = DisputeStatus.RESOLVED
    return [
        *linked,
        msgspec.structs.replace(
            dispute, status=status, outcome=body.outcome, refund=refund, closed_ms=now
        ),
    ]


def ordered_transaction(dispute: DisputeRecord, coop_did: str) -> dict[str, Any]:
    """The one transaction a money-moving resolution orders (what settlement must record)."""
    assert dispute.refund is not None
    source = coop_did if dispute.outcome == b.Outcome.WRITTEN_OFF else dispute.payee
    return {
        "from": source,
        "to": dispute.payer,
        "amount": dispute.refund,
        "currency": dispute.currency,
    }


def dispute_settled(
    body: b.DisputeSettled, event: Event, view: CoopView, now: int
) -> Refusal | Effects:
    """The coop's DID links the entry that carried out a resolution; it must match the order."""
    coop = founded_coop(view, event)
    if event.author != coop.did:
        return Refusal(Code.NOT_AUTHORIZED, "only the coop's DID settles a dispute")
    dispute = view.dispute(event.coop, body.dispute)
    if dispute is None:
        return Refusal(Code.UNKNOWN_DISPUTE, f"no dispute {body.dispute} in {event.coop}")
    if dispute.status in OPEN:
        return Refusal(Code.DISPUTE_NOT_RESOLVED, f"dispute {body.dispute} is not resolved yet")
    if dispute.status != DisputeStatus.RESOLVED or dispute.refund is None:
        return Refusal(Code.DISPUTE_CLOSED, "only a resolution that moves money is settled, once")
    entry = view.event(event.coop, body.entry)
    if entry is None or entry.type != ENTRY_RECORDED or entry.author != coop.did:
        return Refusal(Code.UNKNOWN_ENTRY, "settlement must point at an entry by the coop's DID")
    want = ordered_transaction(dispute, coop.did)
    got = [
        {"from": tx.from_, "to": tx.to, "amount": tx.amount, "currency": tx.currency}
        for tx in entry_transactions(entry)
    ]
    if got != [want]:
        return Refusal(
            Code.SETTLEMENT_MISMATCH, "the entry does not move what the resolution ordered"
        )
    return [msgspec.structs.replace(dispute, status=DisputeStatus.SETTLED, settlement=body.entry)]


def demurrage_charged(
    body: b.DemurrageCharged, event: Event, view: CoopView, now: int
) -> Refusal | Effects:
    """Records the period charged, so the same period is never charged twice."""
    coop = founded_coop(view, event)
    if event.author != coop.did:
        return Refusal(Code.NOT_AUTHORIZED, "only the coop's DID charges demurrage")
    if body.currency not in coop.policy.demurrage:
        return Refusal(Code.UNKNOWN_CURRENCY, f"{body.currency} has no demurrage policy")
    start = coop.demurrage_until.get(body.currency, coop.founded_ms)
    if body.period_end <= start:
        return Refusal(Code.ALREADY_CHARGED, "this period has been charged already")
    period = coop.policy.demurrage[body.currency].period_days * DAY_MS
    if body.period_end > now or (body.period_end - start) % period:
        return Refusal(
            Code.INVALID_PERIOD, "period_end must be a whole period after the last, not ahead"
        )
    for entry_id in body.entries:
        entry = view.event(event.coop, entry_id)
        if entry is None or entry.type != ENTRY_RECORDED or entry.author != coop.did:
            return Refusal(Code.UNKNOWN_ENTRY, f"{entry_id} is not an entry by the coop's DID")
    until = {**coop.demurrage_until, body.currency: body.period_end}
    return [msgspec.structs.replace(coop, demurrage_until=until)]


def entry_transactions(entry: Event) -> list[b.Transaction]:
    """The transactions of a stored ``ledger.EntryRecorded`` (checked when it was accepted)."""
    return msgspec.convert(entry.body, b.EntryRecorded).transactions


def debit_problem(event: Event, body: b.EntryRecorded, dids: CoopDids) -> Refusal | None:
    """Spec section 6: only the coop's own DID may debit an account other than its own."""
    if all(tx.from_ == event.author for tx in body.transactions):
        return None
    if event.author == dids.coop_did(event.coop):
        return None
    for i, tx in enumerate(body.transactions):
        if tx.from_ != event.author:
            return Refusal(
                Code.PAYER_NOT_SIGNER,
                f"transaction {i} debits {tx.from_}; only the author's account may be debited",
            )
    return None


EVENT_TYPES = (
    EventType(
        ENTRY_RECORDED,
        b.EntryRecorded,
        entry_recorded,
        spec=True,
        check=b.entry_problem,
        chain_check=debit_problem,
        on_decode_failure=b.bad_amount,
    ),
    EventType(b.ACCOUNT_FROZEN, b.AccountFrozen, account_frozen),
    EventType(b.ACCOUNT_UNFROZEN, b.AccountUnfrozen, account_unfrozen),
    EventType(b.DISPUTE_FILED, b.DisputeFiled, dispute_filed),
    EventType(b.DISPUTE_ANSWERED, b.DisputeAnswered, dispute_answered),
    EventType(b.MEDIATOR_ASSIGNED, b.MediatorAssigned, mediator_assigned),
    EventType(b.DISPUTE_RESOLVED, b.DisputeResolved, dispute_resolved),
    EventType(b.DISPUTE_SETTLED, b.DisputeSettled, dispute_settled),
    EventType(b.DEMURRAGE_CHARGED, b.DemurrageCharged, demurrage_charged),
)
"""The ledger's event types: entries, freezes, disputes, demurrage."""
