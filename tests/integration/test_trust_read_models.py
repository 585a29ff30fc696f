"""Trust on the real stores (SQLite, PostgreSQL): the epoch duty, the trust read models and
their queries, and replay after trust events."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from sqlalchemy import select
from support.coops import DEFAULT_POLICY, STORY_NOW, CoopScript, follow, story_clock

from icn.application.append import AppendEvents
from icn.application.authoring import EventAuthor
from icn.application.coop_duties import CoopDuties
from icn.application.errors import BatchRefused, InvalidDidError, NotFound, did_of
from icn.application.ports import Accepted
from icn.application.trust_epochs import CommittedState, TrustEpochs, trigger
from icn.application.trust_verify import verify_epochs
from icn.domain.coop.records import TrustPolicy
from icn.domain.events.envelope import Event, inspect
from icn.domain.trust import state
from icn.infrastructure.store import schema
from icn.infrastructure.store.event_store import SqlEventStore
from icn.infrastructure.store.read_models import ReadSide, SqlReadModels
from icn.infrastructure.store.standing_history import StandingHistoryReads
from icn.infrastructure.store.trust_reads import SqlTrustReads
from icn.projections import trust_views as views
from icn.projections.trust_book import TrustBook

NAMES = ["alice", "bob", "carol", "dan"]
POLICY = msgspec.structs.replace(DEFAULT_POLICY, trust=TrustPolicy(epoch_every_attestations=3))


class Trusty:
    """A founded coop of four on a real store, and its trust duty."""

    def __init__(self, store: SqlEventStore) -> None:
        self.store = store
        self.append = AppendEvents(self.store, story_clock)
        self.s = CoopScript("demo")
        self.epochs = TrustEpochs(self.store, self.append, story_clock)
        roles = {n: (["admin"] if n == "alice" else []) for n in NAMES}
        self.write(self.s.found(roles, policy=POLICY))

    def write(self, *events: Event) -> None:
        outcomes = self.append.append_inspected([inspect(e.wire_bytes()) for e in events])
        assert [o.verdict for o in outcomes] == ["ok"] * len(events), outcomes

    def vouch(self, who: str, whom: str, score: int, **more: Any) -> Event:
        body = {"subject": self.s.did(whom), "context": "general", "score_ppm": score, **more}
        event = self.s.event(who, "trust.AttestationRecorded", body)
        self.write(event)
        return event

    def revoke(self, who: str, attestation: Event) -> Event:
        event = self.s.event(who, "trust.AttestationRevoked", {"attestation": attestation.id})
        self.write(event)
        return event


@pytest.fixture
def coop(store: SqlEventStore) -> Trusty:
    """On SQLite and on PostgreSQL (the ``store`` fixture)."""
    return Trusty(store)


def test_an_epoch_is_due_after_n_attestations_and_its_ts_follows_from_the_trigger(
    coop: Trusty,
) -> None:
    assert coop.epochs.due("demo") == {}  # no attestation yet: nothing to publish
    coop.vouch("alice", "bob", 900_000)
    coop.vouch("bob", "carol", 800_000)
    assert coop.epochs.due("demo") == {}
    third = coop.vouch("carol", "dan", 700_000)
    due = coop.epochs.due("demo")
    assert list(due) == ["general"] and due["general"].reason == "attestations"
    assert due["general"].ts == STORY_NOW  # the trusted time of the last event covered
    event = coop.epochs.publish("demo", "general", coop.s.coop_key, due["general"])
    assert event.ts == max(STORY_NOW, third.ts) and event.body["epoch"] == 1
    assert event.body["as_of"] == 4
    view = CommittedState(coop.store)
    last = state.epoch(view, "demo", "general")
    assert last is not None and last.epoch == 1 and last.attestations_since == 0
    assert coop.epochs.due("demo") == {}
    # a stale computation (another node published this epoch first) is refused
    follow(coop.s, event)
    with pytest.raises(BatchRefused) as refused:
        coop.append.append(
            [coop.s.event("coop", event.type, event.body, ts=event.ts).wire_bytes()], atomic=True
        )
    assert refused.value.code == "epoch-out-of-order"


def test_the_node_duty_round_publishes_what_is_due_once(coop: Trusty) -> None:
    author = EventAuthor(coop.store, coop.append, story_clock)
    duties = CoopDuties(coop.store, author, lambda c: coop.s.coop_key, coop.epochs)
    coop.vouch("alice", "bob", 900_000)
    coop.vouch("bob", "carol", 800_000)
    coop.vouch("carol", "alice", 700_000)
    done = duties.run(STORY_NOW)
    assert duties.failures == []
    assert [(e.type, e.body["context"], e.body["epoch"]) for e in done] == [
        ("trust.StandingPublished", "general", 1)
    ]
    assert duties.run(STORY_NOW) == [] and duties.failures == []


def test_a_period_trigger_dates_the_epoch_when_the_period_ran_out(coop: Trusty) -> None:
    coop.vouch("alice", "bob", 900_000)
    view = CommittedState(coop.store)
    record = view.coop("demo")
    assert record is not None
    last = state.epoch(view, "demo", "general")
    day = record.policy.trust.epoch_every_seconds * 1000
    assert trigger(record, last, record.founded_ms + day - 1, 0) is None
    t = trigger(record, last, record.founded_ms + day + 5_000, 0)
    assert t is not None and (t.reason, t.ts) == ("period", record.founded_ms + day)


def test_the_read_models_follow_attestations_replacements_revocations_and_epochs(
    coop: Trusty,
) -> None:
    first = coop.vouch("alice", "bob", 600_000)
    latest = coop.vouch("alice", "bob", 900_000, note="fixed my bike")
    to_carol = coop.vouch("alice", "carol", 500_000)
    coop.vouch("bob", "carol", 800_000)
    coop.vouch("carol", "dan", 700_000, expires_ts=STORY_NOW + 1_000)
    coop.revoke("alice", to_carol)
    published = coop.epochs.publish("demo", "general", coop.s.coop_key)
    side = ReadSide(coop.store)
    try:
        side.catch_up("demo")
        reads = SqlTrustReads(coop.store.engine)
        d = coop.s.did
        given = views.member_attestations(reads, "demo", d("alice"))
        assert [(a.id, a.revoked) for a in given.given] == [(latest.id, False), (to_carol.id, True)]
        assert first.id not in {a.id for a in given.given}
        received = views.member_attestations(reads, "demo", d("carol")).received
        assert {(a.truster, a.revoked) for a in received} == {(d("alice"), True), (d("bob"), False)}

        g = views.graph(reads, "demo", "general", 0, STORY_NOW)
        assert {(e.truster, e.subject, e.score_ppm) for e in g.edges} == {
            (d("alice"), d("bob"), 900_000),
            (d("bob"), d("carol"), 800_000),
            (d("carol"), d("dan"), 700_000),
        }
        later = views.graph(reads, "demo", "general", 750_000, STORY_NOW + 1_000)
        assert len(later.edges) == 2  # dan's expired, and carol's under the minimum
        assert {n.did for n in g.nodes} == {d(n) for n in NAMES}

        p = views.path(reads, "demo", d("alice"), d("dan"), "general", STORY_NOW)
        assert p.found and [e.subject for e in p.path] == [d("bob"), d("carol"), d("dan")]
        # Decay starts at each event's trusted time (the node's clock, STORY_NOW), not at the
        # ts its author chose a day earlier: nothing has decayed yet, and after one
        # half-life (180 days) every weight is half its score, as in standing.
        assert [e.weight_ppm for e in p.path] == [900_000, 800_000, 700_000]
        assert p.score_ppm == 900_000 * 800_000 * 700_000 // 10**12
        half_life = STORY_NOW + 180 * 86_400_000
        q = views.path(reads, "demo", d("alice"), d("carol"), "general", half_life)
        assert [e.weight_ppm for e in q.path] == [450_000, 400_000]
        assert all(e.ts == STORY_NOW for e in q.path)
        assert not views.path(reads, "demo", d("dan"), d("alice"), "general", STORY_NOW).found

        page = views.standing(reads, "demo", "general")
        assert page.epoch is not None and page.epoch.digest == published.body["digest"]
        assert [m.did for m in page.members] == sorted(d(n) for n in NAMES)
        assert sum(m.standing_ppm for m in page.members) <= 1_000_000
        epochs = views.epochs(reads, "demo").epochs
        assert [(e.context, e.epoch, e.event_id) for e in epochs] == [("general", 1, published.id)]
        mine = views.member_standing(reads, "demo", d("bob"), None).standings
        assert [s.context for s in mine] == ["general"]

        report = side.replay()
        assert report.identical, report.differences
    finally:
        side.close()


def test_bad_query_values_have_stable_codes() -> None:
    with pytest.raises(views.InvalidContextError) as bad:
        views.context_of("love")
    assert bad.value.code == "invalid-context"
    with pytest.raises(views.InvalidScoreError):
        views.score_of(1_000_001)
    with pytest.raises(InvalidDidError):
        did_of("did:key:nope")


def test_verify_recomputes_every_epoch_and_names_the_one_that_differs(coop: Trusty) -> None:
    coop.vouch("alice", "bob", 900_000)
    good = coop.epochs.publish("demo", "general", coop.s.coop_key)
    follow(coop.s, good)
    coop.vouch("bob", "carol", 800_000)
    body = {**good.body, "epoch": 2, "as_of": coop.store.tree_size("demo"), "digest": "0" * 64}
    forged = coop.s.event("coop", good.type, body, ts=good.ts)
    coop.store.append([Accepted(forged, forged.wire_bytes(), STORY_NOW)], [], STORY_NOW)
    result = verify_epochs(coop.store, "demo")
    assert not result.ok and result.mismatches == 1 and result.other_refusals == 0
    assert [(c.epoch, c.ok) for c in result.epochs] == [(1, True), (2, False)]
    assert result.epochs[1].reason is not None
    assert result.epochs[1].reason.startswith("standing-mismatch")


def test_standings_and_paths_come_from_memory_until_a_commit_changes_them(coop: Trusty) -> None:
    ticks = [0.0]
    reads = SqlTrustReads(coop.store.engine)
    book = TrustBook(reads, story_clock, ttl_s=5.0, clock=lambda: ticks[0])
    side = ReadSide(coop.store)
    d = coop.s.did
    try:
        coop.vouch("alice", "bob", 900_000)
        side.catch_up("demo")
        assert book.member("demo", d("bob"), None).standings == []  # no epoch yet: kept
        assert not book.path("demo", d("alice"), d("carol"), "general").found
        coop.epochs.publish("demo", "general", coop.s.coop_key)  # nobody told the book
        coop.vouch("bob", "carol", 800_000)
        side.catch_up("demo")
        assert book.member("demo", d("bob"), "general").standings == []
        assert not book.path("demo", d("alice"), d("carol"), "general").found
        ticks[0] = 5.0  # another process's writes show after the TTL at most
        [seen] = book.member("demo", d("bob"), "general").standings
        assert (seen.epoch, seen.did) == (1, d("bob"))
        assert book.path("demo", d("alice"), d("carol"), "general").found

        coop.append.add_commit_listener(book.forget)  # this node's commits: at once
        coop.epochs.publish("demo", "general", coop.s.coop_key)
        [seen] = book.member("demo", d("bob"), None).standings
        assert seen.epoch == 2
        coop.vouch("carol", "dan", 700_000)
        side.catch_up("demo")
        way = book.path("demo", d("alice"), d("dan"), "general")
        assert way == views.path(reads, "demo", d("alice"), d("dan"), "general", STORY_NOW)
        assert len(way.path) == 3
        with pytest.raises(NotFound):
            book.member("nowhere", d("bob"), None)
    finally:
        side.close()


def test_every_epochs_standings_are_kept_paged_by_epoch_and_replayed(coop: Trusty) -> None:
    """The node keeps only the last standing per member; the history keeps every epoch's."""
    d = coop.s.did
    coop.vouch("alice", "bob", 600_000)
    first = coop.epochs.publish("demo", "general", coop.s.coop_key)
    coop.vouch("bob", "carol", 800_000)
    coop.vouch("carol", "dan", 700_000)
    second = coop.epochs.publish("demo", "general", coop.s.coop_key)
    assert (first.body["epoch"], second.body["epoch"]) == (1, 2)
    history = StandingHistoryReads(coop.store.engine)
    reads = SqlTrustReads(coop.store.engine)
    last = {s.did: s for s in views.standing(reads, "demo", "general").members}
    for name in NAMES:
        rows = history.page("demo", d(name), "general", after=0, limit=10)
        assert [r[0] for r in rows] == [1, 2]
        # The last row is the standing the rules keep now, class and all.
        assert rows[-1][1:] == (
            last[d(name)].standing_ppm,
            last[d(name)].normalised_ppm,
            last[d(name)].trust_class,
        )
    # Carol gained trust between the epochs: her line moved.
    carol = history.page("demo", d("carol"), "general", after=0, limit=10)
    assert carol[0][1] != carol[1][1]
    assert history.page("demo", d("bob"), "general", after=1, limit=10)[0][0] == 2
    assert [r[0] for r in history.page("demo", d("bob"), "general", after=0, limit=1)] == [1]
    assert history.page("demo", d("bob"), "ledger", after=0, limit=10) == []
    assert history.page("other", d("bob"), "general", after=0, limit=10) == []
    # The rules' state keeps none of it (it is not theirs to read).
    state_kinds = {k for (k, _) in coop_state_kinds(coop.store)}
    assert "standing-epoch" not in state_kinds

    side = ReadSide(coop.store)
    try:
        report = side.replay()
        assert report.identical, report.differences
        # A history row lost (or changed) is a difference replay names.
        t = schema.trust_standing_history
        writer = SqlReadModels(coop.store.database)._writer
        with writer.begin() as conn:
            conn.execute(
                t.delete().where(t.c.did == d("carol"), t.c.epoch == 1, t.c.context == "general")
            )
        writer.dispose()
        report = side.replay()
        assert not report.identical
        assert [(x.table, x.key, x.live) for x in report.differences] == [
            ("trust_standing_history", ["demo", "general", d("carol"), 1], None)
        ]
    finally:
        side.close()


def coop_state_kinds(store: SqlEventStore) -> list[tuple[str, str]]:
    t = schema.coop_state
    with store.engine.connect() as conn:
        return [(r[0], r[1]) for r in conn.execute(select(t.c.kind, t.c.key))]
