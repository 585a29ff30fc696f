"""What events waiting on state cost every later event of the intake (issue: parked lot).

Usage: ``python bench/parked_intake.py [--old DIR] [--pairs N]``. Two loads, each
on a fresh SQLite store: ``none`` (no event waits) and ``strangers`` (1,000
payments by non-members parked ``not-a-member``, then valid payments). For each,
the CPU time (process time) of ``Intake.receive`` per event over 300 payments
delivered in batches of 100. Runs alternate, in separate processes, between this
tree and ``--old DIR`` (a tree holding ``icn``'s layer folders of the code to compare
with, e.g. ``git archive <commit> domain application projections infrastructure
interfaces``), and without ``--old`` between this code and its
``judge_every_waiting_line`` switch. Prints the medians and the ratios; the
machine's load average goes beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
STRANGERS = 1_000
EVENTS = 300
BATCH = 100


def run_one(load: str, every: bool) -> float:
    sys.path.insert(0, str(HERE.parent / "tests"))
    from support.coops import CoopScript
    from support.stores import StoreNode

    coop = "bench-parked"
    s = CoopScript(coop)
    with tempfile.TemporaryDirectory(prefix="h9-bench-") as d:
        node = StoreNode(Path(d), coop)
        if every:
            node.append.judge_every_waiting_line = True
        node.intake.receive(
            coop, [s.found({"alice": ["admin"], "bob": [], "carol": []}).wire_bytes()]
        )
        if load == "strangers":
            waiting = [s.pay(f"stranger-{i}", "bob", 1).wire_bytes() for i in range(STRANGERS)]
            for i in range(0, STRANGERS, BATCH):
                node.intake.receive(coop, waiting[i : i + BATCH])
            assert node.state.parked_count(coop) == STRANGERS
        pays = [
            s.pay(
                ("alice", "bob", "carol")[i % 3], ("bob", "carol", "alice")[i % 3], 1
            ).wire_bytes()
            for i in range(EVENTS)
        ]
        cpu = 0.0
        for i in range(0, EVENTS, BATCH):
            t = time.process_time()
            node.intake.receive(coop, pays[i : i + BATCH])
            cpu += time.process_time() - t
        assert len(node.ids()) == 1 + EVENTS
        node.close()
    return cpu / EVENTS * 1e6


def child(load: str, every: bool, old: str | None) -> float:
    env = dict(os.environ)
    cmd = [sys.executable, __file__, "--child", load]
    if every:
        cmd.append("--every")
    if old:
        cmd += ["--old", old]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return float(json.loads(out.splitlines()[-1])["us_per_event"])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--child")
    p.add_argument("--every", action="store_true")
    p.add_argument("--old")
    p.add_argument("--pairs", type=int, default=3)
    p.add_argument("--loads", default="none,strangers")
    a = p.parse_args()
    if a.child:
        if a.old:
            import icn

            icn.__path__ = [str(Path(a.old) / "icn")]  # the compared tree's layers
        print(json.dumps({"us_per_event": run_one(a.child, a.every)}))
        return
    print(f"load average before: {os.getloadavg()}")
    for load in a.loads.split(","):
        old_runs, new_runs = [], []
        for _ in range(a.pairs):
            old_runs.append(child(load, not a.old, a.old))
            new_runs.append(child(load, False, None))
        mo, mn = statistics.median(old_runs), statistics.median(new_runs)
        print(
            f"{load}: old {[round(x) for x in old_runs]} new {[round(x) for x in new_runs]}"
            f" us/event; medians {mo:.0f} / {mn:.0f}; new/old {mn / mo:.3f}"
        )
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
