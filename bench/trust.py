"""Standing epochs and path queries at 10,000 members, against networkx's PageRank; the Sybil table.

Usage: ``python bench/trust.py [--members N] [--attestations A] [--reps R] [--queries Q]
[--quick] [--no-sybil] [--no-docs]``.

Questions, each answered in one run:

1. A full standing epoch: the live edges built from the attestation records
   (liveness, decay) plus ``standing.compute`` (policy defaults: 100 rounds,
   α = 0.15), on a generated coop of 10,000 members and 100,000 attestations.
   Target < 1 s.
2. Path queries (``paths.best_path``, max_hops 3) between random members:
   p50 / p99, target p99 < 20 ms.
3. The reference: ``networkx.pagerank`` on the same weight matrix, with
   ``personalization`` and ``dangling`` = the pre-trusted set and
   ``alpha`` = 1 − α (networkx's alpha is the damping, EigenTrust's α the
   teleport share). Reported: the time ratio and the largest difference in
   any member's share of standing, which must stay < 1e-6 of the total.
4. The Sybil experiment of docs/trust.md over a grid: honest members
   200/300/500/1000, 10 or 15 attestations each, attack edges at a typical
   (750,000) or the maximum score; the Sybils' share of standing measured and
   as the formula ``(1 − α)/α × flow over the attack edges`` predicts it.

5. On a SQLite store, the node's own path: attestations appended with the
   rules judging, the read models' catch-up per attestation, one epoch
   published by the duty, and standing lookups as the API answers them
   (``TrustBook``, from memory; target >= 50,000/s) and uncached.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
from _common import (
    OthersLoad,
    append_section,
    machine_info,
    markdown_table,
    print_table,
    utc_now,
)
from nacl.signing import SigningKey

from icn.application.append import AppendEvents, Outcome
from icn.application.trust_epochs import TrustEpochs
from icn.domain.coop import bodies as coop_bodies
from icn.domain.coop.records import PPM, CreditPolicy, CurrencySpec, Policy, TrustPolicy
from icn.domain.events.envelope import sign_event
from icn.domain.identity.did import did_from_public_key
from icn.domain.trust import bodies as trust_bodies
from icn.domain.trust.classes import TrustClass, classify
from icn.domain.trust.paths import best_path
from icn.domain.trust.records import AttestationRecord
from icn.domain.trust.standing import DAY_MS, MASS, Edge, Standing, compute, edge_weight
from icn.infrastructure.store.database import parse_database_url
from icn.infrastructure.store.event_store import SqlEventStore
from icn.infrastructure.store.read_models import ReadSide
from icn.infrastructure.store.trust_reads import SqlTrustReads
from icn.interfaces.bootstrap import clock_ms
from icn.projections import trust_views as views
from icn.projections.trust_book import TrustBook

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
NOW_MS = 1_800_000_000_000
POLICY = TrustPolicy()
GROUP = 100
"""Members per circle: most people vouch for people they work with."""


@dataclass
class Coop:
    """A generated coop: members in DID order, founders, and every attestation record."""

    members: list[str]
    founders: list[str]
    records: list[AttestationRecord]
    order: dict[str, int]
    """Each DID's place in generation order, which its circle follows."""
    keys: dict[str, SigningKey]


def generate(n: int, attestations: int, seed: int = 14) -> Coop:
    """Members in circles of :data:`GROUP`; 70 % of attestations inside one's circle, the
    rest to anyone, favouring the well known (weight ∝ 1/(rank+10)). Recorded up to two
    years ago (so decay matters), 5 % with an expiry (half of them past), 3 % revoked."""
    rng = random.Random(seed)
    keys = [SigningKey(rng.randbytes(32)) for _ in range(n)]
    dids = [did_from_public_key(bytes(k.verify_key)) for k in keys]
    popularity = [1 / (rank + 10) for rank in range(n)]
    per_member = attestations // n
    records: list[AttestationRecord] = []
    for i, truster in enumerate(dids):
        circle = range((i // GROUP) * GROUP, min(n, (i // GROUP + 1) * GROUP))
        chosen: set[int] = set()
        while len(chosen) < per_member:
            if rng.random() < 0.7:
                j = rng.choice(circle)
            else:
                j = rng.choices(range(n), weights=popularity)[0]
            if j != i:
                chosen.add(j)
        for j in sorted(chosen):
            expires = None
            if rng.random() < 0.05:
                expires = NOW_MS + rng.randint(-180, 180) * DAY_MS
            records.append(
                AttestationRecord(
                    id=f"{len(records):064x}",
                    truster=truster,
                    subject=dids[j],
                    context="general",
                    score_ppm=rng.randint(300_000, 1_000_000),
                    recorded_ms=NOW_MS - rng.randint(0, 730) * DAY_MS,
                    expires_ts=expires,
                    revoked=rng.random() < 0.03,
                )
            )
    founders = rng.sample(dids, 20)
    order = {d: i for i, d in enumerate(dids)}
    return Coop(sorted(dids), founders, records, order, dict(zip(dids, keys, strict=True)))


def live_edges(records: list[AttestationRecord], now: int) -> list[Edge]:
    """What an epoch builds from the records (domain/trust/rules.py ``standing_at``)."""
    half_life = POLICY.half_life_days
    return [
        Edge(a.truster, a.subject, edge_weight(a.score_ppm, a.recorded_ms, now, half_life))
        for a in records
        if a.live_at(now)
    ]


def epoch(coop: Coop, iterations: int = POLICY.iterations) -> tuple[float, float, Standing]:
    """Seconds to build the edges, seconds to compute, and the standing."""
    start = time.perf_counter()
    edges = live_edges(coop.records, NOW_MS)
    built = time.perf_counter()
    standing = compute(
        coop.members, coop.founders, edges, alpha_ppm=POLICY.alpha_ppm, iterations=iterations
    )
    return built - start, time.perf_counter() - built, standing


def adjacency(edges: list[Edge]) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, int]]]:
    """Out- and in-edges with positive weight, as the path score reads them."""
    out: dict[str, dict[str, int]] = {}
    into: dict[str, dict[str, int]] = {}
    for e in edges:
        if e.weight > 0 and e.truster != e.subject:
            out.setdefault(e.truster, {})[e.subject] = e.weight
            into.setdefault(e.subject, {})[e.truster] = e.weight
    return out, into


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank) of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def path_queries(coop: Coop, queries: int) -> dict[str, dict[str, float]]:
    """Latency of ``best_path`` (max_hops 3), in ms, for two kinds of pair: random members
    (mostly more than 3 hops apart, so both half-searches run to the end) and members of
    one circle (mostly found: "how do I know Bob?" about someone nearby)."""
    out, into = adjacency(live_edges(coop.records, NOW_MS))
    generated = sorted(coop.members, key=lambda d: coop.order[d])
    rng = random.Random(3)
    kinds: dict[str, dict[str, float]] = {}
    for kind in ("random pairs", "one circle"):
        ms: list[float] = []
        found = 0
        for _ in range(queries):
            n = len(generated)
            i = rng.randrange(n)
            if kind == "random pairs":
                j = (i + 1 + rng.randrange(n - 1)) % n
            else:  # another member of i's circle
                base = (i // GROUP) * GROUP
                size = min(GROUP, n - base)
                j = base + (i - base + 1 + rng.randrange(size - 1)) % size
            a, b = generated[i], generated[j]
            start = time.perf_counter()
            path = best_path(out, into, a, b, POLICY.max_hops)
            ms.append((time.perf_counter() - start) * 1000)
            found += path is not None
        kinds[kind] = {
            "p50": percentile(ms, 50),
            "p99": percentile(ms, 99),
            "max": max(ms),
            "found": found / queries,
        }
    return kinds


def pagerank(coop: Coop, tol: float) -> tuple[float, dict[str, float]]:
    """networkx's personalised PageRank on the same weights: (seconds, shares)."""
    import networkx as nx  # type: ignore[import-untyped]

    graph = nx.DiGraph()
    graph.add_nodes_from(coop.members)
    members = set(coop.members)
    graph.add_weighted_edges_from(
        (e.truster, e.subject, e.weight)
        for e in live_edges(coop.records, NOW_MS)
        if e.weight > 0 and e.truster != e.subject and {e.truster, e.subject} <= members
    )
    p = {d: 1.0 for d in coop.founders if d in members}
    start = time.perf_counter()
    shares = nx.pagerank(
        graph,
        alpha=1 - POLICY.alpha_ppm / PPM,
        personalization=p,
        dangling=p,
        weight="weight",
        tol=tol,
        max_iter=10_000,
    )
    return time.perf_counter() - start, shares


def largest_difference(standing: Standing, shares: dict[str, float]) -> float:
    """max |t_i / MASS − PageRank_i| over members: a fraction of the total standing."""
    return max(
        abs(m / MASS - shares[d]) for d, m in zip(standing.members, standing.mass, strict=True)
    )


COOP = "bench-trust"
BATCH = 100
CHUNK = 10_000
"""Attestations appended between two timed catch-ups of the read models."""


class Signer:
    """Chain heads of the coop's members and of the coop's own DID, to sign each next event."""

    def __init__(self, coop: Coop) -> None:
        self.keys = coop.keys
        self.coop_key = SigningKey(bytes(32))
        self.heads: dict[str, tuple[int, str | None]] = {}
        self.ts = 1_700_000_000_000

    def sign(self, who: str | None, type_: str, body: dict[str, Any]) -> bytes:
        """The next event of member ``who`` (``None``: the coop's DID)."""
        key = self.coop_key if who is None else self.keys[who]
        seq, prev = self.heads.get(who or "", (0, None))
        self.ts += 1
        event = sign_event(
            key, coop=COOP, seq=seq + 1, prev=prev, ts=self.ts, type=type_, body=body
        )  # fmt: skip
        self.heads[who or ""] = (event.seq, event.id)
        return event.wire_bytes()


def membership(coop: Coop, signer: Signer) -> list[bytes]:
    """``coop.Founded`` by the founders (pre-trusted, the first an admin), then admissions."""
    credit = CreditPolicy(baseline=10**12, max_limit=10**12)
    body = coop_bodies.Founded(
        name="bench trust",
        currencies=[CurrencySpec(code="hours", unit="hour", decimals=2)],
        policy=Policy(credit={"hours": credit}),
        members=[
            coop_bodies.FoundingMember(did=d, roles=["admin"] if i == 0 else [])
            for i, d in enumerate(coop.founders)
        ],
    )
    lines = [signer.sign(None, coop_bodies.FOUNDED, msgspec.to_builtins(body))]
    founders = set(coop.founders)
    admin = coop.founders[0]
    for did in coop.members:
        if did not in founders:
            body_ = {"member": did, "roles": []}
            lines.append(signer.sign(admin, coop_bodies.MEMBER_ADMITTED, body_))
    return lines


def attestation_lines(coop: Coop, signer: Signer) -> list[bytes]:
    """One ``trust.AttestationRecorded`` per generated record, in the order generated (the
    store's own trusted time dates them, so neither decay nor expiry is replayed here)."""
    return [
        signer.sign(
            r.truster,
            trust_bodies.ATTESTATION_RECORDED,
            {"subject": r.subject, "context": "general", "score_ppm": r.score_ppm},
        )
        for r in coop.records
    ]


def _stored(outcomes: list[Outcome]) -> None:
    bad = next((o for o in outcomes if not o.stored), None)
    if bad is not None:
        raise SystemExit(f"a generated event was not accepted: {bad}")


def _append_all(append: AppendEvents, lines: list[bytes]) -> None:
    for start in range(0, len(lines), BATCH):
        _stored(append.append(lines[start : start + BATCH]))


def read_model(coop: Coop, lookups: int) -> dict[str, float]:
    """The node's own path on a SQLite store: attestations appended (rules judged) in
    chunks, each chunk followed by a timed catch-up of the read models; one epoch published
    by the duty (computed, then recomputed by the rules that judge it); then standing
    lookups as the API answers them (from the in-memory ``TrustBook``), and uncached."""
    signer = Signer(coop)
    setup = membership(coop, signer)
    lines = attestation_lines(coop, signer)
    found: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="icn-bench-trust-") as tmp:
        store = SqlEventStore(parse_database_url(None, Path(tmp)))
        side: ReadSide | None = None
        try:
            store.create_tables()
            append = AppendEvents(store, clock_ms)
            _append_all(append, setup)
            side = ReadSide(store)
            side.catch_up(COOP)
            appends, catch_ups = [], []
            for start in range(0, len(lines), CHUNK):
                chunk = lines[start : start + CHUNK]
                t0 = time.perf_counter()
                _append_all(append, chunk)
                t1 = time.perf_counter()
                side.catch_up(COOP)
                t2 = time.perf_counter()
                appends.append((t1 - t0) / len(chunk))
                catch_ups.append((t2 - t1) / len(chunk))
            found["append µs/attestation"] = statistics.median(appends) * 1e6
            found["projection µs/attestation"] = statistics.median(catch_ups) * 1e6
            epochs = TrustEpochs(store, append, clock_ms)
            t0 = time.perf_counter()
            epochs.publish(COOP, "general", signer.coop_key)
            found["epoch published s"] = time.perf_counter() - t0
            side.catch_up(COOP)
            reads = SqlTrustReads(store.engine)
            rng = random.Random(5)
            asked = [rng.choice(coop.members) for _ in range(lookups)]
            book = TrustBook(reads, clock_ms)
            t0 = time.perf_counter()
            book.member(COOP, asked[0], "general")  # the first read loads the context whole
            found["book load s"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            for did in asked:
                got = book.member(COOP, did, "general")
                assert got.standings, did
            found["lookups/s"] = lookups / (time.perf_counter() - t0)
            t0 = time.perf_counter()
            for did in asked[: lookups // 10]:
                assert views.member_standing(reads, COOP, did, "general").standings, did
            found["uncached lookups/s"] = (lookups // 10) / (time.perf_counter() - t0)
            t0 = time.perf_counter()
            for did in asked:
                reads.record(COOP, "standing", f"general/{did}")
            found["record reads/s"] = lookups / (time.perf_counter() - t0)
            t0 = time.perf_counter()
            page = views.standing(reads, COOP, "general")
            found["standing page s"] = time.perf_counter() - t0
            assert len(page.members) == len(coop.members)
        finally:
            if side is not None:
                side.close()
            store.close()
    return found


@dataclass
class SybilRow:
    """One cell of the Sybil grid."""

    honest: int
    sybils: int
    degree: int
    attack_ppm: int
    share: float
    predicted: float
    path_ppm: tuple[int, int]
    sybil_class: TrustClass
    honest_known: float


def sybil_run(honest_n: int, degree: int, attack_ppm: int, sybils_n: int = 1000) -> SybilRow:
    """tests/unit/domain/trust/test_sybil_experiment.py's set-up, sized by the arguments
    (500, 15, 1,000,000 gives the test's own numbers)."""
    rng = random.Random(2026)
    honest = [f"did:key:zHonest{i:04d}" for i in range(honest_n)]
    sybils = [f"did:key:zSybil{i:04d}" for i in range(sybils_n)]
    founders = honest[:5]
    edges = [
        Edge(a, b, rng.randint(500_000, 1_000_000))
        for a in honest
        for b in rng.sample(honest, degree)
        if a != b
    ]
    edges += [Edge(a, b, 1_000_000) for a in sybils for b in sybils if a != b]
    fooled = rng.sample(honest[5:], 10)
    attack = [Edge(a, sybils[i % sybils_n], attack_ppm) for i, a in enumerate(fooled)]
    edges += attack
    standing = compute(
        honest + sybils, founders, edges, alpha_ppm=POLICY.alpha_ppm, iterations=POLICY.iterations
    )
    mass = dict(zip(standing.members, standing.mass, strict=True))
    given: dict[str, int] = {}
    for e in edges:
        given[e.truster] = given.get(e.truster, 0) + e.weight
    flow = sum(mass[e.truster] * e.weight / given[e.truster] for e in attack)
    alpha = POLICY.alpha_ppm / PPM
    normalised = dict(zip(standing.members, standing.normalised_ppm(), strict=True))
    classes = [classify(normalised[s], POLICY) for s in sybils]
    out, into = adjacency(edges)
    paths = [best_path(out, into, f, sybils[-1], POLICY.max_hops) for f in fooled]
    scores = [p.score_ppm if p else 0 for p in paths]
    return SybilRow(
        honest=honest_n,
        sybils=sybils_n,
        degree=degree,
        attack_ppm=attack_ppm,
        share=sum(mass[s] for s in sybils) / MASS,
        predicted=(1 - alpha) / alpha * flow / MASS,
        path_ppm=(min(scores), max(scores)),
        sybil_class=max(classes, key=list(TrustClass).index),
        honest_known=sum(classify(normalised[h], POLICY) != TrustClass.ISOLATED for h in honest)
        / honest_n,
    )


def sybil_grid(quick: bool) -> list[SybilRow]:
    """Every cell of the grid, then smaller rings in the test's cell: the ring's share is set
    by the attack edges, not by its size, so fewer Sybils each hold more (quick: the test's
    cell, the smallest coop and a ring of 10)."""
    cells = [
        (h, d, s, 1000) for h in (200, 300, 500, 1000) for d in (10, 15) for s in (750_000, PPM)
    ]
    cells += [(500, 15, PPM, n) for n in (100, 10, 2)]
    if quick:
        cells = [(500, 15, PPM, 1000), (200, 10, PPM, 1000), (500, 15, PPM, 10)]
    return [sybil_run(h, d, s, n) for h, d, s, n in cells]


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, help="members of the generated coop (10000)")
    parser.add_argument("--attestations", type=int, help="attestation records (100000)")
    parser.add_argument("--reps", type=int, default=5, choices=range(3, 21), metavar="R (3..20)")
    parser.add_argument("--queries", type=int, help="path queries (2000)")
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    parser.add_argument("--no-sybil", action="store_true", help="skip the Sybil grid")
    parser.add_argument(
        "--no-store", action="store_true", help="skip the read-model part (SQLite store)"
    )
    parser.add_argument("--lookups", type=int, default=20_000, help="standing lookups (20000)")
    parser.add_argument("--no-docs", action="store_true", help="print only; leave docs/ alone")
    args = parser.parse_args(argv)
    args.members = args.members or (2_000 if args.quick else 10_000)
    args.attestations = args.attestations or 10 * args.members
    args.queries = args.queries or (300 if args.quick else 2_000)
    return args


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    coop = generate(args.members, args.attestations)
    live = live_edges(coop.records, NOW_MS)
    print(
        f"{len(coop.members):,} members, {len(coop.records):,} attestation records "
        f"({len(live):,} live, {sum(e.weight > 0 for e in live):,} with weight > 0), "
        f"{len(coop.founders)} founders pre-trusted"
    )

    builds, computes, totals, nx_times = [], [], [], []
    standing = None
    shares: dict[str, float] = {}
    load = OthersLoad()
    for _ in range(args.reps):  # interleaved: a noisy moment hits both sides
        with load.watch():
            built, computed, standing = epoch(coop)
        builds.append(built)
        computes.append(computed)
        totals.append(built + computed)
        seconds, shares = pagerank(coop, tol=1e-12)
        nx_times.append(seconds)
    assert standing is not None
    diff_100 = largest_difference(standing, shares)
    _, _, longer = epoch(coop, iterations=200)
    diff_200 = largest_difference(longer, shares)
    paths = path_queries(coop, args.queries)

    med = statistics.median
    rows = [
        ["epoch: edges from records", f"{med(builds) * 1000:,.0f} ms", ""],
        ["epoch: standing.compute (100 rounds)", f"{med(computes) * 1000:,.0f} ms", ""],
        [
            "epoch: total",
            f"{med(totals) * 1000:,.0f} ms",
            "PASS" if med(totals) < 1.0 else "FAIL",
        ],
        [
            f"others' busy cores during the epochs (of {os.cpu_count()})",
            f"{med(load.cores):.1f}",
            "",
        ],
        ["networkx.pagerank (tol 1e-12)", f"{med(nx_times) * 1000:,.0f} ms", ""],
        ["compute / networkx time", f"{med(computes) / med(nx_times):.2f}", ""],
        [
            "largest difference in a share of the total, 100 rounds",
            f"{diff_100:.1e}",
            _verdict(diff_100),
        ],
        [
            "largest difference in a share of the total, 200 rounds",
            f"{diff_200:.1e}",
            _verdict(diff_200),
        ],
    ]
    for kind, q in paths.items():
        rows += [
            [f"path query p50, {kind} (max_hops 3)", f"{q['p50']:.2f} ms", ""],
            [f"path query p99, {kind}", f"{q['p99']:.2f} ms", "PASS" if q["p99"] < 20 else "FAIL"],
            [f"path query max, {kind}", f"{q['max']:.2f} ms", ""],
            [f"path found, {kind}", f"{q['found']:.0%}", ""],
        ]
    header = ["measurement (median of reps)", "value", "target"]
    stored = {} if args.no_store else read_model(coop, args.lookups)
    if stored:
        rows += [
            [
                "append: trust.AttestationRecorded (rules judged, batches of 100)",
                f"{stored['append µs/attestation']:,.0f} µs each",
                "",
            ],
            [
                "projection: catch-up per attestation (chunks of 10,000)",
                f"{stored['projection µs/attestation']:,.0f} µs each",
                "",
            ],
            [
                "epoch published by the duty (computed, then recomputed by the rules)",
                f"{stored['epoch published s']:,.2f} s",
                "",
            ],
            [
                "standing lookups as the API answers them (TrustBook, from memory)",
                f"{stored['lookups/s']:,.0f} /s",
                "PASS" if stored["lookups/s"] >= 50_000 else "FAIL (< 50,000/s)",
            ],
            [
                "  loading one context into the book (after each epoch, or 5 s)",
                f"{stored['book load s'] * 1000:,.0f} ms",
                "",
            ],
            [
                "  uncached: trust_views.member_standing on the store",
                f"{stored['uncached lookups/s']:,.0f} /s",
                "",
            ],
            ["  of which: one record read", f"{stored['record reads/s']:,.0f} /s", ""],
            [
                f"whole standing page ({len(coop.members):,} members)",
                f"{stored['standing page s'] * 1000:,.0f} ms",
                "",
            ],
        ]
    title = f"standing epoch and paths, {args.members:,} members, {len(coop.records):,} records"
    print_table(title, header, rows)

    grid = [] if args.no_sybil else sybil_grid(args.quick)
    sybil_header = [
        "honest",
        "Sybils",
        "att./member",
        "attack score",
        "Sybil share",
        "predicted",
        "path score from fooled",
        "best Sybil class",
        "honest not Isolated",
    ]
    sybil_rows = [
        [
            f"{r.honest:,}",
            f"{r.sybils:,}",
            str(r.degree),
            f"{r.attack_ppm / PPM:.2f}",
            f"{r.share:.2%}",
            f"{r.predicted:.2%}",
            f"{r.path_ppm[0] / PPM:.2f}" + ("" if r.path_ppm[0] == r.path_ppm[1] else "+"),
            r.sybil_class.value,
            f"{r.honest_known:.0%}",
        ]
        for r in grid
    ]
    if grid:
        print_table("Sybil experiment: 10 attack edges", sybil_header, sybil_rows)

    if args.no_docs:
        return
    facts = machine_info()
    import networkx

    text = (
        f"Machine: {facts['cpu']} ({facts['cpu_count']} cores), Python {facts['python']}, "
        f"networkx {networkx.__version__}. {args.reps} repetitions, epoch and networkx "
        f"interleaved. Coop: {len(coop.members):,} members in circles of {GROUP}, "
        f"{len(coop.records):,} attestation records ({len(live):,} live), 20 founders "
        "pre-trusted, default policy (α 0.15, half-life 180 days, 100 rounds).\n\n"
        + markdown_table(header, rows)
    )
    if grid:
        text += (
            "\n\nSybil experiment (`tests/unit/domain/trust/test_sybil_experiment.py`'s set-up;"
            " predicted = (1 − α)/α × standing that flows over the attack edges per round):\n\n"
            + markdown_table(sybil_header, sybil_rows)
        )
    append_section(DOCS, f"trust ({utc_now()})", text)
    print(f"appended to {DOCS}")


def _verdict(diff: float) -> str:
    return "PASS (< 1e-6)" if diff < 1e-6 else "FAIL (≥ 1e-6)"


if __name__ == "__main__":
    main(sys.argv[1:])
