"""Members' names on the real stores (SQLite, PostgreSQL): the last one a member signed is
theirs in the members' documents, nobody else's counts, and replay rebuilds them."""

from __future__ import annotations

from support.coops import CoopScript, story_clock

from icn.application.append import AppendEvents
from icn.domain.events.envelope import Event, inspect
from icn.infrastructure.store.event_store import SqlEventStore
from icn.infrastructure.store.read_models import ReadSide
from icn.projections import ledger_views as views
from icn.projections.member_names import named_member, named_page

NAMED = "coop.ProfileUpdated"


def test_the_last_name_a_member_signed_is_theirs_and_replay_rebuilds_it(
    store: SqlEventStore,
) -> None:
    s = CoopScript("demo")
    append = AppendEvents(store, story_clock)

    def write(event: Event) -> str | None:
        [outcome] = append.append_inspected([inspect(event.wire_bytes())])
        return None if outcome.verdict == "ok" else outcome.code

    assert write(s.found({"alice": ["admin"], "bob": [], "carol": []})) is None
    assert write(s.event("bob", NAMED, {"display_name": "Bobby"})) is None
    assert write(s.event("alice", NAMED, {"display_name": "Alice"})) is None
    assert write(s.event("bob", NAMED, {"display_name": "Bob Ödegaard"})) is None
    # An admin cannot name bob, and a name that reorders text is refused.
    body = {"display_name": "Bob", "member": s.did("bob")}
    assert write(s.event("alice", NAMED, body, advance=False)) == "invalid-body"
    assert write(s.event("carol", NAMED, {"display_name": "Alice\u202e"}, advance=False)) == (
        "invalid-name"
    )
    assert write(s.event("mallory", NAMED, {"display_name": "Alice"}, advance=False)) == (
        "not-a-member"
    )

    side = ReadSide(store)
    try:
        side.catch_up("demo")
        page = views.members(side.models, "demo", after=None, limit=10, now_ms=story_clock())
        names = {m.did: m.name for m in named_page(side.models, "demo", page).members}
        assert names == {
            s.did("alice"): "Alice",
            s.did("bob"): "Bob Ödegaard",
            s.did("carol"): None,
        }
        one = views.member(side.models, "demo", s.did("bob"), story_clock())
        assert named_member(side.models, "demo", one).name == "Bob Ödegaard"
        assert side.models.names("other", [s.did("bob")]) == {}  # scoped to the coop
        report = side.replay()
        assert report.identical, report.differences
    finally:
        side.close()
