"""An audit that takes clean chunks whole gives every line the verdict judging it alone gives.

The workers reduce a chunk to facts only when each event passes and continues
its author's chain within the chunk; the caller checks each author's boundary.
A real log with real faults (a duplicate, a fork, a gap, ts going back, a bad
signature, a line that is not JSON, a payer who is not the signer, the coop's
own debit of a member, a second copy of the whole log) is audited in chunks of
every small size, inline and in processes, and must give the verdicts, reasons
and balances (in their order) of the plain loop of inspect and judge.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest
from nacl.signing import SigningKey

from icn.application.audit import audit_file, audit_lines
from icn.application.audit_chunks import CleanChunk, chunk_facts
from icn.application.audit_units import TAPER_LEVELS, UNIT, UNIT_LEVEL, units
from icn.application.memory_view import MemoryChains
from icn.application.parallel import InlineVerifier, ProcessVerifier, Verifier
from icn.domain.coop import bodies as coop_bodies
from icn.domain.coop.records import CreditPolicy, CurrencySpec, Policy
from icn.domain.events.bodies import ENTRY_RECORDED
from icn.domain.events.chain import judge
from icn.domain.events.envelope import Event, inspect, sign_event
from icn.domain.identity.did import did_from_public_key
from icn.domain.ledger.balances import BalanceSheet

COOP = "audit-chunks"


class _Author:
    def __init__(self) -> None:
        self.key = SigningKey.generate()
        self.did = did_from_public_key(bytes(self.key.verify_key))
        self.seq = 0
        self.prev: str | None = None
        self.ts = 1_000

    def sign(
        self, type: str, body: dict[str, Any], *, step: int = 1, ts: int = 1, ok: bool = True
    ) -> Event:
        """The author's next event; ``ok=False`` for one the log refuses (the chain stays)."""
        event = sign_event(
            self.key, coop=COOP, seq=self.seq + step, prev=self.prev, ts=self.ts + ts,
            type=type, body=body,
        )  # fmt: skip
        if ok:
            self.seq, self.prev, self.ts = event.seq, event.id, event.ts
        return event

    def pay(self, to: str, amount: int, *, payer: str | None = None, **kw: Any) -> Event:
        tx = {"from": payer or self.did, "to": to, "amount": amount, "currency": "hours"}
        return self.sign(ENTRY_RECORDED, {"transactions": [tx]}, **kw)


def _log() -> list[bytes]:
    coop, a, b, c = _Author(), _Author(), _Author(), _Author()
    credit = CreditPolicy(baseline=10**9, max_limit=10**9)
    founded = coop_bodies.Founded(
        name="audit chunks",
        currencies=[CurrencySpec(code="hours", unit="hour", decimals=2)],
        policy=Policy(credit={"hours": credit}),
        members=[coop_bodies.FoundingMember(did=x.did, roles=[]) for x in (a, b, c)],
    )
    events = [coop.sign(coop_bodies.FOUNDED, msgspec.to_builtins(founded))]
    for i in range(12):
        events += [a.pay(b.did, i + 1), b.pay(c.did, 2 * i + 1), c.pay(a.did, 3)]
    lines = [e.wire_bytes() for e in events]
    lines.append(coop.pay(b.did, 7, payer=a.did).wire_bytes())  # the coop may debit a member
    lines.append(c.pay(b.did, 5, payer=a.did, ok=False).wire_bytes())  # payer-not-signer
    lines.append(lines[5])  # duplicate
    tx = {"from": a.did, "to": c.did, "amount": 99, "currency": "hours"}
    fork = sign_event(a.key, coop=COOP, seq=2, prev=events[1].id, ts=a.ts, type=ENTRY_RECORDED,
                      body={"transactions": [tx]})  # fmt: skip
    lines.append(fork.wire_bytes())
    lines += [b.pay(a.did, 4, step=2).wire_bytes(), b.pay(a.did, 4).wire_bytes()]  # gap, gap
    lines.append(c.pay(a.did, 1, ts=-5, ok=False).wire_bytes())  # ts goes back
    bad = msgspec.structs.replace(a.pay(c.did, 9, ok=False), sig=events[2].sig)
    lines += [bad.wire_bytes(), b"not json", a.pay(c.did, 9).wire_bytes()]
    lines += [c.pay(a.did, 2).wire_bytes() for _ in range(5)]  # ok again after the faults
    return lines + lines  # a second copy: every line again, every chunk's boundaries refused


def _reference(lines: list[bytes]) -> tuple[list[str], list[str], list[tuple[str, list[Any]]]]:
    """The audit as it judged before chunks had facts: every line inspected and judged."""
    chains, sheet = MemoryChains(), BalanceSheet()
    verdicts, reasons = [], []
    for line in lines:
        ins = inspect(line)
        j = judge(ins, chains)
        verdicts.append(j.verdict.value)
        reasons.append(j.reason)
        if j.verdict.value == "ok" and ins.event is not None:
            chains.accept(ins.event)
            if ins.event.type == ENTRY_RECORDED:
                sheet.apply(ins.event.body)
    return verdicts, reasons, [(k, list(v.items())) for k, v in sheet.as_dict().items()]


@pytest.fixture(scope="module")
def log() -> list[bytes]:
    return _log()


def test_the_log_has_every_kind_of_fault(log: list[bytes]) -> None:
    verdicts = set(_reference(log)[0])
    assert verdicts == {
        "ok", "duplicate", "fork", "gap", "broken-link", "bad-signature", "malformed",
    }  # fmt: skip


@pytest.mark.parametrize("chunk", [1, 2, 3, 4, 5, 7, 16, 1000])
def test_chunked_audit_gives_the_verdicts_of_judging_each_line(
    log: list[bytes], chunk: int
) -> None:
    verdicts, reasons, balances = _reference(log)
    got = audit_lines(log, verifier=InlineVerifier(), chunk=chunk)
    assert got.verdicts == verdicts
    assert got.reasons == reasons
    assert [(k, list(v.items())) for k, v in got.balances.items()] == balances


def test_worker_processes_give_the_same_audit(log: list[bytes]) -> None:
    verdicts, reasons, balances = _reference(log)
    verifiers: list[Verifier] = [ProcessVerifier(2), ProcessVerifier(2, caller_verifies=False)]
    for verifier in verifiers:
        try:
            got = audit_lines(log, verifier=verifier, chunk=4)
        finally:
            verifier.close()
        assert (got.verdicts, got.reasons) == (verdicts, reasons)
        assert [(k, list(v.items())) for k, v in got.balances.items()] == balances


def test_clean_chunks_are_facts_and_the_rest_inspections(log: list[bytes]) -> None:
    """The first chunks (founding, payments) are clean; one holding the coop's debit of a
    member needs the coop's DID, which a chunk alone does not know."""
    clean = chunk_facts(log[:10])
    assert isinstance(clean, CleanChunk)
    assert clean.count == 10 and len(clean.runs) == 4
    assert sum(len(r.ids) for r in clean.runs) == 10
    assert clean.founded and not clean.kept
    assert isinstance(chunk_facts(log[37:38]), list)  # the coop's DID debits a member
    assert isinstance(chunk_facts(log[38:39]), list)  # payer-not-signer


@pytest.mark.parametrize("final_newline", [True, False])
def test_a_file_read_by_the_workers_gives_the_audit_of_its_lines(
    log: list[bytes], tmp_path: Path, final_newline: bool
) -> None:
    """``audit_file``'s workers read their own byte ranges: the verdicts are those of the
    lines, for chunks of any size, inline and in worker processes, with or without a final
    newline, and with empty lines in it."""
    lines = [*log[:5], b"", *log[5:]]
    path = tmp_path / "log.jsonl"
    path.write_bytes(b"\n".join(lines) + (b"\n" if final_newline else b""))
    want = audit_lines(lines, verifier=InlineVerifier())
    for chunk in (1, 3, 7, 1000):
        assert audit_file(path, verifier=InlineVerifier(), chunk=chunk) == want
    processes = ProcessVerifier(2, caller_verifies=False)
    try:
        assert audit_file(path, verifier=processes, chunk=4) == want
    finally:
        processes.close()
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    assert audit_file(empty, verifier=InlineVerifier()).verdicts == []


@pytest.mark.parametrize("size", [0, 1, 5, 1023, 1024, 1025, 4096, 4097, 20_001])
def test_store_audit_units_are_aligned_complete_subtrees(size: int) -> None:
    """Each unit starts at a multiple of its own length (a power of two, never growing),
    so every whole unit is one complete subtree; together they cover the log once."""
    got = list(units(size))
    assert [start for start, _, _ in got] == [0, *(stop for _, stop, _ in got[:-1])][: len(got)]
    assert (got[-1][1] if got else 0) == size
    levels = [level for _, _, level in got]
    assert levels == sorted(levels, reverse=True)
    assert all(start % (1 << level) == 0 for start, _, level in got)
    assert all(stop - start == 1 << level for start, stop, level in got[:-1])
    if size >= 8 * UNIT:
        assert levels[0] == UNIT_LEVEL and min(levels) == UNIT_LEVEL - TAPER_LEVELS
