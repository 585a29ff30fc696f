"""What settling a paid compute task costs: a task run on 2 replicas against one on 1.

Each task goes the whole way in one process on a real SQLite store: the
member's ``compute.TaskSubmitted`` (the hold, the placement), each executor's
sandboxed run through the compiled cache, its ``ResultCommitted`` and
``ResultRevealed``, and the coop key's settlement batch (the entry that pays,
``TaskSettled``). The baseline is the same task on 1 replica: one execution
plus its events. Target (issue 18): 2 replicas ≤ 2.3 × that.

A two-replica task is measured twice, on two coops in the same run: one with
three executors registered, where placement adds the tie-breaker (the task runs
three times, as every coop with a third executor free does now), and one with
two, where there is no tie-breaker. The target is read on the first: it is what
a 2-replica task costs a coop that has a third executor, which is every coop
that can settle a disagreement at all; the second is the floor a coop of two
executors pays, and gets no majority for it. Figures are this process's CPU
time per task (signing, judging and the sandbox all run here), medians of
interleaved repetitions, with the load average, since the machine is shared.
Also: tasks settled per second of wall time, in-process (no HTTP, no executor
processes). Run by ``bench/compute.py --settlement``.
"""

from __future__ import annotations

import base64
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support.coops import CoopScript

from icn.application.append import AppendEvents
from icn.application.authoring import EventAuthor
from icn.application.compute_duties import ComputeDuties
from icn.domain.compute import bodies as cb
from icn.domain.compute import task_bodies as tb
from icn.domain.coop.records import CreditPolicy, Policy
from icn.infrastructure.compute.cache import CompiledModuleCache
from icn.infrastructure.compute.executor import execute
from icn.infrastructure.compute.modules import intake
from icn.infrastructure.compute.sandbox import Sandbox, installed_engine
from icn.infrastructure.store.database import parse_database_url
from icn.infrastructure.store.event_store import SqlEventStore

TARGET = 2.3
WAT = Path(__file__).resolve().parents[1] / "examples" / "compute" / "swapcase.wat"
INPUT = bytes(range(256)) * 16
"""4 KiB: a small task, so the events' share of the cost is what is measured."""
EXECUTORS = ["ex1", "ex2"]
TIE_BREAKER = "ex3"
"""Registered on the rig measured with a tie-breaker: a third executor free."""
CREDIT = 10**12


class Rig:
    """A founded coop with a stored module and its executors (two unless told), on a
    fresh store."""

    def __init__(self, tmp: Path, executors: tuple[str, ...] = tuple(EXECUTORS)) -> None:
        self.executors = list(executors)
        self.last = ""
        """The last task submitted."""
        self.store = SqlEventStore(parse_database_url(None, tmp))
        self.store.create_tables()
        clock = lambda: time.time_ns() // 1_000_000  # noqa: E731
        self.append = AppendEvents(self.store, clock)
        self.author = EventAuthor(self.store, self.append, clock)
        self.duties = ComputeDuties(self.store, self.author)
        self.s = CoopScript("bench")
        credit = CreditPolicy(baseline=CREDIT, max_limit=CREDIT)
        found = self.s.found(
            {"alice": ["admin"], "bob": [], **{n: [] for n in self.executors}},
            policy=Policy(credit={"hours": credit}),
        )
        self.append.append([found.wire_bytes()])
        self.sandbox = Sandbox()
        self.cache = CompiledModuleCache(tmp / "compiled", self.sandbox)
        module = intake(WAT.read_bytes(), self.sandbox)
        assert not hasattr(module, "code"), module
        self.module = module
        self.submit("bob", [(cb.MODULE_STORED, module.body())])
        for n in self.executors:
            reg = {"node": self.s.did(n), "cpu_millis": 1000, "memory_mib": 64, "region": "eu"}
            self.submit("alice", [(cb.EXECUTOR_REGISTERED, reg)])

    def submit(self, who: str, items: list[tuple[str, object]]) -> str:
        events, _ = self.author.submit(self.s.key(who), "bench", items)  # type: ignore[arg-type]
        return events[-1].id

    def task(self, replicas: int) -> None:
        """One task, submitted to settled."""
        body = {
            "module": self.module.hash,
            "input": base64.b64encode(INPUT).decode(),
            "fuel_limit": 10**7,
            "max_fee": 1000,
            "currency": "hours",
            "replicas": replicas,
        }
        task = self.submit("bob", [(tb.TASK_SUBMITTED, body)])
        self.last = task
        placed = self.duties_task(task)
        sealed = {}
        for node in placed:
            name = next(n for n in self.executors if self.s.did(n) == node)
            sealed[name] = execute(
                self.cache,
                lambda h: self.module.binary,
                task=task,
                executor=node,
                module=self.module.hash,
                input=INPUT,
                fuel_limit=10**7,
                engine=installed_engine(),
            )
            commit = {"task": task, "commitment": sealed[name].commitment}
            self.submit(name, [(tb.RESULT_COMMITTED, commit)])
        for name, a in sealed.items():
            reveal = {
                "task": task,
                "outcome": str(a.answer.outcome),
                "output": base64.b64encode(a.result.output).decode(),
                "output_hash": a.answer.output_hash,
                "fuel": a.answer.fuel,
                "salt": a.salt,
            }
            self.submit(name, [(tb.RESULT_REVEALED, reveal)])
        signed = self.duties.settle("bench", task, self.s.coop_key)
        assert [e.type for e in signed][-1] == tb.TASK_SETTLED, signed

    def duties_task(self, task: str) -> list[str]:
        from icn.application.trust_epochs import CommittedState
        from icn.domain.compute.task_rules import task as task_record

        t = task_record(CommittedState(self.store), "bench", task)
        assert t is not None
        return list(t.assigned)


ONE = "1 replica"
TIED = "2 replicas, third executor free (3 runs)"
PAIR = "2 replicas, two executors (2 runs)"


def measure(reps: int, per_rep: int) -> dict[str, list[float]]:
    """CPU seconds per task of each configuration, per repetition (interleaved); and wall
    per task with the tie-breaker."""
    found: dict[str, list[float]] = {ONE: [], TIED: [], PAIR: [], f"{TIED} wall": []}
    with tempfile.TemporaryDirectory(prefix="icn-bench-settle-") as tmp:
        (Path(tmp) / "three").mkdir()
        (Path(tmp) / "two").mkdir()
        three = Rig(Path(tmp) / "three", (*EXECUTORS, TIE_BREAKER))
        two = Rig(Path(tmp) / "two")
        runs = [(ONE, three, 1), (TIED, three, 2), (PAIR, two, 2)]
        try:
            for _, rig, replicas in runs:  # warm: compiled cache entries, code paths
                rig.task(replicas)
            assert len(three.duties_task(three.last)) == 3, "no tie-breaker placed"
            for _ in range(reps):
                for name, rig, replicas in runs:
                    cpu, wall = time.process_time(), time.perf_counter()
                    for _ in range(per_rep):
                        rig.task(replicas)
                    found[name].append((time.process_time() - cpu) / per_rep)
                    if name == TIED:
                        found[f"{TIED} wall"].append((time.perf_counter() - wall) / per_rep)
        finally:
            for rig in (three, two):
                rig.sandbox.close()
                rig.store.close()
    return found


def report(found: dict[str, list[float]], reps: int, per_rep: int, append: bool) -> None:
    import os

    from _common import append_section, machine_info, markdown_table, print_table, utc_now

    med = {k: statistics.median(v) for k, v in found.items()}
    tied, pair = med[TIED] / med[ONE], med[PAIR] / med[ONE]
    rows = [
        [k, f"{med[k] * 1e3:,.2f}", f"{min(v) * 1e3:,.2f}–{max(v) * 1e3:,.2f}"]
        for k, v in found.items()
    ]
    checks = [
        ["2 replicas with the tie-breaker / 1 replica (CPU per settled task)", f"{tied:.2f}×",
         f"≤ {TARGET}", "PASS" if tied <= TARGET else "FAIL"],
        ["2 replicas without a third executor / 1 replica", f"{pair:.2f}×", "", "info"],
        ["the tie-breaker's cost: with / without", f"{med[TIED] / med[PAIR]:.2f}×", "", "info"],
        ["tasks settled per second, 2 replicas with the tie-breaker, in-process",
         f"{1 / med[f'{TIED} wall']:.1f}", "", "info"],
    ]  # fmt: skip
    print_table("compute settlement", ["per task", "median ms", "range ms"], rows)
    print_table("ratios", ["ratio", "value", "target", "verdict"], checks)
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    text = "\n".join(
        [
            "A paid task from submission to settlement in one process on SQLite (issue 18):",
            "submit (hold, placement), each replica's sandboxed run (4 KiB input, cached",
            "module), its commit and reveal, the coop key's settlement batch. Process CPU",
            "per task, medians of interleaved repetitions; the machine is shared. A",
            "2-replica task on a coop with a third executor free runs three times (the",
            "tie-breaker, placed with the replicas); on a coop of two executors twice. The",
            "target reads the first: what a 2-replica task costs a coop that can settle a",
            "disagreement at all.",
            "",
            markdown_table(["per task", "median ms", "range ms"], rows),
            "",
            markdown_table(["ratio", "value", "target", "verdict"], checks),
            "",
            *(f"- {k}: {v}" for k, v in machine_info().items()),
            f"- repetitions: {reps} × {per_rep} tasks each",
            f"- load average (1/5/15 min) at the end: {load}",
        ]
    )
    if append:
        docs = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
        append_section(docs, f"compute: task settlement ({utc_now()})", text)


def main(reps: int = 7, per_rep: int = 10, append: bool = True) -> None:
    report(measure(reps, per_rep), reps, per_rep, append)


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    main(reps=2 if quick else 7, per_rep=2 if quick else 10, append="--no-append" not in sys.argv)
