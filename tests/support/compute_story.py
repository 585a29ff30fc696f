"""A coop that runs paid compute tasks through the rules alone: the steps tests compose."""

from __future__ import annotations

import base64
from typing import Any

import msgspec

from icn.domain.compute.abi import Outcome
from icn.domain.compute.results import Answer, commitment_of, output_hash
from icn.domain.compute.task_records import TaskRecord
from icn.domain.compute.task_rules import entries_of, task
from icn.domain.events.envelope import Event
from icn.domain.ledger import holds
from support.coops import CoopScript
from support.rule_coop import Coop

MODULE = "cd" * 32
EXECUTORS = ["node-1", "node-2", "node-3", "node-4"]


def compute_coop(members: dict[str, list[str]] | None = None) -> Coop:
    """Founded with alice (admin), bob, carol and four executor nodes (members, registered),
    and a stored module."""
    c = Coop(CoopScript())
    prepare(c, members)
    return c


def prepare(c: Any, members: dict[str, list[str]] | None = None) -> None:
    """Found ``c`` (anything with ``s`` and ``ok``) as :func:`compute_coop` describes."""
    people = members if members is not None else {"alice": ["admin"], "bob": [], "carol": []}
    c.ok(c.s.found({**people, **{n: [] for n in EXECUTORS}}))
    body = {"hash": MODULE, "size": 100, "imports": ["icn.input_len"]}
    c.ok(c.s.event("bob", "compute.ModuleStored", body))
    for i, n in enumerate(EXECUTORS):
        reg = {"node": c.s.did(n), "cpu_millis": 1000 + i, "memory_mib": 512, "region": "eu-1"}
        c.ok(c.s.event("alice", "compute.ExecutorRegistered", reg))


def submit(c: Coop, who: str = "bob", *, advance: bool = True, **body: Any) -> Event:
    fields = {
        "module": MODULE,
        "input": base64.b64encode(b"in").decode(),
        "fuel_limit": 100_000,
        "max_fee": 40,
        "currency": "hours",
    }
    return c.s.event(who, "compute.TaskSubmitted", {**fields, **body}, advance=advance)


def name_of(c: Coop, did: str) -> str:
    return next(n for n in EXECUTORS if c.s.did(n) == did)


def record(c: Coop, task_id: str) -> TaskRecord:
    t = task(c.state, c.s.coop, task_id)
    assert t is not None
    return t


def answer(output: bytes = b"out", fuel: int = 25_000, outcome: str = "ok") -> Answer:
    return Answer(Outcome(outcome), output_hash(output), fuel)


def commit(c: Coop, task_id: str, node: str, a: Answer, salt: str = "ab" * 16) -> Event:
    body = {"task": task_id, "commitment": commitment_of(task_id, c.s.did(node), a, salt)}
    return c.s.event(node, "compute.ResultCommitted", body)


def reveal(
    c: Coop, task_id: str, node: str, a: Answer, output: bytes = b"out", salt: str = "ab" * 16
) -> Event:
    body = {
        "task": task_id,
        "outcome": str(a.outcome),
        "output": base64.b64encode(output).decode(),
        "output_hash": a.output_hash,
        "fuel": a.fuel,
        "salt": salt,
    }
    return c.s.event(node, "compute.ResultRevealed", body)


def run_all(c: Coop, task_id: str, outputs: dict[str, bytes] | None = None) -> None:
    """Every placed executor commits, then reveals (``outputs`` by executor name, default
    ``b"out"``), including one placed after a disagreement."""
    outputs = outputs or {}
    done: set[str] = set()
    while True:
        t = record(c, task_id)
        todo = [name_of(c, n) for n in t.assigned if name_of(c, n) not in done]
        if not todo or t.state != "running":
            return
        for n in todo:
            c.ok(commit(c, task_id, n, answer(outputs.get(n, b"out"))))
        for n in todo:
            out = outputs.get(n, b"out")
            c.ok(reveal(c, task_id, n, answer(out), out))
        done.update(todo)


def settle(c: Coop, task_id: str) -> list[Event]:
    """The coop's DID pays the agreeing executors and settles: the entry, then the event."""
    events = [c.s.event("coop", "ledger.EntryRecorded", e) for e in entries_of(record(c, task_id))]
    for e in events:
        c.ok(e)
    settled = c.s.event(
        "coop", "compute.TaskSettled", {"task": task_id, "effects": [e.id for e in events]}
    )
    c.ok(settled)
    return [*events, settled]


def held(c: Coop, who: str) -> int:
    return holds.held(c.state, c.s.coop, c.s.did(who), "hours")


class _Recording(Coop):
    """A coop that keeps every event it accepted, in order: a log to import elsewhere."""

    def __init__(self, script: CoopScript) -> None:
        super().__init__(script)
        self.events: list[Event] = []

    def apply(self, event: Event) -> Any:
        refusal = super().apply(event)
        if refusal is None:
            self.events.append(event)
        return refusal


def liar_log(coop: str = "compute-coop") -> tuple[CoopScript, list[Event], str]:
    """A log in which the coop sets its own compute policy, then a task's first executor lies,
    is outvoted by the other replica and the tie-breaker, and the settlement disputes it:
    the script, the accepted events and the task's id."""
    c = _Recording(CoopScript(coop))
    prepare(c)
    found = c.state.coop(coop)
    assert found is not None
    policy = msgspec.to_builtins(found.policy)
    policy["compute"] = {"fuel_per_credit": 5_000, "dissent_exclusion_seconds": 3_600}
    c.ok(c.s.event("coop", "coop.PolicyChanged", {"policy": policy}))
    event = submit(c)
    c.ok(event)
    liar = name_of(c, record(c, event.id).assigned[0])
    run_all(c, event.id, {liar: b"lie"})
    settle(c, event.id)
    return c.s, c.events, event.id
