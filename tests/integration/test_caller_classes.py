"""The rate limiter's trust classes on the real stores: what a coop's classes are before and
after its first epoch, kept in memory until a commit (or the TTL) says otherwise."""

from __future__ import annotations

import asyncio

import msgspec
from support.coops import DEFAULT_POLICY, CoopScript, story_clock

from icn.application.append import AppendEvents
from icn.application.trust_epochs import TrustEpochs
from icn.domain.coop.records import TrustPolicy
from icn.domain.events.envelope import Event, inspect
from icn.domain.trust.classes import TrustClass
from icn.infrastructure.store.event_store import SqlEventStore
from icn.infrastructure.store.trust_reads import SqlTrustReads
from icn.interfaces.http.caller_classes import CallerClasses
from icn.interfaces.http.rate_limit import RateLimits


def test_classes_before_and_after_epochs_from_memory_until_a_commit(store: SqlEventStore) -> None:
    append = AppendEvents(store, story_clock)
    s = CoopScript("demo")

    def write(*events: Event) -> None:
        outcomes = append.append_inspected([inspect(e.wire_bytes()) for e in events])
        assert [o.verdict for o in outcomes] == ["ok"] * len(events), outcomes

    trust = TrustPolicy(pretrusted=[s.did("alice"), s.did("bob")])
    write(
        s.found(
            {"alice": ["admin"], "bob": [], "carol": []},
            policy=msgspec.structs.replace(DEFAULT_POLICY, trust=trust),
        )
    )
    ticks = [0.0]
    classes = CallerClasses(SqlTrustReads(store.engine), ttl_s=5.0, clock=lambda: ticks[0])
    limits = RateLimits.build(
        ip_per_s=1, ip_burst=1, did_per_s=1, did_burst=1, auth_per_s=1, auth_burst=1
    )
    assert asyncio.run(classes.of("nowhere")) is None  # not founded here: before_epoch
    seen = asyncio.run(classes.of("demo"))
    assert seen is not None and seen.epoch is None and seen.coop_did == s.coop_did
    assert limits.class_of(seen, s.did("carol")) == TrustClass.KNOWN  # no epoch yet
    assert limits.class_of(seen, s.coop_did) == TrustClass.FEDERATED

    for who, whom in (("alice", "bob"), ("bob", "alice")):
        body = {"subject": s.did(whom), "context": "general", "score_ppm": 900_000}
        write(s.event(who, "trust.AttestationRecorded", body))
    epochs = TrustEpochs(store, append, story_clock)
    epochs.publish("demo", "general", s.coop_key)  # nobody told the classes: kept
    assert classes.held("demo") == (True, seen)
    ticks[0] = 5.0  # another process's epoch shows after the TTL at most
    seen = asyncio.run(classes.of("demo"))
    assert seen is not None and seen.epoch == 1
    assert limits.class_of(seen, s.did("alice")) == TrustClass.FEDERATED
    assert limits.class_of(seen, s.did("carol")) == TrustClass.ISOLATED
    assert limits.class_of(seen, s.did("dan")) == TrustClass.ISOLATED  # not in the epoch

    append.add_commit_listener(classes.forget)  # this node's commits: at once
    epochs.publish("demo", "general", s.coop_key)
    assert classes.held("demo") == (False, None)
    seen = asyncio.run(classes.of("demo"))
    assert seen is not None and seen.epoch == 2
