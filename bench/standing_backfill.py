"""The one-time backfill of the standing history at open, against ``icn replay`` of the same store.

Usage: ``python bench/standing_backfill.py [--members N] [--epochs E] [--per-epoch A]
[--payments P] [--reps R] [--no-docs]``.

A store made before the history of standings (issue 17) is judged again from leaf 0 at its
next open (``standing_history.backfill``). This builds a SQLite store of one coop: N members,
E epochs, each after A attestations and P payments (so most of the log is not trust), then
deletes the history rows and their ``node_meta`` note and times the open that backfills them
(median of R), beside an open with nothing to do and ``icn replay`` of the same store (which
judges the same log again and rebuilds every read model: the baseline).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import msgspec
from _common import append_section, machine_info, markdown_table, print_table, utc_now
from nacl.signing import SigningKey
from sqlalchemy import create_engine, delete

from icn.application.append import AppendEvents
from icn.application.trust_epochs import TrustEpochs
from icn.domain.coop import bodies as coop_bodies
from icn.domain.coop.records import CreditPolicy, CurrencySpec, Policy, TrustPolicy
from icn.domain.events.envelope import sign_event
from icn.domain.identity.did import did_from_public_key
from icn.domain.trust import bodies as trust_bodies
from icn.infrastructure.store import schema
from icn.infrastructure.store.database import parse_database_url
from icn.infrastructure.store.event_store import SqlEventStore
from icn.infrastructure.store.read_models import ReadSide
from icn.infrastructure.store.standing_history import HISTORY_META
from icn.interfaces.bootstrap import clock_ms

COOP = "bench"
DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
BATCH = 500


class Chains:
    """Each author's chain head, to sign their next event."""

    def __init__(self) -> None:
        self.heads: dict[bytes, tuple[int, str | None]] = {}
        self.ts = 1_700_000_000_000

    def sign(self, key: SigningKey, type_: str, body: dict[str, object]) -> bytes:
        seq, prev = self.heads.get(bytes(key), (0, None))
        self.ts += 1
        event = sign_event(
            key, coop=COOP, seq=seq + 1, prev=prev, ts=self.ts, type=type_, body=body
        )
        self.heads[bytes(key)] = (event.seq, event.id)
        return event.wire_bytes()


def build(store: SqlEventStore, members: int, epochs: int, per_epoch: int, payments: int) -> int:
    """The coop's log; returns its size."""
    rng = random.Random(17)
    coop_key = SigningKey(bytes(32))
    keys = [SigningKey(rng.randbytes(32)) for _ in range(members)]
    dids = [did_from_public_key(bytes(k.verify_key)) for k in keys]
    chains = Chains()
    credit = CreditPolicy(baseline=10**12, max_limit=10**12)
    founded = coop_bodies.Founded(
        name="bench backfill",
        currencies=[CurrencySpec(code="hours", unit="hour", decimals=2)],
        policy=Policy(credit={"hours": credit}, trust=TrustPolicy(epoch_every_attestations=10**6)),
        members=[coop_bodies.FoundingMember(did=d, roles=[]) for d in dids],
    )
    append = AppendEvents(store, clock_ms)
    append.append([chains.sign(coop_key, coop_bodies.FOUNDED, msgspec.to_builtins(founded))])
    duty = TrustEpochs(store, append, clock_ms)
    for _ in range(epochs):
        lines = []
        for _ in range(per_epoch):
            a, b = rng.sample(range(members), 2)
            body = {"subject": dids[b], "context": "general", "score_ppm": rng.randint(1, 10**6)}
            lines.append(chains.sign(keys[a], trust_bodies.ATTESTATION_RECORDED, body))
        for _ in range(payments):
            a, b = rng.sample(range(members), 2)
            tx = {"from": dids[a], "to": dids[b], "amount": 1, "currency": "hours"}
            lines.append(chains.sign(keys[a], "ledger.EntryRecorded", {"transactions": [tx]}))
        for i in range(0, len(lines), BATCH):
            bad = [o for o in append.append(lines[i : i + BATCH]) if not o.stored]
            if bad:
                raise SystemExit(f"a generated event was not accepted: {bad[0]}")
        duty.publish(COOP, "general", coop_key)
    return store.tree_size(COOP)


def forget(path: Path) -> None:
    """The store as the release before the history left it: no rows, no note."""
    engine = create_engine(f"sqlite+pysqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(delete(schema.trust_standing_history))
        conn.execute(delete(schema.node_meta).where(schema.node_meta.c.key == HISTORY_META))
    engine.dispose()


def timed_open(data: Path) -> float:
    store = SqlEventStore(parse_database_url(None, data))
    try:
        t0 = time.perf_counter()
        store.create_tables()
        return time.perf_counter() - t0
    finally:
        store.close()


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--members", type=int, default=200)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--per-epoch", type=int, default=100, help="attestations per epoch")
    p.add_argument("--payments", type=int, default=900, help="payments per epoch")
    p.add_argument("--reps", type=int, default=3, choices=range(1, 11))
    p.add_argument("--no-docs", action="store_true")
    args = p.parse_args(argv)
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="icn-bench-backfill-") as tmp:
        data = Path(tmp)
        store = SqlEventStore(parse_database_url(None, data))
        store.create_tables()
        size = build(store, args.members, args.epochs, args.per_epoch, args.payments)
        rows = store.engine.connect().execute(schema.trust_standing_history.select()).fetchall()
        store.close()
        sqlite_file = next(data.glob("*.sqlite3"))
        backfill, noop, replay = [], [], []
        for _ in range(args.reps):
            forget(sqlite_file)
            backfill.append(timed_open(data))
            noop.append(timed_open(data))
            store = SqlEventStore(parse_database_url(None, data))
            side = ReadSide(store)
            t0 = time.perf_counter()
            report = side.replay()
            replay.append(time.perf_counter() - t0)
            side.close()
            store.close()
            if not report.identical:
                raise SystemExit(f"replay after the backfill differs: {report.differences[:3]}")
    after = os.getloadavg()
    b, n, r = (statistics.median(x) for x in (backfill, noop, replay))
    header = ["measure", "median s", "events/s", "vs replay"]
    table = [
        ["open that backfills", f"{b:.2f}", f"{size / b:,.0f}", f"{b / r:.2f}x"],
        ["open, nothing to do", f"{n:.3f}", "", f"{n / r:.3f}x"],
        ["icn replay (baseline)", f"{r:.2f}", f"{size / r:,.0f}", "1.00x"],
    ]
    print_table("Standing history backfill", header, table)
    info = machine_info()
    text = (
        f"{utc_now()}, `python bench/standing_backfill.py` ({args.reps} reps, medians): one coop"
        f" of {args.members} members, {size:,} events ({args.epochs} epochs, each after"
        f" {args.per_epoch} attestations and {args.payments} payments), {len(rows):,} history"
        f" rows backfilled and identical on replay each time. {info.get('cpu', '')}; load"
        f" average {load[0]:.1f} before, {after[0]:.1f} after: the machine is shared and"
        " noisy, read the ratio.\n\n" + markdown_table(header, table)
    )
    if not args.no_docs:
        append_section(DOCS, "Standing history backfill at open (issue 17)", text)


if __name__ == "__main__":
    main(sys.argv[1:])
