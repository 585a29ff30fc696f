"""The trust rules as pure functions: attestations, revocations and standing epochs."""

from __future__ import annotations

from typing import Any

import pytest
from support.coops import CoopScript
from support.rule_coop import Coop

from icn.domain.coop.records import CreditPolicy, Policy
from icn.domain.events.envelope import Event
from icn.domain.ledger.rules import limit_for
from icn.domain.trust import state
from icn.domain.trust.classes import TrustClass, classify
from icn.domain.trust.rules import standing_at

POLICY = Policy(
    credit={
        "hours": CreditPolicy(baseline=10_000, trust_multiplier_ppm=1_000_000, max_limit=50_000)
    }
)


@pytest.fixture
def coop() -> Coop:
    c = Coop(CoopScript())
    founders: dict[str, list[str]] = {"alice": ["admin"], "bob": [], "carol": []}
    c.ok(c.s.found(founders, policy=POLICY))
    c.ok(c.s.admit("alice", "dan"))
    return c


def vouch(c: Coop, who: str, whom: str, score: int = 800_000, **more: Any) -> Event:
    body = {"subject": c.s.did(whom), "context": "ledger", "score_ppm": score, **more}
    return c.s.event(who, "trust.AttestationRecorded", body, advance="advance" not in more)


def publish(c: Coop, context: str = "ledger", who: str = "coop", **wrong: Any) -> Event:
    """The coop's epoch as a node duty computes it: at the event's own position and time;
    ``wrong`` replaces body fields (and leaves the chain as it was, for a refusal)."""
    now = c.s.ts + 1
    coop = c.state.coop(c.s.coop)
    assert coop is not None
    last = state.epoch(c.state, c.s.coop, context)
    result = standing_at(c.state, coop, context, now)
    body = {
        "context": context,
        "epoch": (last.epoch if last else 0) + 1,
        "as_of": c.state.log_size(c.s.coop),
        "count": len(result.members),
        "digest": result.digest(),
        **wrong,
    }
    refusal_expected = bool(wrong) or who != "coop"
    return c.s.event(who, "trust.StandingPublished", body, ts=now, advance=not refusal_expected)


def test_a_member_vouches_for_another_and_a_later_statement_replaces_it(coop: Coop) -> None:
    first = vouch(coop, "alice", "dan", 600_000)
    coop.ok(first)
    coop.ok(vouch(coop, "alice", "dan", 900_000))
    live = state.attestation(
        coop.state, coop.s.coop, "ledger", coop.s.did("alice"), coop.s.did("dan")
    )
    assert live is not None and live.score_ppm == 900_000 and live.id != first.id
    revoke_old = {"attestation": first.id}
    assert coop.refused(
        coop.s.event("alice", "trust.AttestationRevoked", revoke_old, advance=False)
    ) == ("attestation-not-live")


@pytest.mark.parametrize(
    ("who", "body", "code"),
    [
        ("alice", {"subject": "alice", "context": "ledger", "score_ppm": 1}, "self-attestation"),
        ("alice", {"subject": "dan", "context": "ledger", "score_ppm": 1_000_001}, "invalid-body"),
        ("alice", {"subject": "dan", "context": "love", "score_ppm": 1}, "invalid-body"),
        ("alice", {"subject": "dan", "context": "ledger", "score_ppm": 1, "x": 1}, "invalid-body"),
        ("alice", {"subject": "zoe", "context": "ledger", "score_ppm": 1}, "not-a-member"),
        ("zoe", {"subject": "dan", "context": "ledger", "score_ppm": 1}, "not-a-member"),
        ("alice", {"subject": "dan", "context": "ledger", "score_ppm": 1, "expires_ts": 5},
         "invalid-expiry"),
        ("alice", {"subject": "dan", "context": "ledger", "score_ppm": 1, "note": "x" * 281},
         "invalid-body"),
    ],
)  # fmt: skip
def test_bad_attestations_are_refused_with_a_code(
    coop: Coop, who: str, body: dict[str, Any], code: str
) -> None:
    body = {**body, "subject": coop.s.did(body["subject"])}
    assert coop.refused(coop.s.event(who, "trust.AttestationRecorded", body, advance=False)) == code


def test_only_the_truster_revokes_a_live_attestation_once(coop: Coop) -> None:
    made = vouch(coop, "alice", "dan")
    coop.ok(made)
    revoke = {"attestation": made.id}
    assert coop.refused(coop.s.event("bob", "trust.AttestationRevoked", revoke, advance=False)) == (
        "not-truster"
    )
    unknown = {"attestation": "ab" * 32}
    assert coop.refused(
        coop.s.event("alice", "trust.AttestationRevoked", unknown, advance=False)
    ) == ("unknown-attestation")
    coop.ok(coop.s.event("alice", "trust.AttestationRevoked", revoke))
    assert coop.refused(
        coop.s.event("alice", "trust.AttestationRevoked", revoke, advance=False)
    ) == ("attestation-not-live")


def test_an_epoch_is_accepted_only_as_every_node_recomputes_it(coop: Coop) -> None:
    coop.ok(vouch(coop, "alice", "dan"))
    assert coop.refused(publish(coop, digest="00" * 32)) == "standing-mismatch"
    assert coop.refused(publish(coop, as_of=1)) == "standing-mismatch"
    assert coop.refused(publish(coop, count=3)) == "standing-mismatch"
    assert coop.refused(publish(coop, epoch=2)) == "epoch-out-of-order"
    assert coop.refused(publish(coop, who="alice")) == "not-authorized"
    coop.ok(publish(coop))
    epoch = state.epoch(coop.state, coop.s.coop, "ledger")
    assert epoch is not None and epoch.epoch == 1 and epoch.count == 4
    dan = state.standing(coop.state, coop.s.coop, "ledger", coop.s.did("dan"))
    assert dan is not None and dan.epoch == 1 and dan.normalised_ppm > 0


def test_standing_feeds_the_credit_limit_and_falls_when_trust_is_withdrawn(coop: Coop) -> None:
    c = coop.s.coop
    record = coop.state.coop(c)
    dan = coop.state.member(c, coop.s.did("dan"))
    assert record is not None and dan is not None
    assert limit_for(coop.state, record, dan, "hours", coop.s.ts) == 10_000  # no epoch yet
    made = [vouch(coop, who, "dan", 1_000_000) for who in ("alice", "bob", "carol")]
    for event in made:
        coop.ok(event)
    coop.ok(publish(coop))
    trusted = coop.state.trust_ppm(c, coop.s.did("dan"))
    assert classify(trusted, record.policy.trust) is not TrustClass.ISOLATED
    assert (
        limit_for(coop.state, record, dan, "hours", coop.s.ts) == 10_000 + 10_000 * trusted // 10**6
    )

    for event in made:
        coop.ok(
            coop.s.event(
                event.author_name if hasattr(event, "author_name") else _name(coop, event),
                "trust.AttestationRevoked",
                {"attestation": event.id},
            )
        )
    coop.ok(publish(coop))
    assert coop.state.trust_ppm(c, coop.s.did("dan")) == 0
    assert limit_for(coop.state, record, dan, "hours", coop.s.ts) == 10_000


def _name(coop: Coop, event: Event) -> str:
    return next(n for n in ("alice", "bob", "carol") if coop.s.did(n) == event.author)
