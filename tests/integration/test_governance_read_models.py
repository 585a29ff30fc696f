"""Governance on the real stores (SQLite, PostgreSQL): the live tally kept in memory against
the close's own recount at every step (delegations, weights, recasts, sealed ballots), the
governance read models and their queries, and replay after governance events."""

from __future__ import annotations

from typing import Any

import pytest
from support.coops import STORY_NOW, CoopScript

from icn.application.append import AppendEvents
from icn.application.authoring import EventAuthor
from icn.application.coop_duties import CoopDuties
from icn.application.errors import InvalidRequest, NotFound
from icn.application.governance_duties import GovernanceDuties
from icn.application.trust_epochs import CommittedState
from icn.domain.events.envelope import Event, inspect
from icn.domain.governance import bodies as gb
from icn.domain.governance import state
from icn.domain.governance.closing import recount
from icn.domain.governance.records import ProposalRecord
from icn.domain.governance.tally import commitment_of
from icn.infrastructure.store.event_store import SqlEventStore
from icn.infrastructure.store.governance_reads import SqlGovernanceReads
from icn.infrastructure.store.read_models import ReadSide
from icn.projections import governance_views as views
from icn.projections.governance_book import GovernanceBook

DAY = 86_400_000
NAMES = ["alice", "bob", "carol", "dan", "erin"]
SEALED = {"sealed": True, "reveal_window_ms": DAY}
WEIGHTED = {"method": "weighted", "weights": {"admin": 3}}


class Gov:
    """A coop of five on a real store, its duties, and a live tally book hearing every commit."""

    def __init__(self, store: SqlEventStore) -> None:
        self.store = store
        self.now = STORY_NOW
        self.s = CoopScript("demo")
        self.append = AppendEvents(store, lambda: self.now)
        gov = GovernanceDuties(store, self.append, lambda: self.now)
        author = EventAuthor(store, self.append, lambda: self.now)
        self.duties = CoopDuties(store, author, self._key, None, gov)
        self.view = CommittedState(store)
        self.book = GovernanceBook(self.view, store.tree_size)
        self.append.add_commit_listener(self.book.heard)
        self.reads = SqlGovernanceReads(store.engine)
        self.side = ReadSide(store)
        roles = {n: (["admin"] if n == "alice" else []) for n in NAMES}
        self.write(self.s.found(roles))
        for name, rules in (("sealed", SEALED), ("weighted", WEIGHTED)):
            self.write(self.s.event("coop", gb.DOMAIN_DEFINED, {"domain": name, "rules": rules}))

    def _key(self, coop: str) -> Any:
        return self.s.coop_key if coop == "demo" else None

    def write(self, *events: Event) -> None:
        outcomes = self.append.append_inspected([inspect(e.wire_bytes()) for e in events])
        assert [o.verdict for o in outcomes] == ["ok"] * len(events), outcomes

    def propose(self, domain: str, action: dict[str, Any] | None = None) -> str:
        body = {"domain": domain, "title": f"In {domain}", "text": "Why not.",
                "action": action or {"kind": "text"}, "closes_at": self.now + DAY}  # fmt: skip
        event = self.s.event("alice", gb.PROPOSAL_SUBMITTED, body)
        self.write(event)
        return event.id

    def vote(self, who: str, pid: str, choice: str) -> None:
        self.write(self.s.event(who, gb.VOTE_CAST, {"proposal": pid, "choice": choice}))

    def delegate(self, who: str, to: str | None, domain: str = "root") -> None:
        body = {"domain": domain, "to": self.s.did(to) if to else None}
        self.write(self.s.event(who, gb.VOTE_DELEGATED, body))

    def proposal(self, pid: str) -> ProposalRecord:
        p = state.proposal(self.view, "demo", pid)
        assert p is not None
        return p

    def live(self, pid: str) -> tuple[Any, ...]:
        """The book's tally, checked equal to the close's recount at this position."""
        p = self.proposal(pid)
        t = self.book.tally("demo", p, with_digest=True)
        coop = self.view.coop("demo")
        assert coop is not None
        r = recount(self.view, coop, p)
        assert (t.counts, t.eligible, t.counted, t.outcome, t.ballots_digest) == (
            r.counts, r.eligible, r.counted, r.outcome, r.ballots_digest,
        )  # fmt: skip
        return (t.counts.yes, t.counts.no, t.counted, t.outcome)


@pytest.fixture
def gov(store: SqlEventStore) -> Gov:
    return Gov(store)


def test_the_live_tally_moves_vote_by_vote_as_the_recount_does(gov: Gov) -> None:
    pid = gov.propose("root")
    assert gov.live(pid) == (0, 0, 0, "no-quorum")
    loads = gov.book.loads
    gov.vote("alice", pid, "yes")
    assert gov.live(pid) == (1, 0, 1, "no-quorum")  # 1 of 5: quorum needs 3
    gov.vote("bob", pid, "no")
    gov.vote("dan", pid, "yes")
    assert gov.live(pid) == (2, 1, 3, "accepted")
    gov.vote("dan", pid, "no")  # a recast replaces the earlier ballot
    assert gov.live(pid) == (1, 2, 3, "rejected")
    assert gov.book.loads == loads  # moved by the commits, never loaded again
    gov.delegate("carol", "alice")  # a delegation: loaded again, carol follows alice
    assert gov.live(pid) == (2, 2, 4, "rejected")  # a tie is rejected
    assert gov.book.loads == loads + 1
    gov.delegate("erin", "carol")  # erin -> carol -> alice: followed to the first ballot
    assert gov.live(pid) == (3, 2, 5, "accepted")
    gov.vote("carol", pid, "no")  # her own ballot wins; erin now follows carol's
    assert gov.live(pid) == (1, 4, 5, "rejected")
    gov.vote("alice", pid, "no")
    assert gov.live(pid) == (0, 5, 5, "rejected")


def test_weights_follow_the_voter_not_the_delegate(gov: Gov) -> None:
    pid = gov.propose("weighted")
    gov.delegate("alice", "bob", "weighted")  # alice (admin) weighs 3 with bob's choice
    gov.vote("bob", pid, "no")
    gov.vote("carol", pid, "yes")
    gov.vote("dan", pid, "yes")
    t = gov.book.tally("demo", gov.proposal(pid))
    assert (t.counts.no, t.counts.no_weight, t.counts.yes_weight) == (2, 4, 2)
    assert gov.live(pid) == (2, 2, 4, "rejected")


def test_a_sealed_tally_is_hidden_until_the_close_and_then_equals_it(gov: Gov) -> None:
    pid = gov.propose("sealed")
    salts = {n: f"salt-of-{n}-0123456789" for n in NAMES}
    choices = {"alice": "yes", "bob": "yes", "carol": "no"}
    for who, choice in choices.items():
        body = {"proposal": pid, "commitment": commitment_of(choice, None, salts[who])}
        gov.write(gov.s.event(who, gb.VOTE_COMMITTED, body))
    p = gov.proposal(pid)
    doc = views.tally_view("demo", p, None, gov.book.tally("demo", p))
    assert (doc.counts, doc.projected, doc.ballots, doc.revealed) == (None, None, 3, 0)
    assert (doc.counted, doc.eligible, doc.quorum_needed, doc.quorum_met) == (3, 5, 3, True)
    page = views.ballots(gov.reads, "demo", pid, after=None, limit=10)
    assert [b.choice for b in page.items] == [None] * 3 and page.sealed
    assert all(b.commitment for b in page.items)
    gov.live(pid)  # unrevealed commitments count as abstain, as in the recount
    gov.now = p.closes_at + 1
    for who in ("alice", "carol"):
        body = {"proposal": pid, "choice": choices[who], "salt": salts[who]}
        gov.write(gov.s.event(who, gb.VOTE_REVEALED, body))
    assert gov.live(pid) == (1, 1, 3, "rejected")
    last = gov.book.tally("demo", gov.proposal(pid), with_digest=True)
    gov.now = p.tally_due() + 1
    closed = [e for e in gov.duties.run(gov.now) if e.type == gb.PROPOSAL_CLOSED]
    assert len(closed) == 1
    body = closed[0].body
    assert (body["counted"], body["eligible"], body["outcome"]) == (3, 5, last.outcome)
    assert body["ballots_digest"] == last.ballots_digest
    assert body["counts"]["yes"] == last.counts.yes and body["counts"]["no"] == last.counts.no
    gov.side.catch_up("demo")
    p = gov.proposal(pid)
    final = views.tally_view("demo", p, gov.reads.proposal("demo", pid), None)
    assert final.final and final.outcome == "rejected" and final.counts == last.counts
    assert final.ballots_digest == body["ballots_digest"]


def test_read_models_answer_lists_votes_delegations_and_the_charter_and_replay_agrees(
    gov: Gov,
) -> None:
    s = gov.s
    amend = {"kind": "amend-charter", "section": "purpose", "text": "We share.",
             "rationale": "First words."}  # fmt: skip
    first = gov.propose("root", amend)
    gov.delegate("erin", "alice")
    for who in ("alice", "bob", "carol"):
        gov.vote(who, first, "yes")
    gov.vote("bob", first, "abstain")
    text = gov.propose("weighted")
    gov.delegate("erin", None)  # revoked
    gov.delegate("dan", "alice")
    gov.now += DAY + 5
    done = gov.duties.run(gov.now)
    assert [e.type for e in done].count(gb.PROPOSAL_CLOSED) == 2
    second = gov.propose("root", {**amend, "text": "We share, and we care."})
    for who in ("alice", "bob", "carol"):
        gov.vote(who, second, "yes")
    gov.now += DAY + 5
    gov.duties.run(gov.now)
    gov.side.catch_up("demo")

    page = views.proposals(gov.reads, "demo")
    assert [(i.id, i.state, i.execution) for i in page.items] == [
        (first, "accepted", "executed"), (text, "no-quorum", None),
        (second, "accepted", "executed"),
    ]  # fmt: skip
    assert page.items[0].votes == {"cast": 4, "committed": 0, "revealed": 0}
    assert page.items[0].counts is not None and page.items[0].counts.yes == 3  # erin via alice
    assert page.items[0].counted == 4 and page.items[0].eligible == 5
    assert [i.id for i in views.proposals(gov.reads, "demo", state="accepted").items] == [
        first,
        second,
    ]
    assert [i.id for i in views.proposals(gov.reads, "demo", domain="weighted").items] == [text]
    paged = views.proposals(gov.reads, "demo", limit=2)
    assert paged.next == paged.items[-1].leaf
    rest = views.proposals(gov.reads, "demo", after=paged.next, limit=2)
    assert [i.id for i in rest.items] == [second] and rest.next is None
    with pytest.raises(InvalidRequest) as bad:
        views.proposals(gov.reads, "demo", state="closed")
    assert bad.value.code == "invalid-state"
    with pytest.raises(InvalidRequest) as bad:
        views.proposals(gov.reads, "demo", domain="nowhere")
    assert bad.value.code == "unknown-domain"
    with pytest.raises(InvalidRequest) as bad:
        views.proposals(gov.reads, "demo", domain="Bad Name")
    assert bad.value.code == "invalid-domain"
    with pytest.raises(NotFound) as missing:
        views.proposal(gov.reads, "demo", "ab" * 32)
    assert missing.value.code == "unknown-proposal"

    detail = views.proposal(gov.reads, "demo", first)
    assert detail.text == "Why not." and detail.action_body["section"] == "purpose"
    assert detail.rules["method"] == "majority" and len(detail.effects) == 1

    bob = views.member_votes(gov.reads, "demo", s.did("bob"))
    assert [(v.proposal, v.kind, v.choice) for v in bob.votes] == [
        (first, "cast", "yes"), (first, "cast", "abstain"), (second, "cast", "yes"),
    ]  # fmt: skip
    erin = views.member_votes(gov.reads, "demo", s.did("erin"))
    assert [d.to for d in erin.history] == [s.did("alice"), None] and erin.delegations == []
    alice = views.member_votes(gov.reads, "demo", s.did("alice"))
    assert [d.member for d in alice.delegators] == [s.did("dan")]

    charter = views.charter(gov.reads, "demo")
    assert [(c.section, c.version, c.text) for c in charter.sections] == [
        ("purpose", 2, "We share, and we care.")
    ]
    assert [(c.version, c.proposal) for c in charter.history] == [(1, first), (2, second)]
    records = state.charter(gov.view, "demo", "purpose")
    assert [(r.version, r.event) for r in records] == [
        (c.version, c.event_id) for c in charter.history
    ]
    purpose = views.charter_section(gov.reads, "demo", "purpose")
    assert purpose.versions == charter.history and purpose.current == charter.sections[0]
    with pytest.raises(NotFound) as missing:
        views.charter_section(gov.reads, "demo", "scope")
    assert missing.value.code == "unknown-section"
    names = [d.domain for d in views.domains(gov.reads, "demo").domains]
    assert names == ["root", "sealed", "weighted"]
    histories = views.domain_histories(gov.reads, "demo")
    assert [(h.domain, [(v.version, v.kind) for v in h.versions]) for h in histories] == [
        ("root", [(0, "founded")]), ("sealed", [(1, "defined")]), ("weighted", [(1, "defined")]),
    ]  # fmt: skip
    weighted = views.domain_history(gov.reads, "demo", "weighted")
    assert weighted.versions[-1].rules == weighted.current.rules
    assert weighted.current.rules["weights"] == {"admin": 3}
    with pytest.raises(NotFound) as missing:
        views.domain_history(gov.reads, "demo", "nowhere")
    assert missing.value.code == "unknown-domain"

    report = gov.side.replay()
    assert report.identical, report.differences
