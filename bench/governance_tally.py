"""The live tally read while 10,000 members vote, in one process on a SQLite store.

Usage: ``python bench/governance_tally.py [--members N] [--batch B] [--rate Q]``.

What ``GET …/proposals/{id}/tally`` does for an open proposal, without HTTP:
the count from :class:`~icn.projections.governance_book.GovernanceBook`
(loaded once, then moved by the commit listener vote by vote), from memory
(``cached``), or every ``CHECK_S`` from the store (``read``: the log size and
the proposal's record), and the document (``governance_views.tally_view``).
A reader thread asks at ``Q`` per second (open loop, latency from the
scheduled time) while the main thread appends every member's
``governance.VoteCast`` through ``AppendEvents`` (the write path: rules
judged, one transaction per batch of ``B``, the listener told in the
committing thread), with the interpreter settled as ``icn node run`` settles it
(:mod:`icn.interfaces.http.interpreter`: start-up heap frozen, larger young
generation) before the coop is built. Reported: p50 / p99 / max of the reads, how many times
the counts were loaded, and whether the last live tally equals the
close's recount. Issue 15's target: p99 < 10 ms. ``bench/governance.py``
measures the same read over HTTP with the node's other work around it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support.coops import STORY_NOW, CoopScript

from icn.application.append import AppendEvents
from icn.application.trust_epochs import CommittedState
from icn.domain.events.envelope import inspect
from icn.domain.governance import bodies as gb
from icn.domain.governance.closing import recount
from icn.infrastructure.store.database import parse_database_url
from icn.infrastructure.store.event_store import SqlEventStore
from icn.infrastructure.store.governance_reads import SqlGovernanceReads
from icn.interfaces.http.interpreter import settle_for_serving
from icn.projections import governance_views as views
from icn.projections.governance_book import GovernanceBook

COOP = "bench"
DAY = 86_400_000


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--members", type=int, default=10_000)
    p.add_argument("--batch", type=int, default=100, help="votes per append transaction")
    p.add_argument("--rate", type=float, default=200, help="tally reads per second")
    a = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="icn-bench-tally-") as tmp:
        store = SqlEventStore(parse_database_url(None, Path(tmp)))
        store.create_tables()
        # As `icn node run` does before it serves; the coop is built after, as on a node
        # whose coops grew (or were loaded lazily) after it started.
        settle_for_serving()
        now = [STORY_NOW]
        append = AppendEvents(store, lambda: now[0])
        s = CoopScript(COOP)
        names = [f"m{i:05d}" for i in range(a.members)]
        setup = [s.found({names[0]: ["admin"]})]
        setup += [s.admit(names[0], n) for n in names[1:]]
        body = {"domain": "root", "title": "Bench", "text": "", "action": {"kind": "text"},
                "closes_at": STORY_NOW + DAY}  # fmt: skip
        proposal = s.event(names[0], gb.PROPOSAL_SUBMITTED, body)
        setup.append(proposal)
        for i in range(0, len(setup), 500):
            append.append_inspected([inspect(e.wire_bytes()) for e in setup[i : i + 500]])
        choices = ("yes", "no", "abstain")
        votes = [
            inspect(
                s.event(n, gb.VOTE_CAST, {"proposal": proposal.id, "choice": choices[i % 3]})
                .wire_bytes()
            )
            for i, n in enumerate(names)
        ]  # fmt: skip
        view = CommittedState(store)
        book = GovernanceBook(view, store.tree_size)
        append.add_commit_listener(book.heard)
        reads = SqlGovernanceReads(store.engine)

        def read() -> views.TallyView:  # as the route: from memory, else from the store
            kept = book.cached(COOP, proposal.id, now[0])
            if kept is None:
                views.founded(reads, COOP)
                kept = book.read(COOP, proposal.id, now[0])
                assert kept is not None
            return views.tally_view(COOP, kept[0], None, kept[1])

        started = time.perf_counter()
        read()  # the first read loads the counts (timed apart)
        load_s = time.perf_counter() - started
        first_loads = book.loads
        quiet = []
        for _ in range(2000):
            t0 = time.perf_counter()
            read()
            quiet.append((time.perf_counter() - t0) * 1000)
        latencies: list[float] = []
        done = threading.Event()

        def reader() -> None:
            t0 = time.perf_counter()
            k = 0
            while not done.is_set():
                due = t0 + k / a.rate
                wait = due - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
                read()
                latencies.append((time.perf_counter() - due) * 1000)
                k += 1

        thread = threading.Thread(target=reader)
        thread.start()
        t_votes = time.perf_counter()
        for i in range(0, len(votes), a.batch):
            outcomes = append.append_inspected(votes[i : i + a.batch])
            assert all(o.verdict == "ok" for o in outcomes), outcomes[:3]
        vote_s = time.perf_counter() - t_votes
        done.set()
        thread.join()
        last = read()
        record = views.proposal_record(reads, COOP, proposal.id)
        coop = view.coop(COOP)
        assert coop is not None
        r = recount(view, coop, record)
        same = (last.counts, last.eligible, last.counted) == (r.counts, r.eligible, r.counted)
        t0 = time.perf_counter()
        cold = GovernanceBook(view, store.tree_size)
        cold.tally(COOP, record)
        cold_ms = (time.perf_counter() - t0) * 1000
        store.close()
    print(f"members {a.members:,}; votes {len(votes):,} in {vote_s:.1f} s "
          f"({len(votes) / vote_s:,.0f}/s, batches of {a.batch})")  # fmt: skip
    print(f"tally reads during voting: {len(latencies):,} at {a.rate:g}/s; "
          f"p50 {statistics.median(latencies):.2f} ms, p99 {pct(latencies, 0.99):.2f} ms, "
          f"max {max(latencies):.2f} ms")  # fmt: skip
    print(f"tally reads alone (no writes): p50 {statistics.median(quiet):.3f} ms, "
          f"p99 {pct(quiet, 0.99):.3f} ms")  # fmt: skip
    print(f"loads: {book.loads} (first read {first_loads}, {load_s * 1000:.0f} ms apart); "
          f"a cold load with every ballot in: {cold_ms:.0f} ms")  # fmt: skip
    print(f"live tally at the end equals the recount: {same}")


if __name__ == "__main__":
    main(sys.argv[1:])
