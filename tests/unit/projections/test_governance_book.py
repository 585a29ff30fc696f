"""The live tally book and the tally document, on a coop judged by the rules in memory: hand-
computed counts with delegation chains, weights and recasts, equal to the close's recount at
every step; loads only when something other than a vote may have changed who counts; sealed
choices hidden while open."""

from __future__ import annotations

from typing import Any

from support.coops import CoopScript
from support.rule_coop import Coop

from icn.application.append import CommittedEvent
from icn.domain.events.envelope import Event
from icn.domain.governance import state
from icn.domain.governance.closing import recount
from icn.domain.governance.records import ProposalRecord
from icn.domain.governance.tally import commitment_of
from icn.projections import governance_views as views
from icn.projections.governance_book import GovernanceBook

DAY = 86_400_000
NAMES = ("alice", "bob", "carol", "dan", "erin")


class Story:
    """Events judged in order, each told to the book as the write path's listener would."""

    def __init__(self) -> None:
        self.c = Coop(CoopScript())
        self.s = self.c.s
        self.size = 0
        self.book = GovernanceBook(self.c.state, lambda coop: self.size)
        self.write(self.s.found({n: (["admin"] if n == "alice" else []) for n in NAMES}))
        for name, rules in (
            ("sealed", {"sealed": True}),
            ("quad", {"method": "quadratic", "credits": 100}),
        ):
            self.write(self.event("coop", "DomainDefined", {"domain": name, "rules": rules}))

    def event(self, who: str, kind: str, body: dict[str, Any], **kw: Any) -> Event:
        return self.s.event(who, f"governance.{kind}", body, **kw)

    def write(self, event: Event, *, heard: bool = True) -> None:
        self.c.ok(event)
        told = CommittedEvent(
            event.coop, self.size, event.id, event.type, event.author, event.wire_bytes()
        )
        self.size += 1
        if heard:
            self.book.heard([told])

    def propose(self, domain: str = "root") -> str:
        body = {"domain": domain, "title": "T", "text": "", "action": {"kind": "text"},
                "closes_at": self.s.ts + 1 + DAY}  # fmt: skip
        event = self.event("alice", "ProposalSubmitted", body)
        self.write(event)
        return event.id

    def vote(self, who: str, pid: str, choice: str, **more: Any) -> None:
        self.write(self.event(who, "VoteCast", {"proposal": pid, "choice": choice, **more}))

    def delegate(self, who: str, to: str | None, domain: str = "root") -> None:
        body = {"domain": domain, "to": self.s.did(to) if to else None}
        self.write(self.event(who, "VoteDelegated", body))

    def proposal(self, pid: str) -> ProposalRecord:
        p = state.proposal(self.c.state, self.s.coop, pid)
        assert p is not None
        return p

    def tally(self, pid: str) -> tuple[int, ...]:
        """(yes, no, yes weight, no weight, counted), checked against the recount."""
        p = self.proposal(pid)
        t = self.book.tally(self.s.coop, p, with_digest=True)
        coop = self.c.state.coop(self.s.coop)
        assert coop is not None
        r = recount(self.c.state, coop, p)
        assert (t.counts, t.eligible, t.counted, t.outcome, t.ballots_digest) == tuple(
            r[i] for i in (1, 2, 3, 0, 4)
        )
        c = t.counts
        return (c.yes, c.no, c.yes_weight, c.no_weight, t.counted)


def test_delegation_chains_recasts_and_own_ballots_by_hand() -> None:
    g = Story()
    pid = g.propose()
    assert g.tally(pid) == (0, 0, 0, 0, 0)
    g.delegate("carol", "alice")
    g.delegate("erin", "carol")  # erin -> carol -> alice
    loads = g.book.loads
    g.vote("alice", pid, "yes")  # alice, and through her carol and erin
    assert g.tally(pid) == (3, 0, 3, 0, 3)
    g.vote("bob", pid, "no")
    assert g.tally(pid) == (3, 1, 3, 1, 4)
    g.vote("carol", pid, "no")  # her own ballot: erin now follows carol, not alice
    assert g.tally(pid) == (1, 3, 1, 3, 4)
    g.vote("alice", pid, "no")
    g.vote("carol", pid, "yes")  # a recast replaces; erin follows again
    assert g.tally(pid) == (2, 2, 2, 2, 4)
    assert g.book.loads == loads + 1  # loaded by the first read after the delegations only
    g.vote("dan", pid, "abstain")  # counts toward quorum, not the threshold
    assert g.tally(pid) == (2, 2, 2, 2, 5)
    t = g.book.tally(g.s.coop, g.proposal(pid))
    assert (t.counts.abstain, t.outcome, t.ballots, t.revealed) == (1, "rejected", 4, 4)
    assert g.book.loads == loads + 1


def test_quadratic_weight_is_the_ballot_counted_credits_root_for_each_voter() -> None:
    g = Story()
    pid = g.propose("quad")
    g.delegate("bob", "alice", "quad")
    g.tally(pid)
    g.vote("alice", pid, "yes", credits=9)  # √9 = 3, for alice and for bob through her
    g.vote("carol", pid, "no", credits=16)
    assert g.tally(pid) == (2, 1, 6, 4, 3)


def test_a_membership_change_or_an_unheard_commit_loads_the_counts_again() -> None:
    g = Story()
    pid = g.propose()
    g.vote("alice", pid, "yes")
    assert g.tally(pid) == (1, 0, 1, 0, 1)
    loads = g.book.loads
    g.write(g.s.admit("alice", "frank"))  # one more eligible voter
    t = g.book.tally(g.s.coop, g.proposal(pid))
    assert (t.eligible, g.book.loads) == (6, loads + 1)
    g.write(g.event("bob", "VoteCast", {"proposal": pid, "choice": "no"}), heard=False)
    g.vote("carol", pid, "no")  # heard, but after a commit the book never heard of
    assert g.tally(pid) == (1, 2, 1, 2, 3) and g.book.loads == loads + 2


def test_a_sealed_tally_shows_no_choices_while_open() -> None:
    g = Story()
    pid = g.propose("sealed")
    for who, choice in (("alice", "yes"), ("bob", "no")):
        commitment = commitment_of(choice, None, f"{who}-salt-0123456789")
        g.write(g.event(who, "VoteCommitted", {"proposal": pid, "commitment": commitment}))
    p = g.proposal(pid)
    doc = views.tally_view(g.s.coop, p, None, g.book.tally(g.s.coop, p, with_digest=True))
    assert (doc.sealed, doc.counts, doc.projected, doc.ballots_digest) == (True, None, None, None)
    assert (doc.ballots, doc.revealed, doc.counted, doc.eligible) == (2, 0, 2, 5)
    assert (doc.quorum_needed, doc.quorum_met, doc.final) == (3, False, False)
    assert g.tally(pid) == (0, 0, 0, 0, 2)  # unrevealed commitments count as abstain


def test_a_closed_tally_is_the_close_and_the_quorum_rounds_up() -> None:
    assert [views.quorum_needed(500_000, n) for n in (0, 1, 4, 5)] == [0, 1, 2, 3]
    assert views.quorum_needed(333_334, 3) == 2
