"""A contract rule's evaluation against one Ed25519 verification, measured in one run.

Usage: ``python bench/contracts.py [--repeat R] [--calls N] [--no-docs]``.

Issue 18's target: evaluating a contract rule costs at most 0.25 x one
signature verification, so judging an invocation adds little to the write
path that verifies every event anyway. Measured in the same process, each as
the median of R repetitions of N calls:

- ``verify``: ``VerifyKey.verify`` of a signed 300-byte message (PyNaCl), the baseline;
- ``record_service, dict host``: the time bank's rule (examples/contracts/timebank.json)
  run by the compiled program against a host of plain dicts: the interpreter alone;
- ``record_service, view host``: the same against :class:`~icn.domain.contract.host.ViewHost`
  over an in-memory view of the rules' records: what the ``contract.Invoked`` rule runs,
  the ledger's credit limit computed for the payer included;
- ``compile``: decoding and compiling the code, done once per deployed version;
- ``dues over 100 members``: the dues example's ``charge`` (100 credit reads, 100 transfers).

And in the write path, on a fresh SQLite store per repetition (``--writes N``): N
``record_service`` invocations appended one per transaction (verified, judged: the
interpreter at the event's position), against N payments of the same members appended the
same way; then the contract duty carrying the N invocations out (an entry and a
``contract.Executed`` signed and appended atomically per invocation).

Results are printed and appended to docs/benchmarks.md, with the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nacl.signing import SigningKey

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import tempfile

from _common import (
    BENCH_CREDIT,
    append_section,
    machine_info,
    markdown_table,
    print_table,
    utc_now,
)
from support.coops import STORY_NOW, CoopScript

from icn.application.append import AppendEvents
from icn.application.authoring import EventAuthor
from icn.application.contract_duties import ContractDuties
from icn.application.governance_duties import GovernanceDuties
from icn.domain.contract import bodies as cb
from icn.domain.contract.compile import compile_code, decode, execute
from icn.domain.contract.host import ViewHost
from icn.domain.contract.runtime import ContractError
from icn.domain.coop.records import (
    AccountRecord,
    CoopRecord,
    CreditPolicy,
    CurrencySpec,
    MemberRecord,
    Policy,
    Record,
)
from icn.domain.events.envelope import inspect
from icn.domain.governance import bodies as gb
from icn.domain.refusals import Code
from icn.infrastructure.store.database import parse_database_url
from icn.infrastructure.store.event_store import SqlEventStore

HERE = Path(__file__).resolve().parent
DOCS = HERE.parent / "docs" / "benchmarks.md"
EXAMPLES = HERE.parent / "examples" / "contracts"
TREASURY = "did:key:zTreasury"


def member(i: int) -> str:
    return f"did:key:zMember{i:04d}"


class DictHost:
    """The interpreter's host as plain dicts: what the interpreter costs by itself."""

    def __init__(self, members: int) -> None:
        self.dids = [member(i) for i in range(members)]
        self.active = set(self.dids)

    def balance(self, did: str, currency: str) -> int:
        return 0

    def credit_room(self, did: str, currency: str) -> int:
        return 10_000

    def standing_ppm(self, did: str) -> int:
        return 0

    def roles(self, did: str) -> tuple[str, ...] | None:
        return () if did in self.active else None

    def members(self) -> list[str]:
        return self.dids

    def transfer_problem(self, frm: str, to: str, currency: str) -> ContractError | None:
        if currency != "hours":
            return ContractError(Code.UNKNOWN_CURRENCY, currency)
        return None


class MemoryView:
    """The rules' view of one coop in memory (the part :class:`ViewHost` reads)."""

    def __init__(self, members: int) -> None:
        self.coop_record = CoopRecord(
            coop="bench",
            did=TREASURY,
            name="bench",
            currencies={"hours": CurrencySpec(code="hours", unit="hour", decimals=2)},
            policy=Policy(credit={"hours": CreditPolicy(baseline=10_000, max_limit=50_000)}),
            founded_ms=0,
        )
        self.members = {
            member(i): MemberRecord(did=member(i), status="active", joined_ms=0)
            for i in range(members)
        }

    def coop(self, coop: str) -> CoopRecord | None:
        return self.coop_record

    def member(self, coop: str, did: str) -> MemberRecord | None:
        return self.members.get(did)

    def account(self, coop: str, did: str, currency: str) -> AccountRecord | None:
        return None

    def trust_ppm(self, coop: str, did: str) -> int:
        return 0

    def scan(self, coop: str, kind: str, prefix: str) -> list[Record]:
        return list(self.members.values())


DAY = 86_400_000
WRITERS = 20


def write_path(n: int, repeat: int) -> dict[str, list[float]]:
    """Seconds per event of each write-path measurement, one value per repetition."""
    found: dict[str, list[float]] = {"payment": [], "invocation": [], "execution": []}
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(prefix="icn-bench-contracts-") as tmp:
            _write_run(Path(tmp), n, found)
    return found


def _write_run(tmp: Path, n: int, found: dict[str, list[float]]) -> None:
    timebank: dict[str, Any] = json.loads((EXAMPLES / "timebank.json").read_text())
    fields = ("name", "version", "code", "capabilities", "fuel_limit")
    store = SqlEventStore(parse_database_url(None, tmp))
    store.create_tables()
    now = [STORY_NOW]

    def clock() -> int:
        return now[0]

    append = AppendEvents(store, clock)
    s = CoopScript("bench")
    names = [f"m{i}" for i in range(WRITERS)]
    credit = CreditPolicy(baseline=BENCH_CREDIT, max_limit=BENCH_CREDIT)
    setup = [s.found({name: [] for name in names}, policy=Policy(credit={"hours": credit}))]
    body = {"domain": "root", "title": "time bank", "text": "",
            "action": {"kind": "deploy-contract", **{k: timebank[k] for k in fields}},
            "closes_at": now[0] + DAY}  # fmt: skip
    proposal = s.event("m0", gb.PROPOSAL_SUBMITTED, body)
    setup += [proposal]
    setup += [s.event(m, gb.VOTE_CAST, {"proposal": proposal.id, "choice": "yes"}) for m in names]
    for e in setup:
        assert append.append_inspected([inspect(e.wire_bytes())])[0].stored
    now[0] += DAY + 5
    GovernanceDuties(store, append, clock).close_and_execute("bench", proposal.id, s.coop_key)
    pays, calls = [], []
    for i in range(n):
        payer, payee = names[i % WRITERS], names[(i + 1) % WRITERS]
        pays.append(s.pay(payer, payee, 100).wire_bytes())
        args = {"sender": s.did(payer), "recipient": s.did(payee), "hours": 1}
        invoked = {"contract": "timebank", "rule": "record_service", "args": args}
        calls.append(s.event(payer, cb.INVOKED, invoked).wire_bytes())
    # Each payer's chain holds a payment, then an invocation, as signed: appended in that
    # order, the two kinds alternate on a store growing alike, each timed apart.
    spent = {"payment": 0.0, "invocation": 0.0}
    for pay, call in zip(pays, calls, strict=True):
        for label, line in (("payment", pay), ("invocation", call)):
            start = time.perf_counter()
            assert append.append_inspected([inspect(line)])[0].stored
            spent[label] += time.perf_counter() - start
    for label in spent:
        found[label].append(spent[label] / n)
    duties = ContractDuties(store, EventAuthor(store, append, clock))
    start = time.perf_counter()
    for invocation in duties.pending("bench"):
        assert len(duties.execute("bench", invocation, s.coop_key)) == 2
    found["execution"].append((time.perf_counter() - start) / n)
    store.close()


def median_us(fn: Callable[[], object], calls: int, repeat: int) -> tuple[float, float, float]:
    """Median, min and max microseconds per call over ``repeat`` runs of ``calls`` calls."""
    per: list[float] = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        per.append((time.perf_counter() - start) / calls * 1e6)
    return statistics.median(per), min(per), max(per)


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--calls", type=int, default=20_000)
    p.add_argument("--writes", type=int, default=1000, help="events per write-path run (0: none)")
    p.add_argument("--no-docs", action="store_true")
    a = p.parse_args(argv)

    key = SigningKey.generate()
    signed = key.sign(os.urandom(300))
    verify_key = key.verify_key

    timebank: dict[str, Any] = json.loads((EXAMPLES / "timebank.json").read_text())
    dues: dict[str, Any] = json.loads((EXAMPLES / "dues.json").read_text())
    program = compile_code(decode(timebank["code"]))
    dues_program = compile_code(decode(dues["code"]))
    granted = frozenset(timebank["capabilities"])
    args = {"sender": member(0), "recipient": member(1), "hours": 3}
    dict_host = DictHost(100)
    view = MemoryView(100)

    def run(host: Any) -> Callable[[], object]:
        def call() -> object:
            return execute(program, "record_service", args, host=host, granted=granted,
                           caller=member(0), treasury=TREASURY, now=0, fuel_limit=1000)  # fmt: skip

        return call

    def view_call() -> object:
        host = ViewHost(view, view.coop_record, 0)  # one per invocation, as the rule makes it
        return run(host)()

    def charge() -> object:
        return execute(dues_program, "charge", {}, host=DictHost(100), granted=granted,
                       caller=TREASURY, treasury=TREASURY, now=0, fuel_limit=100_000)  # fmt: skip

    load = os.getloadavg()
    rows: list[tuple[str, tuple[float, float, float]]] = [
        ("verify (baseline)", median_us(lambda: verify_key.verify(signed), a.calls, a.repeat)),
        ("record_service, dict host", median_us(run(dict_host), a.calls, a.repeat)),
        ("record_service, view host", median_us(view_call, a.calls, a.repeat)),
        ("compile (once per version)",
         median_us(lambda: compile_code(decode(timebank["code"])), a.calls // 10, a.repeat)),
        ("dues over 100 members", median_us(charge, max(1, a.calls // 100), a.repeat)),
    ]  # fmt: skip
    writes = write_path(a.writes, 3) if a.writes else {}
    load_after = os.getloadavg()
    base = rows[0][1][0]
    header = ["measurement", "median µs", "range µs", "x verify"]
    table = [
        [name, f"{m:,.2f}", f"{lo:,.2f}–{hi:,.2f}", f"{m / base:.3f}"] for name, (m, lo, hi) in rows
    ]
    print_table("contract rule vs Ed25519 verification", header, table)
    write_table: list[list[str]] = []
    if writes:
        pay = statistics.median(writes["payment"])
        for label, what in (("payment", "a payment, appended alone (baseline)"),
                            ("invocation", "a record_service invocation, appended alone"),
                            ("execution", "its execution by the contract duty")):  # fmt: skip
            us = [x * 1e6 for x in writes[label]]
            m = statistics.median(us)
            write_table.append(
                [what, f"{m:,.0f}", f"{min(us):,.0f}–{max(us):,.0f}", f"{m / (pay * 1e6):.2f}"]
            )
        print_table(
            f"write path, {a.writes:,} events x 3 runs (SQLite)",
            ["measurement", "median µs", "range µs", "x payment"],
            write_table,
        )
    view_ratio = rows[2][1][0] / base
    verdict = "met" if view_ratio <= 0.25 else "NOT met"
    note = (
        f"Target (issue 18): a rule's evaluation ≤ 0.25 × one verification: {verdict} "
        f"({view_ratio:.3f} with the view host, {rows[1][1][0] / base:.3f} with dicts). "
        f"Load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} before, "
        f"{load_after[0]:.2f} after (1/5/15 min, {os.cpu_count()} cores; a shared machine: "
        "other engineers' tests ran at the same time). "
        f"{a.repeat} repetitions of {a.calls:,} calls; "
        + ", ".join(f"{k} {v}" for k, v in machine_info().items() if k in ("cpu", "python"))
        + "."
    )
    print(note)
    if not a.no_docs:
        text = markdown_table(header, table)
        if write_table:
            write_header = ["write path (SQLite, one event per append)", "median µs",
                            "range µs", "x payment"]  # fmt: skip
            text += "\n\n" + markdown_table(write_header, write_table)
        append_section(DOCS, f"contracts, {utc_now()}", text + "\n\n" + note)
        print(f"appended to {DOCS}")


if __name__ == "__main__":
    main(sys.argv[1:])
