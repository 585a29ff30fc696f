"""How the write commands (``coop``, ``member``, ``pay``, ``dispute``) sign and submit.

A write is signed here, with a key of this data dir's keystore (``--key``),
and then either appended to the local store (``--data-dir``) or posted to a
running node (``--url`` or ``ICN_URL``, as the other remote commands take
it). Over HTTP the command logs in with the same key for that one command
(no session is stored, so it never replaces one made by ``icn login``), reads
the chain head from the node, signs on top of it and posts.

Refusals become :class:`Refused` with the node rule's stable ``code``, the
same locally and over HTTP, so scripts branch on one set of codes.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Protocol

import msgspec
import typer
from nacl.signing import SigningKey

from icn.application.authoring import BodyOf
from icn.application.coop_view import decode_record
from icn.application.errors import ApplicationError, BatchRefused
from icn.application.queries import coop_of
from icn.domain.coop import bodies as cb
from icn.domain.coop.records import (
    AccountRecord,
    CoopRecord,
    CurrencySpec,
    DisputeRecord,
    Policy,
)
from icn.domain.events.bodies import ENTRY_RECORDED
from icn.domain.events.envelope import Event, sign_event
from icn.domain.identity.did import did_from_public_key
from icn.domain.ledger.amounts import AmountError, format_amount, parse_amount
from icn.infrastructure.passphrase import resolve_passphrase
from icn.interfaces.bootstrap import Node, keystore_for, open_node
from icn.interfaces.cli.common import out, print_json, settings_for

if TYPE_CHECKING:
    from icn.interfaces.client.api import IcnClient

COOP_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
EVENT_ID_RE = re.compile(r"[0-9a-f]{64}")

Coop = Annotated[str, typer.Option("--coop", help="Coop id, e.g. 'food-coop'.", show_default=False)]
Key = Annotated[
    str,
    typer.Option("--key", help="Key in this data dir's keystore that signs.", show_default=False),
]
Url = Annotated[
    str | None,
    typer.Option(
        "--url",
        envvar="ICN_URL",
        help="Post to the node at this URL instead of appending to --data-dir's store.",
        show_default=False,
    ),
]


class Refused(ApplicationError):
    """A write the node (or this command, on the node's rules) refuses: exit 1 with ``code``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Written:
    """A signed event and its position in the coop's log."""

    event: Event
    position: int

    def doc(self) -> dict[str, Any]:
        """The JSON every write command prints about each event it stored."""
        return {
            "coop": self.event.coop,
            "type": self.event.type,
            "id": self.event.id,
            "position": self.position,
            "author": self.event.author,
        }


class Writer(Protocol):
    """Signs with one key in one coop and stores, locally or on a node."""

    coop: str
    did: str

    def submit(self, items: Sequence[tuple[str, BodyOf]]) -> list[Written]:
        """Sign and store ``items`` all or nothing; :class:`Refused` if the node says no."""
        ...

    def coop_record(self) -> CoopRecord:
        """The coop as the log has it (currencies, policy, its DID)."""
        ...

    def balance(self, did: str, currency: str) -> int | None:
        """A balance in smallest units (``None``: the node does not say)."""
        ...

    def dispute_currency(self, dispute: str) -> str:
        """The currency of the transaction a dispute is about."""
        ...


# -- input -------------------------------------------------------------------


def check_coop_id(coop: str) -> str:
    """A coop id as events carry it; a bad one is wrong usage (exit 2)."""
    if COOP_RE.fullmatch(coop) is None:
        raise typer.BadParameter(
            f"{coop!r}: 1-64 characters a-z 0-9 -, starting with a letter or digit",
            param_hint="'--coop'",
        )
    return coop


def check_event_id(value: str, what: str) -> str:
    """A 64-hex event id (entries, disputes); anything else is wrong usage."""
    value = value.strip().lower()
    if EVENT_ID_RE.fullmatch(value) is None:
        raise typer.BadParameter(f"{value!r} is not an event id (64 hex digits)", param_hint=what)
    return value


def units_of(text: str, spec: CurrencySpec, *, allow_zero: bool = False) -> int:
    """An amount typed in the currency's unit, in smallest units, exactly (no floats)."""
    if allow_zero and re.fullmatch(r"\s*0+(\.0*)?\s*", text):
        return 0
    try:
        return parse_amount(text, spec.decimals)
    except AmountError as exc:
        raise Refused(
            "invalid-amount", f"{exc} ({spec.code} has {spec.decimals} decimals)"
        ) from None


def currency_of(record: CoopRecord, code: str) -> CurrencySpec:
    """The coop's currency ``code``, or a refusal naming the ones it has."""
    spec = record.currencies.get(code)
    if spec is None:
        known = ", ".join(sorted(record.currencies)) or "none"
        raise Refused(
            "unknown-currency", f"{record.coop} has no currency {code!r} (it has {known})"
        )
    return spec


def shown(units: int, spec: CurrencySpec) -> str:
    """``250`` hours with 2 decimals → ``2.50 hours``."""
    return f"{format_amount(units, spec.decimals)} {spec.code}"


def ms_of(text: str, what: str) -> int:
    """An ISO 8601 date or time (UTC unless it says otherwise), or epoch milliseconds."""
    if text.isdigit():
        return int(text)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not a date (2026-12-31, 2026-12-31T18:00:00Z) or milliseconds",
            param_hint=what,
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


def report(json: bool, doc: dict[str, Any], lines: Sequence[str]) -> None:
    """One JSON document with ``--json``; otherwise the lines, for people."""
    if json:
        print_json(doc)
        return
    for line in lines:
        out.print(line, markup=False)


def refused_from(exc: BatchRefused) -> Refused:
    """A refused batch as the one rule that refused it (single-event writes have one line)."""
    return Refused(exc.code, exc.reason)


# -- local -------------------------------------------------------------------


class LocalWriter:
    """Appends to the store of ``--data-dir`` through the node's own write path."""

    def __init__(self, node: Node, key: SigningKey, coop: str, passphrase: str) -> None:
        self.node = node
        self.key = key
        self.coop = coop
        self.passphrase = passphrase
        """The passphrase that opened ``key``: tried first for the coop's key, never re-asked."""
        self.did = did_from_public_key(bytes(key.verify_key))

    def submit(self, items: Sequence[tuple[str, BodyOf]]) -> list[Written]:
        try:
            events, outcomes = self.node.author.submit(self.key, self.coop, items)
        except BatchRefused as exc:
            raise refused_from(exc) from None
        return [Written(e, o.position or 0) for e, o in zip(events, outcomes, strict=True)]

    def coop_record(self) -> CoopRecord:
        record = coop_of(self.node.store, self.coop)
        if record is None:
            raise Refused(
                "unknown-coop", f"coop {self.coop} has not been founded on {self.node.data_dir}"
            )
        return record

    def balance(self, did: str, currency: str) -> int | None:
        raw = self.node.store.state_get(self.coop, AccountRecord.kind, f"{did}/{currency}")
        record = decode_record(AccountRecord.kind, raw) if raw is not None else None
        return record.balance if isinstance(record, AccountRecord) else 0

    def dispute(self, dispute: str) -> DisputeRecord:
        """The dispute as the store holds it."""
        raw = self.node.store.state_get(self.coop, DisputeRecord.kind, dispute)
        record = decode_record(DisputeRecord.kind, raw) if raw is not None else None
        if not isinstance(record, DisputeRecord):
            raise Refused("unknown-dispute", f"no dispute {dispute} in {self.coop}")
        return record

    def dispute_currency(self, dispute: str) -> str:
        return self.dispute(dispute).currency


# -- remote ------------------------------------------------------------------


class _Wire(msgspec.Struct):
    position: int
    event: Event


class RemoteWriter:
    """Posts to a running node: logs in with the signing key, signs on the node's chain head."""

    def __init__(self, client: IcnClient, key: SigningKey, coop: str) -> None:
        self.client = client
        self.key = key
        self.coop = coop
        self.did = did_from_public_key(bytes(key.verify_key))
        self._record: CoopRecord | None = None

    def _get(self, path: str) -> bytes:
        """A GET with this command's token, refusals as :class:`ApiError` (codes kept)."""
        import httpx

        from icn.interfaces.client.errors import ApiError
        from icn.interfaces.client.models import Problem

        try:
            response = httpx.get(
                f"{self.client.base_url}{path}",
                headers={"Authorization": f"Bearer {self.client.token}"},
                timeout=self.client.timeout,
            )
        except httpx.TransportError as exc:
            raise ApiError(
                0, "unreachable", f"cannot reach {self.client.base_url}: {exc}"
            ) from None
        if response.is_error:
            try:
                doc = msgspec.json.decode(response.content, type=Problem)
            except msgspec.DecodeError:
                doc = Problem(detail=f"HTTP {response.status_code}")
            raise ApiError(response.status_code, doc.code, doc.detail or doc.title)
        return response.content

    def event(self, event_id: str) -> Event:
        """One event of the coop's log, by id."""
        from icn.interfaces.client.errors import ApiError

        try:
            raw = self._get(f"/v1/coops/{self.coop}/events/{event_id}")
        except ApiError as exc:
            if exc.status == 404:
                raise Refused(
                    "not-found", f"no event {event_id} in the log of {self.coop}"
                ) from None
            raise
        return msgspec.json.decode(raw, type=_Wire).event

    def submit(self, items: Sequence[tuple[str, BodyOf]]) -> list[Written]:
        from icn.interfaces.client.errors import ApiError

        head = self.client.chain_head(self.coop, self.did)
        seq, prev = head.next_seq, head.prev
        ts = time.time_ns() // 1_000_000
        if prev is not None:
            ts = max(ts, self.event(prev).ts)  # ts never goes back along a chain
        events: list[Event] = []
        for event_type, body in items:
            event = sign_event(
                self.key,
                coop=self.coop,
                seq=seq,
                prev=prev,
                ts=ts,
                type=event_type,
                body=body(events) if callable(body) else body,
            )
            events.append(event)
            seq, prev = seq + 1, event.id
        try:
            placed = self.client.post_events(self.coop, [e.wire_bytes() for e in events])
        except ApiError as exc:
            if exc.status == 0:
                raise
            detail = exc.detail.removeprefix(f"{exc.code}: ")  # the node repeats the code
            raise Refused(exc.code, detail) from None
        return [Written(e, p.position) for e, p in zip(events, placed, strict=True)]

    def _coop_events(self, type_: str) -> Iterator[Event]:
        after = -1
        while True:
            page = self.client.events(self.coop, after=after, limit=1000, type=type_)
            for entry in page.events:
                yield msgspec.json.decode(entry.wire, type=Event)
            if page.next is None:
                return
            after = page.next

    def coop_record(self) -> CoopRecord:
        """The coop from its own events: the first ``coop.Founded`` and later policy changes."""
        if self._record is not None:
            return self._record
        founded = next(self._coop_events(cb.FOUNDED), None)
        if founded is None:
            raise Refused("unknown-coop", f"coop {self.coop} has not been founded on that node")
        body = msgspec.convert(founded.body, cb.Founded)
        currencies = {c.code: c for c in body.currencies}
        policy: Policy = body.policy
        for changed in self._coop_events(cb.POLICY_CHANGED):
            change = msgspec.convert(changed.body, cb.PolicyChanged)
            policy = change.policy
            currencies.update({c.code: c for c in change.add_currencies})
        self._record = CoopRecord(
            coop=self.coop,
            did=founded.author,
            name=body.name,
            currencies=currencies,
            policy=policy,
            founded_ms=founded.ts,
        )
        return self._record

    def balance(self, did: str, currency: str) -> int | None:
        """From ``/v1/coops/{coop}/accounts/{did}/balances`` when the node serves it."""
        from icn.interfaces.client.errors import ApiError

        try:
            doc = msgspec.json.decode(self._get(f"/v1/coops/{self.coop}/accounts/{did}/balances"))
        except (ApiError, msgspec.DecodeError):
            return None
        value = doc.get("balances", {}).get(currency, 0) if isinstance(doc, dict) else None
        return value if isinstance(value, int) else None

    def dispute_currency(self, dispute: str) -> str:
        """From the filing event and the entry it names."""
        filed = self.event(dispute)
        if filed.type != "ledger.DisputeFiled":
            raise Refused("unknown-dispute", f"{dispute} is a {filed.type}, not a dispute")
        entry = self.event(str(filed.body.get("entry", "")))
        if entry.type != ENTRY_RECORDED:
            raise Refused("unknown-entry", f"the dispute names {entry.type} {entry.id}")
        txs = entry.body.get("transactions", [])
        n = filed.body.get("transaction", 0)
        return str(txs[n]["currency"])


# -- opening -----------------------------------------------------------------


@contextmanager
def local_node(data_dir: Path | None) -> Iterator[Node]:
    """The node of ``--data-dir`` for writing (its lock held), closed afterwards."""
    node = open_node(settings_for(data_dir), writer=True)
    try:
        yield node
    finally:
        node.close()


@contextmanager
def writer(data_dir: Path | None, url: str | None, coop: str, key: str) -> Iterator[Writer]:
    """Sign with ``key``; append to ``--data-dir``'s store, or post to the node at ``url``."""
    check_coop_id(coop)
    settings = settings_for(data_dir)
    if url is None:
        passphrase = resolve_passphrase()
        with local_node(data_dir) as node:
            yield LocalWriter(node, node.keystore.unlock(key, passphrase), coop, passphrase)
        return
    from icn.interfaces.client.api import IcnClient

    signing_key = keystore_for(settings).unlock(key, resolve_passphrase())
    with IcnClient(url) as client:
        client.login(signing_key, coop)
        yield RemoteWriter(client, signing_key, coop)
