"""The proposal lifecycle as a state machine: no illegal transition is reachable.

Hypothesis drives random proposals, votes, withdrawals, vetoes, closes (true
and forged), executions and the passing of time through the rules alone,
and after every step checks that each event was accepted exactly when the
lifecycle allows it: votes only while open and before ``closes_at``, a close
once and only when due and only with the recount's numbers, an execution at
most once and only of an accepted proposal, nothing after an end.
"""

from __future__ import annotations

from typing import Any

import msgspec
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from support.coops import CoopScript, follow
from support.rule_coop import Coop

from icn.domain.events.envelope import Event
from icn.domain.governance import state
from icn.domain.governance.closing import recount
from icn.domain.governance.records import ProposalState

DAY = 86_400_000
NAMES = ["ann", "ben", "cat", "dan"]
ENDED = (*ProposalState.CLOSED, ProposalState.WITHDRAWN, ProposalState.VETOED)


class Model(msgspec.Struct):
    """What the lifecycle allows for one proposal."""

    author: str
    domain: str
    closes_at: int
    state: str = ProposalState.OPEN
    executed: bool = False


class Lifecycle(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.c = Coop(CoopScript())
        self.s = self.c.s
        self.now = self.s.ts
        self.c.ok(self.s.found({n: ["admin"] if n == "ann" else [] for n in NAMES}))
        vetoable = {"domain": "board", "rules": {"veto_roles": ["admin"], "quorum_ppm": 250_000}}
        self.c.ok(self.s.event("coop", "governance.DomainDefined", vetoable))
        self.now = self.s.ts
        self.model: dict[str, Model] = {}
        self.order: list[str] = []
        """At most three proposals, so random steps reach their ends (and executions)."""

    def send(self, who: str, kind: str, body: dict[str, Any]) -> bool:
        """Judge the event at ``now``; True when accepted (its chain then moves on)."""
        event: Event = self.s.event(who, f"governance.{kind}", body, ts=self.now, advance=False)
        accepted = self.c.apply(event) is None
        if accepted:
            follow(self.s, event)
        return accepted

    def pick(self, index: int) -> tuple[str, Model]:
        pid = self.order[index % len(self.order)]
        return pid, self.model[pid]

    def is_open(self, m: Model) -> bool:
        return m.state == ProposalState.OPEN and self.now < m.closes_at

    @precondition(lambda self: len(self.order) < 3)
    @rule(who=st.sampled_from(NAMES), board=st.booleans())
    def propose(self, who: str, board: bool) -> None:
        domain = "board" if board else "root"
        closes_at = self.now + DAY
        body = {"domain": domain, "title": "t", "text": "", "action": {"kind": "text"},
                "closes_at": closes_at}  # fmt: skip
        event = self.s.event(who, "governance.ProposalSubmitted", body, ts=self.now, advance=False)
        assert self.c.apply(event) is None
        follow(self.s, event)
        self.model[event.id] = Model(author=who, domain=domain, closes_at=closes_at)
        self.order.append(event.id)

    @precondition(lambda self: self.order)
    @rule(i=st.integers(0, 2), who=st.sampled_from(NAMES),
          choice=st.sampled_from(["yes", "yes", "yes", "no", "abstain", "block"]))  # fmt: skip
    def vote(self, i: int, who: str, choice: str) -> None:
        pid, m = self.pick(i)
        accepted = self.send(who, "VoteCast", {"proposal": pid, "choice": choice})
        assert accepted == (self.is_open(m) and choice != "block")

    @precondition(lambda self: self.order)
    @rule(i=st.integers(0, 2), who=st.sampled_from(NAMES))
    def withdraw(self, i: int, who: str) -> None:
        pid, m = self.pick(i)
        accepted = self.send(who, "ProposalWithdrawn", {"proposal": pid})
        assert accepted == (self.is_open(m) and who == m.author)
        if accepted:
            m.state = ProposalState.WITHDRAWN

    @precondition(lambda self: self.order)
    @rule(i=st.integers(0, 2), who=st.sampled_from(NAMES))
    def veto(self, i: int, who: str) -> None:
        pid, m = self.pick(i)
        accepted = self.send(who, "ProposalVetoed", {"proposal": pid, "reason": "no"})
        assert accepted == (self.is_open(m) and m.domain == "board" and who == "ann")
        if accepted:
            m.state = ProposalState.VETOED

    @precondition(lambda self: self.order)
    @rule(i=st.integers(0, 2), forged=st.booleans())
    def close(self, i: int, forged: bool) -> None:
        pid, m = self.pick(i)
        record = state.proposal(self.c.state, self.s.coop, pid)
        coop = self.c.state.coop(self.s.coop)
        assert record is not None and coop is not None
        t = recount(self.c.state, coop, record)
        body = {
            "proposal": pid, "outcome": t.outcome, "counts": msgspec.to_builtins(t.counts),
            "eligible": t.eligible, "counted": t.counted, "ballots_digest": t.ballots_digest,
        }  # fmt: skip
        if forged:
            body["counted"] = t.counted + 1
        accepted = self.send("coop", "ProposalClosed", body)
        due = m.state == ProposalState.OPEN and self.now >= m.closes_at
        assert accepted == (due and not forged)
        if accepted:
            m.state = t.outcome

    @precondition(lambda self: self.order)
    @rule(i=st.integers(0, 2))
    def execute(self, i: int) -> None:
        pid, m = self.pick(i)
        accepted = self.send("coop", "ProposalExecuted", {"proposal": pid})
        assert accepted == (m.state == ProposalState.ACCEPTED and not m.executed)
        if accepted:
            m.executed = True

    @rule(ms=st.sampled_from([1, 3_600_000, 6 * 3_600_000, DAY]))
    def tick(self, ms: int) -> None:
        self.now += ms

    @invariant()
    def records_follow_the_lifecycle(self) -> None:
        for pid, m in self.model.items():
            record = state.proposal(self.c.state, self.s.coop, pid)
            assert record is not None
            assert record.state == m.state
            assert (record.execution is not None) == m.executed
            assert not m.executed or m.state == ProposalState.ACCEPTED
            assert m.state == ProposalState.OPEN or m.state in ENDED


Lifecycle.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestLifecycle = Lifecycle.TestCase
