"""Payments through the whole ledger against the foundation's raw append; balance reads at scale.

Usage: ``python bench/ledger.py [--payments N] [--reps R] [--members M] [--entries E] [--quick]``.

Three questions, each answered against a baseline measured in the same run:

1. Payments per second end to end: verified, judged by the coop rules
   (membership, freeze, credit limit) inside the append transaction, then
   applied to the read models (``catch_up``): batched (100 per append),
   single with the projections following (one catch-up after the run, as the
   node's asynchronous projections do), and single with a catch-up after
   every payment (an HTTP post followed at once by a balance read: the
   worst case). The baseline is the foundation's raw append of events
   of the same authors and size that no coop rule judges (``log.*``), on a
   fresh store each repetition.
2. ``icn replay`` events per second (rules re-judged, every projection
   rebuilt in a scratch database and compared), against the same raw append.
3. Balance query latency (p50/p99 over random members) on a store with
   ``--members`` members and ``--entries`` entries (10,000 and 1,000,000 by
   default: building it takes minutes and is shown with a progress bar).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgspec
from _common import (
    BENCH_CREDIT,
    Series,
    append_section,
    machine_info,
    markdown_table,
    print_table,
    progress_bar,
    utc_now,
)
from nacl.signing import SigningKey

from icn.application.append import AppendEvents, Outcome
from icn.application.parallel import inspect_chunks
from icn.domain.coop import bodies as coop_bodies
from icn.domain.coop.records import CreditPolicy, CurrencySpec, Policy
from icn.domain.events.envelope import sign_event
from icn.domain.identity.did import did_from_public_key
from icn.infrastructure.store.database import parse_database_url
from icn.infrastructure.store.event_store import SqlEventStore
from icn.infrastructure.store.read_models import ReadSide
from icn.interfaces.bootstrap import clock_ms
from icn.projections import ledger_views as views

COOP = "bench-ledger"
BATCH = 100
FOUNDERS_MAX = 500
"""Founders listed in ``coop.Founded``; the rest are admitted by the first. The body
allows 1,000, but 1,000 founders make a ~79 KB event, over the 64 KiB event limit."""
T0_MS = 1_700_000_000_000
DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


class Chains:
    """Keys and chain heads of a coop's members, to sign each one's next event."""

    def __init__(self, n: int, seed: int = 7) -> None:
        rnd = random.Random(seed)
        self.keys = [SigningKey(rnd.randbytes(32)) for _ in range(n)]
        self.dids = [did_from_public_key(bytes(k.verify_key)) for k in self.keys]
        self.heads: list[tuple[int, str | None]] = [(0, None)] * n
        self.coop_key = SigningKey(rnd.randbytes(32))
        self.coop_head: tuple[int, str | None] = (0, None)
        self.ts = T0_MS

    def sign(self, who: int | None, type_: str, body: dict[str, Any]) -> bytes:
        """The next event of member ``who`` (``None``: the coop's own DID)."""
        key = self.coop_key if who is None else self.keys[who]
        seq, prev = self.coop_head if who is None else self.heads[who]
        self.ts += 1
        event = sign_event(
            key, coop=COOP, seq=seq + 1, prev=prev, ts=self.ts, type=type_, body=body
        )  # fmt: skip
        if who is None:
            self.coop_head = (event.seq, event.id)
        else:
            self.heads[who] = (event.seq, event.id)
        return event.wire_bytes()

    def membership(self) -> list[bytes]:
        """``coop.Founded`` (≤ 1,000 founders, the first an admin), then admissions of the rest."""
        policy = Policy(
            credit={"hours": CreditPolicy(baseline=BENCH_CREDIT, max_limit=BENCH_CREDIT)}
        )
        founders = self.dids[:FOUNDERS_MAX]
        body = coop_bodies.Founded(
            name="bench ledger",
            currencies=[CurrencySpec(code="hours", unit="hour", decimals=2)],
            policy=policy,
            members=[
                coop_bodies.FoundingMember(did=d, roles=["admin"] if i == 0 else [])
                for i, d in enumerate(founders)
            ],
        )
        lines = [self.sign(None, coop_bodies.FOUNDED, msgspec.to_builtins(body))]
        for did in self.dids[FOUNDERS_MAX:]:
            lines.append(self.sign(0, coop_bodies.MEMBER_ADMITTED, {"member": did, "roles": []}))
        return lines

    def payment(self, i: int) -> bytes:
        """Entry ``i``: member i mod n pays a pseudo-random other member."""
        n = len(self.keys)
        payer = i % n
        payee = (payer + 1 + (i * 7919) % (n - 1)) % n
        tx = {"from": self.dids[payer], "to": self.dids[payee], "amount": i % 997 + 1,
              "currency": "hours", "memo": "bench"}  # fmt: skip
        return self.sign(payer, "ledger.EntryRecorded", {"transactions": [tx]})

    def noted(self, i: int) -> bytes:
        """The raw-append twin of :meth:`payment`: same authors and body size, no coop rule."""
        n = len(self.keys)
        payer = i % n
        payee = (payer + 1 + (i * 7919) % (n - 1)) % n
        tx = {"from": self.dids[payer], "to": self.dids[payee], "amount": i % 997 + 1,
              "currency": "hours", "memo": "bench"}  # fmt: skip
        return self.sign(payer, "log.BenchNoted", {"transactions": [tx]})


@contextmanager
def fresh_store() -> Iterator[tuple[SqlEventStore, AppendEvents]]:
    """A new SQLite store in a temporary data dir."""
    with tempfile.TemporaryDirectory(prefix="icn-bench-ledger-") as tmp:
        store = SqlEventStore(parse_database_url(None, Path(tmp)))
        try:
            store.create_tables()
            yield store, AppendEvents(store, clock_ms)
        finally:
            store.close()


def _check(outcomes: list[Outcome]) -> None:
    if not all(o.stored for o in outcomes):
        bad = next(o for o in outcomes if not o.stored)
        raise SystemExit(f"a generated event was not accepted: {bad}")


def _append_all(append: AppendEvents, lines: Sequence[bytes]) -> None:
    for start in range(0, len(lines), BATCH):
        _check(append.append(lines[start : start + BATCH]))


class Workload(msgspec.Struct):
    """What every repetition appends: the membership, then payments and their raw twins."""

    setup: list[bytes]
    payments: list[bytes]
    raw: list[bytes]


def workload(members: int, n: int) -> Workload:
    chains = Chains(members)
    setup = chains.membership()
    payments = [chains.payment(i) for i in range(n)]
    twins = Chains(members, seed=8)  # other keys: log.* needs no membership
    raw = [twins.noted(i) for i in range(n)]
    return Workload(setup, payments, raw)


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure_once(w: Workload, series: dict[str, Series]) -> None:
    """One repetition of every throughput measurement, each on a fresh store."""
    n = len(w.payments)
    with fresh_store() as (_, append):
        series["raw batched"].seconds.append(_timed(lambda: _append_all(append, w.raw)))
    with fresh_store() as (_, append):
        series["raw single"].seconds.append(
            _timed(lambda: [_check(append.append([line])) for line in w.raw[: n // 5]])
        )
    with fresh_store() as (store, append):
        _append_all(append, w.setup)
        side = ReadSide(store)
        side.catch_up(COOP)

        def batched() -> None:
            _append_all(append, w.payments)
            side.catch_up(COOP)

        series["payments batched + projections"].seconds.append(_timed(batched))
        replayed: list[Any] = []
        seconds = _timed(lambda: replayed.append(side.replay()))
        if not replayed[0].identical:
            raise SystemExit(f"replay found differences: {replayed[0].differences[:3]}")
        series["replay (whole log)"].seconds.append(seconds)
        side.close()
    with fresh_store() as (store, append):
        _append_all(append, w.setup)
        side = ReadSide(store)
        side.catch_up(COOP)

        def single() -> None:
            for line in w.payments[: n // 5]:
                _check(append.append([line]))
                side.catch_up(COOP)

        series["payments single + catch-up"].seconds.append(_timed(single))
        side.close()
    with fresh_store() as (store, append):
        _append_all(append, w.setup)
        side = ReadSide(store)
        side.catch_up(COOP)

        def single_then_follow() -> None:
            for line in w.payments[: n // 5]:
                _check(append.append([line]))
            side.catch_up(COOP)

        series["payments single"].seconds.append(_timed(single_then_follow))
        side.close()


def throughput(args: argparse.Namespace) -> dict[str, Series]:
    n = args.payments
    w = workload(args.throughput_members, n)
    setup_n = len(w.setup)
    series = {
        "raw batched": Series("raw append, batches of 100 (log.*)", n),
        "raw single": Series("raw append, single (log.*)", n // 5),
        "payments batched + projections": Series("payments, batches of 100 + catch_up", n),
        "payments single": Series("payments, single; projections follow", n // 5),
        "payments single + catch-up": Series("payments, single + catch_up each", n // 5),
        "replay (whole log)": Series("icn replay (rules + projections + compare)", n + setup_n),
    }
    with progress_bar() as bar:
        task = bar.add_task("throughput repetitions", total=args.reps)
        for _ in range(args.reps):
            measure_once(w, series)
            bar.advance(task)
    return series


def scale(args: argparse.Namespace) -> dict[str, float]:
    """Build a store of ``members`` and ``entries``, then time balance reads of random members."""
    chains = Chains(args.members, seed=11)
    setup = chains.membership()
    result: dict[str, float] = {}
    with fresh_store() as (store, append), progress_bar() as bar:
        _append_all(append, setup)
        task = bar.add_task(f"build: {args.entries:,} signed entries", total=args.entries)
        started = time.perf_counter()
        done = 0
        while done < args.entries:
            chunk = min(20_000, args.entries - done)
            lines = [chains.payment(done + i) for i in range(chunk)]
            for _, inspections in inspect_chunks(lines, 2, chunk=BATCH):
                _check(append.append_inspected(inspections))
                bar.advance(task, len(inspections))
            done += chunk
        result["build ev/s"] = args.entries / (time.perf_counter() - started)
        side = ReadSide(store)
        catch = side.catch_up(COOP)
        result["catch_up ev/s"] = catch.events_per_s
        rnd = random.Random(3)
        latencies = []
        now = clock_ms()
        for _ in range(args.queries):
            did = chains.dids[rnd.randrange(args.members)]
            t = time.perf_counter()
            views.account_balances(side.models, COOP, did, now)
            latencies.append((time.perf_counter() - t) * 1000)
        latencies.sort()
        result["balance p50 ms"] = statistics.median(latencies)
        result["balance p99 ms"] = latencies[int(len(latencies) * 0.99) - 1]
        side.close()
    return result


def report(series: dict[str, Series], at_scale: dict[str, float], args: argparse.Namespace) -> None:
    rows = [s.row() for s in series.values()]
    print_table("medians", Series.HEADER, rows)
    raw_b, raw_s = series["raw batched"].rate, series["raw single"].rate
    pay_b = series["payments batched + projections"].rate
    pay_s = series["payments single"].rate
    pay_each = series["payments single + catch-up"].rate
    replay = series["replay (whole log)"].rate
    p99 = at_scale["balance p99 ms"]
    checks = [
        ["payments batched / raw batched", f"{pay_b / raw_b:.2f}", "≥ 0.60",
         "PASS" if pay_b / raw_b >= 0.6 else "FAIL"],
        ["payments single / raw single", f"{pay_s / raw_s:.2f}", "≥ 0.60",
         "PASS" if pay_s / raw_s >= 0.6 else "FAIL"],
        ["payments single + catch_up each / raw single", f"{pay_each / raw_s:.2f}", "",
         "info"],
        ["replay / raw batched", f"{replay / raw_b:.2f}", "", "info"],
        [f"balance query p99 ({args.members:,} members, {args.entries:,} entries)",
         f"{p99:.2f} ms", "< 5 ms", "PASS" if p99 < 5 else "FAIL"],
        ["balance query p50", f"{at_scale['balance p50 ms']:.2f} ms", "", "info"],
        ["build (2 verify workers + rules + append) ev/s", f"{at_scale['build ev/s']:,.0f}",
         "", "info"],
        ["catch_up of the whole log ev/s", f"{at_scale['catch_up ev/s']:,.0f}", "", "info"],
    ]  # fmt: skip
    head = ["check", "value", "target", "verdict"]
    print_table("targets", head, checks)
    params = {
        "payments per repetition": f"{args.payments:,}",
        "repetitions": str(args.reps),
        "members (throughput)": f"{args.throughput_members:,}",
        "scale": f"{args.members:,} members, {args.entries:,} entries, {args.queries:,} queries",
    }
    facts = {**machine_info(), **params}
    text = "\n".join(
        [
            "Payments judged by the coop rules and applied to the read models, against the",
            "foundation's raw append of rule-free events (`log.*`) of the same authors and",
            "size, each on a fresh SQLite store per repetition; medians. Balance reads are",
            "`projections.ledger_views.account_balances` on the scaled store (in-process).",
            "",
            markdown_table(["fact", "value"], [[k, v] for k, v in facts.items()]),
            "",
            markdown_table(Series.HEADER, rows),
            "",
            markdown_table(head, checks),
        ]
    )
    append_section(DOCS, f"ledger ({utc_now()})", text)
    print(f"appended to {DOCS}")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--payments", type=int, help="payments per throughput repetition (5000)")
    parser.add_argument("--reps", type=int, default=3, choices=range(3, 21), metavar="R (3..20)")
    parser.add_argument("--throughput-members", type=int, default=200)
    parser.add_argument("--members", type=int, help="members of the scaled store (10000)")
    parser.add_argument("--entries", type=int, help="entries of the scaled store (1000000)")
    parser.add_argument("--queries", type=int, default=5000)
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    args = parser.parse_args(argv)
    args.payments = args.payments or (1000 if args.quick else 5000)
    args.members = args.members or (1000 if args.quick else 10_000)
    args.entries = args.entries or (20_000 if args.quick else 1_000_000)
    return args


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    series = throughput(args)
    at_scale = scale(args)
    report(series, at_scale, args)


if __name__ == "__main__":
    main(sys.argv[1:])
