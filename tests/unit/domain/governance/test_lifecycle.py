"""The proposal lifecycle as a state machine: no illegal transition is reachable.

Hypothesis drives random proposals (words only, or a charter
amendment carried out by an effect), votes, withdrawals, vetoes, closes (true
and forged), effects linking a proposal, executions (with the effect, without
it, or recording a failure) and the passing of time through the rules alone,
and after every step checks that each event was accepted exactly when the
lifecycle allows it: votes only while open and before ``closes_at``, a close
once and only when due and only with the recount's numbers, an effect once
and only of an accepted proposal not executed yet, an execution at most once
and only of an accepted proposal, listing the effect that carried it out (or
a failure when none did), nothing after an end; appeals within their window,
each resolved by a root proposal in words or with exactly the decision's
reverse (the section back to the text before it, or what a rejection
refused), one overturning action per decision at a time.
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
from icn.domain.governance.links import OVERTURNED
from icn.domain.governance.records import ProposalState

DAY = 86_400_000
NAMES = ["ann", "ben", "cat", "dan"]
ENDED = (*ProposalState.CLOSED, ProposalState.WITHDRAWN, ProposalState.VETOED)


class Model(msgspec.Struct):
    """What the lifecycle allows for one proposal."""

    author: str
    domain: str
    closes_at: int
    charter: bool = False
    """An ``amend-charter`` action (else ``text``): carried out by a ``CharterAmended``."""
    state: str = ProposalState.OPEN
    executed: bool = False
    effect: str | None = None
    """The id of the effect that carried it out, once one was accepted."""
    amendment: dict[str, Any] | None = None
    """A charter proposal's section, text and rationale."""
    reverse: dict[str, Any] | None = None
    """Its effect's reverse: the section back to the text before it."""
    overturns: list[str] = msgspec.field(default_factory=list)
    """Appeal proposals that overturn it with an action (not in words only)."""


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
        """At most three proposals (and one appeal's), so random steps reach their ends."""
        self.charter: dict[str, list[str]] = {}
        """Each section's texts, oldest first."""
        self.last = ""
        """The id of the last event :meth:`send` judged."""

    def send(self, who: str, kind: str, body: dict[str, Any]) -> bool:
        """Judge the event at ``now``; True when accepted (its chain then moves on)."""
        event: Event = self.s.event(who, f"governance.{kind}", body, ts=self.now, advance=False)
        accepted = self.c.apply(event) is None
        if accepted:
            follow(self.s, event)
        self.last = event.id
        return accepted

    def pick(self, index: int) -> tuple[str, Model]:
        pid = self.order[index % len(self.order)]
        return pid, self.model[pid]

    def is_open(self, m: Model) -> bool:
        return m.state == ProposalState.OPEN and self.now < m.closes_at

    @precondition(lambda self: len(self.order) < 3)
    @rule(who=st.sampled_from(NAMES), board=st.booleans(), charter=st.booleans())
    def propose(self, who: str, board: bool, charter: bool) -> None:
        domain = "board" if board else "root"
        closes_at = self.now + DAY
        action = {"kind": "amend-charter", **self.amendment(len(self.order))}
        body = {"domain": domain, "title": "t", "text": "", "closes_at": closes_at,
                "action": action if charter else {"kind": "text"}}  # fmt: skip
        event = self.s.event(who, "governance.ProposalSubmitted", body, ts=self.now, advance=False)
        assert self.c.apply(event) is None
        follow(self.s, event)
        self.model[event.id] = Model(
            author=who, domain=domain, closes_at=closes_at, charter=charter,
            amendment={k: v for k, v in action.items() if k != "kind"} if charter else None,
        )  # fmt: skip
        self.order.append(event.id)

    @staticmethod
    def amendment(n: int) -> dict[str, Any]:
        return {"section": f"s{n}", "text": f"version of {n}", "rationale": "r"}

    @precondition(lambda self: self.order)
    @rule(i=st.integers(0, 3), who=st.sampled_from(NAMES),
          choice=st.sampled_from(["yes", "yes", "yes", "no", "abstain", "block"]))  # fmt: skip
    def vote(self, i: int, who: str, choice: str) -> None:
        pid, m = self.pick(i)
        accepted = self.send(who, "VoteCast", {"proposal": pid, "choice": choice})
        assert accepted == (self.is_open(m) and choice != "block")

    @precondition(lambda self: self.order)
    @rule(i=st.integers(0, 3), who=st.sampled_from(NAMES))
    def withdraw(self, i: int, who: str) -> None:
        pid, m = self.pick(i)
        accepted = self.send(who, "ProposalWithdrawn", {"proposal": pid})
        assert accepted == (self.is_open(m) and who == m.author)
        if accepted:
            m.state = ProposalState.WITHDRAWN

    @precondition(lambda self: self.order)
    @rule(i=st.integers(0, 3), who=st.sampled_from(NAMES))
    def veto(self, i: int, who: str) -> None:
        pid, m = self.pick(i)
        accepted = self.send(who, "ProposalVetoed", {"proposal": pid, "reason": "no"})
        assert accepted == (self.is_open(m) and m.domain == "board" and who == "ann")
        if accepted:
            m.state = ProposalState.VETOED

    @precondition(lambda self: self.order)
    @rule(i=st.integers(0, 3), forged=st.booleans())
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
    @rule(i=st.integers(0, 3), j=st.none() | st.integers(0, 3))
    def carry_out(self, i: int, j: int | None) -> None:
        """The coop's DID amends the charter naming proposal i with proposal j's amendment
        (``None``: proposal i's own)."""
        pid, m = self.pick(i)
        other = self.order.index(self.pick(i if j is None else j)[0])
        amendment = self.model[self.order[other]].amendment or self.amendment(other)
        body = {**amendment, "proposal": pid}
        event = self.s.event("coop", "governance.CharterAmended", body, ts=self.now, advance=False)
        accepted = self.c.apply(event) is None
        fits = m.charter and self.order.index(pid) == other
        live = m.state == ProposalState.ACCEPTED and not m.executed and m.effect is None
        assert accepted == (live and fits)
        if accepted:
            follow(self.s, event)
            m.effect = event.id
            texts = self.charter.setdefault(amendment["section"], [])
            before = texts[-1] if texts else ""
            m.reverse = {"section": amendment["section"], "text": before, "rationale": OVERTURNED}
            texts.append(amendment["text"])

    @precondition(lambda self: self.order and len(self.order) < 4)
    @rule(i=st.integers(0, 3), who=st.sampled_from(NAMES), words=st.booleans(),
          decide=st.booleans())  # fmt: skip
    def overturn(self, i: int, who: str, words: bool, decide: bool) -> None:
        """``who`` appeals proposal i; a root proposal resolves the appeal, in words or with
        the reverse of a charter amendment (section back to the text before it), and is
        maybe voted through, carried out and executed at once."""
        pid, m = self.pick(i)
        appealed = self.send(who, "AppealFiled", {"proposal": pid, "grounds": "g"})
        in_window = m.state in ProposalState.CLOSED and self.now < m.closes_at + 7 * DAY
        assert appealed == in_window
        if not appealed:
            return
        section = m.amendment["section"] if m.amendment else f"s{self.order.index(pid)}"
        texts = self.charter.get(section, [])
        undo = {"section": section, "text": texts[-2] if len(texts) > 1 else "",
                "rationale": OVERTURNED}  # fmt: skip
        action = {"kind": "text"} if words else {"kind": "amend-charter", **undo}
        body = {"domain": "root", "title": "appeal", "text": "", "action": action,
                "closes_at": self.now + DAY, "appeal": self.last}  # fmt: skip
        accepted = self.send(who, "ProposalSubmitted", body)
        if m.state in (ProposalState.REJECTED, ProposalState.NO_QUORUM):
            reverse = m.amendment  # overturning a "no" carries out what was refused
        else:
            reverse = m.reverse if m.executed else None
        pending = [o for o in m.overturns if self.model[o].state in (
            ProposalState.OPEN, ProposalState.ACCEPTED)]  # fmt: skip
        assert accepted == (words or (reverse == undo and not pending))
        if accepted:
            resolution = Model(author=who, domain="root", closes_at=self.now + DAY,
                               charter=not words, amendment=None if words else undo)  # fmt: skip
            self.model[self.last] = resolution
            self.order.append(self.last)
            if not words:
                m.overturns.append(self.last)
            if decide:
                self.vote_through(len(self.order) - 1, "both")

    @precondition(lambda self: self.order)
    @rule(i=st.integers(0, 3), how=st.sampled_from(["listed", "none", "failed"]))
    def execute(self, i: int, how: str) -> None:
        pid, m = self.pick(i)
        body: dict[str, Any] = {"proposal": pid}
        if how == "listed" and m.effect is not None:
            body["effects"] = [m.effect]
        if how == "failed":
            body["failed"] = "already-member"
        accepted = self.send("coop", "ProposalExecuted", body)
        carried = m.effect is not None
        if how == "failed":
            right = not carried  # a failure only when nothing carried it out
        else:  # words only: no effect; a charter amendment: the one that carried it out
            right = carried == m.charter and ("effects" in body) == carried
        assert accepted == (m.state == ProposalState.ACCEPTED and not m.executed and right)
        if accepted:
            m.executed = True

    @precondition(lambda self: self.order)
    @rule(i=st.integers(0, 3), then=st.sampled_from(["", "carry", "execute", "both"]))
    def vote_through(self, i: int, then: str) -> None:
        """Three yes votes, a day, the close, then maybe its effect and its execution: the
        steps above in a row, so random runs reach effects and executions often."""
        for who in NAMES[:3]:
            self.vote(i, who, "yes")
        self.tick(DAY)
        self.close(i, False)
        if then in ("carry", "both"):
            self.carry_out(i, None)
        if then in ("execute", "both"):
            self.execute(i, "listed")

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
            assert record.carried == ((m.effect,) if m.effect else ())
            assert not m.effect or (m.charter and m.state == ProposalState.ACCEPTED)
            if record.execution == "executed":
                assert record.effects == record.carried  # exactly the effect that carried it
            assert not m.executed or m.state == ProposalState.ACCEPTED
            assert m.state == ProposalState.OPEN or m.state in ENDED


Lifecycle.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestLifecycle = Lifecycle.TestCase
