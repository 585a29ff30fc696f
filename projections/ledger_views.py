"""What members read about their coop: balances, history, limits, members, disputes, totals.

One place composes the read models' rows with the coop rules' records
(currencies and their decimals, policy, membership) into the documents the
HTTP API answers and ``icn balance`` / ``icn history --json`` print, so the
two can never disagree. The rows come through :class:`LedgerReads`;
"now" is passed in (the node's clock), never read here.

Credit (balance, what is held, the limit, what is used and left) is computed
by :func:`icn.domain.ledger.holds.credit_room`, the function the write path
judges every payment and hold with, over the same source: the coop rules'
records, which the write path keeps in the transaction of each event. So a
member is never shown credit the next payment would be refused. The holds
read model (``ledger_holds``) says which tasks hold it.
"""

from __future__ import annotations

from functools import partial
from typing import Protocol

import msgspec

from icn.application.coop_view import CoopQueries, decode_record
from icn.application.errors import InvalidRequest, NotFound
from icn.domain.coop.records import (
    CoopRecord,
    DisputeRecord,
    MemberRecord,
    Policy,
    Record,
)
from icn.domain.events.envelope import Event
from icn.domain.ledger.amounts import format_amount
from icn.domain.ledger.holds import CreditRoom, credit_room, held
from icn.projections.ledger import leaf_of

MAX_PAGE = 1000


# -- rows, as the read models hold them ------------------------------------------------


class BalanceRow(msgspec.Struct, frozen=True):
    """One account in one currency (``ledger_balances``)."""

    currency: str
    balance: int
    cleared_volume: int
    debited_volume: int
    entries: int


class HistoryRow(msgspec.Struct, frozen=True):
    """One transaction as one party sees it (``ledger_history``)."""

    cursor: int
    event_id: str
    counterparty: str
    amount: int
    currency: str
    memo: str | None
    ts: int


class HoldRow(msgspec.Struct, frozen=True):
    """A task's open hold on its submitter's account (``ledger_holds`` without a release)."""

    task: str
    currency: str
    amount: int
    ts: int


class TotalsRow(msgspec.Struct, frozen=True):
    """One currency of a coop (``ledger_totals``), with the sum of its balances."""

    currency: str
    volume: int
    transactions: int
    entries: int
    balance_sum: int
    accounts: int


class HistoryQuery(msgspec.Struct, frozen=True, kw_only=True):
    """Filters and page of a member's history; ``after`` is the last cursor already seen."""

    currency: str | None = None
    counterparty: str | None = None
    since: int | None = None
    """Inclusive lower bound on the entry's ``ts`` (ms)."""
    until: int | None = None
    """Exclusive upper bound on the entry's ``ts`` (ms)."""
    after: int | None = None
    limit: int = 50
    descending: bool = False


class LedgerReads(Protocol):
    """The read models and the coop rules' records, as the views need them."""

    def balances(self, coop: str, did: str) -> list[BalanceRow]:
        """Every currency the account ever moved in."""
        ...

    def history(self, coop: str, did: str, query: HistoryQuery) -> list[HistoryRow]:
        """Up to ``query.limit`` rows past ``query.after``, in cursor order."""
        ...

    def totals(self, coop: str) -> list[TotalsRow]:
        """Per currency that ever moved."""
        ...

    def holds(self, coop: str, did: str) -> list[HoldRow]:
        """The account's open holds (not yet released), oldest first."""
        ...

    def positions(self, coop: str) -> dict[str, int]:
        """Last leaf each projection applied."""
        ...

    def record(self, coop: str, kind: str, key: str) -> bytes | None:
        """One record of the coop rules' state, encoded."""
        ...

    def records(self, coop: str, kind: str, after: str | None, limit: int) -> list[bytes]:
        """Records of one kind in key order, past key ``after``."""
        ...


# -- documents ---------------------------------------------------------------------------


class HoldView(msgspec.Struct):
    """Credit a task holds until it settles or expires."""

    task: str
    amount: int
    display: str
    since: int
    """Trusted time of the submission (ms)."""


class AccountDetail(msgspec.Struct):
    """One currency of one account, with the credit it has used, holds and has left."""

    balance: int
    display: str
    cleared_volume: int
    debited_volume: int
    entries: int
    credit_used: int
    """max(0, held - balance): what the balance and the holds take of the limit."""
    credit_limit: int | None
    """The limit right now (None: the coop's own account, which has none)."""
    available: int | None
    """credit_limit - credit_used: how far the member may still go below zero, holds
    counted (they are not spendable)."""
    credit_limit_display: str | None
    available_display: str | None
    held: int = 0
    """Held for tasks not settled yet: part of the balance that cannot be spent."""
    held_display: str = "0"
    spendable: int | None = None
    """balance - held + credit_limit: the largest payment the node accepts now."""
    spendable_display: str | None = None
    holds: list[HoldView] = msgspec.field(default_factory=list)
    """Which tasks hold what (the holds read model), oldest first."""


class AccountBalances(msgspec.Struct):
    """``{"balances": {currency: units}, "display": {currency: "12.50"}}`` and the details."""

    coop: str
    did: str
    balances: dict[str, int]
    display: dict[str, str]
    accounts: dict[str, AccountDetail]
    as_of: int
    """Last leaf of the coop's log these numbers include (-1: none)."""
    now_ms: int


class HistoryItem(msgspec.Struct):
    """One transaction, signed from the member's side (negative: paid)."""

    cursor: int
    position: int
    """Leaf index of the entry in the coop's log."""
    tx: int
    """Index of the transaction within the entry."""
    event_id: str
    counterparty: str
    amount: int
    display: str
    currency: str
    memo: str | None
    ts: int


class HistoryPage(msgspec.Struct):
    """A page of history; pass ``next`` as ``after`` for the following one (null: the end)."""

    coop: str
    did: str
    items: list[HistoryItem]
    next: int | None


class LimitView(msgspec.Struct):
    """The credit limit now, with every term of the formula, and what is used and left.

    limit = baseline + baseline × trust × trust_multiplier + cleared_volume ×
    history_rate, capped by max_limit; while the new-member ramp lasts, it
    grows linearly from the initial limit.
    """

    coop: str
    did: str
    currency: str
    now_ms: int
    baseline: int
    trust_ppm: int
    trust_multiplier_ppm: int
    trust_bonus: int
    cleared_volume: int
    history_rate_ppm: int
    history_bonus: int
    formula_limit: int
    max_limit: int
    full_limit: int
    initial_limit: int
    ramp_days: int
    days_since_joining: int
    limit: int
    balance: int
    used: int
    """max(0, held - balance): what the balance and the holds take of the limit."""
    available: int
    """limit - used."""
    can_pay: bool
    """Active and not frozen right now."""
    display: dict[str, str]
    """``limit``, ``used``, ``available``, ``balance``, ``held`` and ``spendable`` with the
    currency's decimals."""
    held: int = 0
    """Held for tasks not settled yet (not spendable)."""
    spendable: int = 0
    """balance - held + limit: the largest payment the node accepts now."""


class CurrencyView(msgspec.Struct):
    """A unit of account of the coop."""

    code: str
    unit: str
    decimals: int


class TotalsView(msgspec.Struct):
    """A currency across the coop: the sum of balances is 0 when the books balance."""

    balance_sum: int
    volume: int
    display_volume: str
    transactions: int
    entries: int
    accounts: int


class CoopSummary(msgspec.Struct):
    """The coop: its DID (the treasury account), currencies, policy and totals."""

    coop: str
    name: str
    did: str
    founded_ms: int
    currencies: list[CurrencyView]
    policy: Policy
    totals: dict[str, TotalsView]
    as_of: int


class MemberView(msgspec.Struct):
    """One DID's membership."""

    did: str
    status: str
    roles: list[str]
    applied_ms: int | None
    joined_ms: int | None
    frozen: bool
    """A freeze is in force right now (a freeze past its ``frozen_until`` has ended)."""
    frozen_until: int | None
    name: str | None = None
    """The name the member gave themselves (``coop.ProfileUpdated``), null if none: not
    unique and proves nothing, so show it beside the DID, never instead of it
    (:mod:`icn.projections.member_names`)."""


class MemberPage(msgspec.Struct):
    """Members in DID order; pass ``next`` as ``after`` for the following page."""

    members: list[MemberView]
    next: str | None


class DisputeView(msgspec.Struct):
    """A dispute about one transaction of one entry, or (``task`` set) about an executor
    whose answer to that compute task lost a majority vote (``entry`` is then the task)."""

    id: str
    entry: str
    transaction: int
    status: str
    filed_by: str
    counterparty: str
    payer: str
    payee: str
    amount: int
    currency: str
    reason: str
    mediator: str | None
    outcome: str | None
    refund: int | None
    settlement: str | None
    filed_ms: int
    closed_ms: int | None
    task: str | None = None


class DisputePage(msgspec.Struct):
    """Disputes in id order; pass ``next`` as ``after`` for the following page."""

    disputes: list[DisputeView]
    next: str | None


# -- composing them ----------------------------------------------------------------------


def founded(reads: LedgerReads, coop: str) -> CoopRecord:
    """The coop's record, or :class:`NotFound`."""
    raw = reads.record(coop, CoopRecord.kind, "")
    record = decode_record(CoopRecord.kind, raw) if raw is not None else None
    if not isinstance(record, CoopRecord):
        raise NotFound(f"coop {coop} has not been founded on this node")
    return record


def _member(reads: LedgerReads, coop: str, did: str) -> MemberRecord | None:
    raw = reads.record(coop, MemberRecord.kind, did)
    record = decode_record(MemberRecord.kind, raw) if raw is not None else None
    return record if isinstance(record, MemberRecord) else None


def _holder(reads: LedgerReads, coop: CoopRecord, did: str) -> MemberRecord | None:
    """The account's member record; None for the coop's own account; NotFound otherwise."""
    if did == coop.did:
        return None
    member = _member(reads, coop.coop, did)
    if member is None:
        raise NotFound(f"{did} is not a member of {coop.coop}")
    return member


def _decimals(coop: CoopRecord, currency: str) -> int:
    spec = coop.currencies.get(currency)
    return spec.decimals if spec is not None else 0


def _as_of(reads: LedgerReads, coop: str) -> int:
    positions = reads.positions(coop)
    return min(positions.values()) if positions else -1


class _Records(CoopQueries):
    """The coop rules' records as a :class:`~icn.domain.coop.state.CoopView`, read through
    :meth:`LedgerReads.record`: what :func:`credit_room` reads on the write path (account,
    holds, membership, trust standing), so read and write judge from the same records."""

    def __init__(self, reads: LedgerReads) -> None:
        self._reads = reads

    def record(self, coop: str, kind: str, key: str) -> Record | None:
        raw = self._reads.record(coop, kind, key)
        return decode_record(kind, raw) if raw is not None else None

    def event(self, coop: str, event_id: str) -> Event | None:
        raise NotImplementedError("the credit room reads records only")

    def scan(self, coop: str, kind: str, prefix: str) -> list[Record]:
        raise NotImplementedError("the credit room reads records only")

    def log_size(self, coop: str) -> int:
        raise NotImplementedError("the credit room reads records only")


def _room(
    reads: LedgerReads, record: CoopRecord, member: MemberRecord, currency: str, now_ms: int
) -> CreditRoom:
    """The member's credit in ``currency`` as the write path will judge the next payment."""
    return credit_room(_Records(reads), record, member, currency, now_ms)


def account_balances(reads: LedgerReads, coop: str, did: str, now_ms: int) -> AccountBalances:
    """Every currency of the coop (0 when never moved), in smallest units and for display."""
    record = founded(reads, coop)
    member = _holder(reads, record, did)
    rows = {r.currency: r for r in reads.balances(coop, did)}
    open_holds: dict[str, list[HoldRow]] = {}
    for h in reads.holds(coop, did):
        open_holds.setdefault(h.currency, []).append(h)
    currencies = [*record.currencies, *sorted(set(rows) - set(record.currencies))]
    balances: dict[str, int] = {}
    display: dict[str, str] = {}
    accounts: dict[str, AccountDetail] = {}
    for currency in currencies:
        row = rows.get(currency) or BalanceRow(currency, 0, 0, 0, 0)
        decimals = _decimals(record, currency)
        show = partial(format_amount, decimals=decimals)
        room: CreditRoom | None = None
        if member is not None:
            room = _room(reads, record, member, currency, now_ms)
        on_hold = room.held if room else held(_Records(reads), coop, did, currency)
        balances[currency] = row.balance
        display[currency] = show(row.balance)
        accounts[currency] = AccountDetail(
            balance=row.balance,
            display=display[currency],
            cleared_volume=row.cleared_volume,
            debited_volume=row.debited_volume,
            entries=row.entries,
            credit_used=room.used if room else max(0, on_hold - row.balance),
            credit_limit=room.limit if room else None,
            available=room.available if room else None,
            credit_limit_display=show(room.limit) if room else None,
            available_display=show(room.available) if room else None,
            held=on_hold,
            held_display=show(on_hold),
            spendable=room.spendable if room else None,
            spendable_display=show(room.spendable) if room else None,
            holds=[
                HoldView(h.task, h.amount, show(h.amount), h.ts)
                for h in open_holds.get(currency, [])
            ],
        )
    return AccountBalances(coop, did, balances, display, accounts, _as_of(reads, coop), now_ms)


def account_history(reads: LedgerReads, coop: str, did: str, query: HistoryQuery) -> HistoryPage:
    """A page of the member's history, filtered."""
    if not 1 <= query.limit <= MAX_PAGE:
        raise InvalidRequest(f"limit must be 1..{MAX_PAGE}")
    if query.since is not None and query.until is not None and query.since >= query.until:
        raise InvalidRequest("since must be before until")
    record = founded(reads, coop)
    _holder(reads, record, did)
    rows = reads.history(coop, did, msgspec.structs.replace(query, limit=query.limit + 1))
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    items = []
    for r in rows:
        leaf, tx = leaf_of(r.cursor)
        items.append(
            HistoryItem(
                cursor=r.cursor,
                position=leaf,
                tx=tx,
                event_id=r.event_id,
                counterparty=r.counterparty,
                amount=r.amount,
                display=format_amount(r.amount, _decimals(record, r.currency)),
                currency=r.currency,
                memo=r.memo,
                ts=r.ts,
            )
        )
    return HistoryPage(coop, did, items, rows[-1].cursor if more else None)


def account_limit(
    reads: LedgerReads, coop: str, did: str, currency: str | None, now_ms: int
) -> LimitView:
    """The member's credit limit at ``now_ms`` in one currency, term by term.

    Computed as the write path does (:func:`credit_room` on the coop rules'
    records: the trust standing at the last epoch included, holds counted), so
    ``available`` is what the next payment will be judged against.
    """
    record = founded(reads, coop)
    member = _holder(reads, record, did)
    if member is None:
        raise NotFound(f"{did} is the coop's own account: it has no credit limit")
    if currency is None:
        if len(record.currencies) != 1:
            raise InvalidRequest(f"name a currency: {', '.join(sorted(record.currencies))}")
        currency = next(iter(record.currencies))
    if currency not in record.currencies:
        raise NotFound(f"{coop} has no currency {currency!r}")
    room = _room(reads, record, member, currency, now_ms)
    b = room.terms
    if b is None:
        raise NotFound(f"{coop} gives no credit in {currency}")
    policy = record.policy.credit[currency]
    decimals = _decimals(record, currency)
    return LimitView(
        coop=coop,
        did=did,
        currency=currency,
        now_ms=now_ms,
        baseline=b.baseline,
        trust_ppm=b.trust_ppm,
        trust_multiplier_ppm=policy.trust_multiplier_ppm,
        trust_bonus=b.trust_bonus,
        cleared_volume=b.cleared_volume,
        history_rate_ppm=policy.history_rate_ppm,
        history_bonus=b.history_bonus,
        formula_limit=b.formula_limit,
        max_limit=b.max_limit,
        full_limit=b.full_limit,
        initial_limit=policy.initial_limit,
        ramp_days=b.ramp_days,
        days_since_joining=b.days_since_joining,
        limit=b.limit,
        balance=room.balance,
        used=room.used,
        available=room.available,
        can_pay=member.is_active and not member.is_frozen_at(now_ms),
        display={
            "limit": format_amount(b.limit, decimals),
            "used": format_amount(room.used, decimals),
            "available": format_amount(room.available, decimals),
            "balance": format_amount(room.balance, decimals),
            "held": format_amount(room.held, decimals),
            "spendable": format_amount(room.spendable, decimals),
        },
        held=room.held,
        spendable=room.spendable,
    )


def coop_summary(reads: LedgerReads, coop: str) -> CoopSummary:
    """Name, DID, currencies, policy and per-currency totals (every currency listed)."""
    record = founded(reads, coop)
    rows = {r.currency: r for r in reads.totals(coop)}
    totals = {}
    for currency in [*record.currencies, *sorted(set(rows) - set(record.currencies))]:
        r = rows.get(currency) or TotalsRow(currency, 0, 0, 0, 0, 0)
        totals[currency] = TotalsView(
            balance_sum=r.balance_sum,
            volume=r.volume,
            display_volume=format_amount(r.volume, _decimals(record, currency)),
            transactions=r.transactions,
            entries=r.entries,
            accounts=r.accounts,
        )
    return CoopSummary(
        coop=coop,
        name=record.name,
        did=record.did,
        founded_ms=record.founded_ms,
        currencies=[CurrencyView(c.code, c.unit, c.decimals) for c in record.currencies.values()],
        policy=record.policy,
        totals=totals,
        as_of=_as_of(reads, coop),
    )


def _member_view(m: MemberRecord, now_ms: int) -> MemberView:
    return MemberView(
        did=m.did,
        status=m.status,
        roles=list(m.roles),
        applied_ms=m.applied_ms,
        joined_ms=m.joined_ms,
        frozen=m.is_frozen_at(now_ms),
        frozen_until=m.frozen_until,
    )


def member(reads: LedgerReads, coop: str, did: str, now_ms: int) -> MemberView:
    """One member, or :class:`NotFound`."""
    founded(reads, coop)
    m = _member(reads, coop, did)
    if m is None:
        raise NotFound(f"{did} is not a member of {coop}")
    return _member_view(m, now_ms)


def members(
    reads: LedgerReads, coop: str, *, after: str | None, limit: int, now_ms: int
) -> MemberPage:
    """A page of members in DID order."""
    founded(reads, coop)
    raws = reads.records(coop, MemberRecord.kind, after, limit + 1)
    records = [decode_record(MemberRecord.kind, r) for r in raws[:limit]]
    views = [_member_view(m, now_ms) for m in records if isinstance(m, MemberRecord)]
    return MemberPage(views, views[-1].did if len(raws) > limit and views else None)


def disputes(
    reads: LedgerReads, coop: str, *, status: str | None, after: str | None, limit: int
) -> DisputePage:
    """A page of disputes in id order, optionally only those in ``status``."""
    founded(reads, coop)
    found: list[DisputeView] = []
    cursor = after
    chunk = max(limit + 1, 200)
    while True:
        raws = reads.records(coop, DisputeRecord.kind, cursor, chunk)
        for raw in raws:
            d = decode_record(DisputeRecord.kind, raw)
            assert isinstance(d, DisputeRecord)
            cursor = d.id
            if status is not None and d.status != status:
                continue
            if len(found) == limit:
                return DisputePage(found, found[-1].id)
            found.append(_dispute_view(d))
        if len(raws) < chunk:
            return DisputePage(found, None)


def _dispute_view(d: DisputeRecord) -> DisputeView:
    return DisputeView(
        id=d.id,
        entry=d.entry,
        transaction=d.transaction,
        status=d.status,
        filed_by=d.filed_by,
        counterparty=d.counterparty,
        payer=d.payer,
        payee=d.payee,
        amount=d.amount,
        currency=d.currency,
        reason=d.reason,
        mediator=d.mediator,
        outcome=d.outcome,
        refund=d.refund,
        settlement=d.settlement,
        filed_ms=d.filed_ms,
        closed_ms=d.closed_ms,
        task=d.task,
    )
