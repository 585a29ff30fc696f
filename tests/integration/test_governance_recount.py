"""``icn governance recount`` on a real store: it recounts the close from the log and verifies
every ballot's and delegation's signature again from the stored bytes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec
from support.coops import STORY_NOW, CoopScript

from icn.application.append import AppendEvents
from icn.application.governance_duties import GovernanceDuties
from icn.application.governance_recount import recount_proposal
from icn.application.ports import LogEntry
from icn.domain.events.envelope import Event, inspect
from icn.domain.governance import bodies as gb
from icn.infrastructure.store.event_store import SqlEventStore

DAY = 86_400_000


class Tampered:
    """The store, but one stored line's signature altered (as a disk or an intruder might)."""

    def __init__(self, store: SqlEventStore, event_id: str) -> None:
        self._store = store
        self._id = event_id

    def _altered(self, entry: LogEntry) -> LogEntry:
        if entry.event_id != self._id:
            return entry
        sig = entry.wire.index(b'"sig":"') + 7
        flipped = b"0" if entry.wire[sig : sig + 1] != b"0" else b"1"
        return msgspec.structs.replace(
            entry, wire=entry.wire[:sig] + flipped + entry.wire[sig + 1 :]
        )

    def entries(self, coop: str, start: int = 0, stop: int | None = None) -> Iterator[LogEntry]:
        for entry in self._store.entries(coop, start, stop):
            yield self._altered(entry)

    def page(self, coop: str, **filters: Any) -> list[LogEntry]:
        return [self._altered(e) for e in self._store.page(coop, **filters)]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def test_recount_verifies_every_ballot_and_delegation(store: SqlEventStore) -> None:
    now = [STORY_NOW]
    s = CoopScript("demo")
    append = AppendEvents(store, lambda: now[0])

    def write(*events: Event) -> None:
        outcomes = append.append_inspected([inspect(e.wire_bytes()) for e in events])
        assert [o.verdict for o in outcomes] == ["ok"] * len(events), outcomes

    write(s.found({"alice": ["admin"], "bob": [], "carol": [], "dan": []}))
    write(s.event("dan", gb.VOTE_DELEGATED, {"domain": "root", "to": s.did("bob")}))
    body = {"domain": "root", "title": "Buy a ladder", "text": "", "closes_at": now[0] + DAY}
    proposal = s.event("alice", gb.PROPOSAL_SUBMITTED, {**body, "action": {"kind": "text"}})
    write(proposal)
    votes = [
        s.event(who, gb.VOTE_CAST, {"proposal": proposal.id, "choice": choice})
        for who, choice in (("alice", "yes"), ("bob", "yes"), ("carol", "no"))
    ]
    write(*votes)
    now[0] += DAY + 1
    GovernanceDuties(store, append, lambda: now[0]).close("demo", proposal.id, s.coop_key)

    honest = recount_proposal(store, "demo", proposal.id)
    assert honest.closed and honest.matches and honest.outcome == "accepted"
    assert (honest.verified, honest.bad_signatures) == (4, [])  # three ballots, one delegation

    forged = recount_proposal(Tampered(store, votes[2].id), "demo", proposal.id)  # type: ignore[arg-type]
    assert forged.closed and not forged.matches
    assert forged.bad_signatures == [votes[2].id]
    assert forged.outcome == "accepted"  # the same tally: only the signature is wrong

    # The replay reads each page once and hands the workers the ballots it read: another
    # altered line is found the same way, and the honest store still matches.
    again = recount_proposal(Tampered(store, votes[1].id), "demo", proposal.id)  # type: ignore[arg-type]
    assert (again.matches, again.bad_signatures, again.verified) == (False, [votes[1].id], 4)
    clean = recount_proposal(store, "demo", proposal.id)
    assert (clean.matches, clean.verified, clean.bad_signatures) == (True, 4, [])
