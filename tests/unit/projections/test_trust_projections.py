"""The trust projections as pure functions: one row per trust event, nothing for others."""

from __future__ import annotations

import pytest
from support.coops import CoopScript

from icn.interfaces.cli.trust import score_ppm
from icn.interfaces.cli.writes import Refused
from icn.projections.catalogue import PROJECTIONS
from icn.projections.ports import Changes
from icn.projections.runner import plan_batch
from icn.projections.trust import ATTESTATIONS, EPOCHS, REVOCATIONS, TRUST_PROJECTIONS


def test_each_trust_event_writes_one_row_and_other_events_none() -> None:
    s = CoopScript("demo")
    founded = s.found()
    vouch = s.event("alice", "trust.AttestationRecorded", {
        "subject": s.did("bob"), "context": "ledger", "score_ppm": 700_000,
        "expires_ts": 2_000_000_000_000, "note": "reliable"})  # fmt: skip
    revoke = s.event("alice", "trust.AttestationRevoked", {"attestation": vouch.id})
    epoch = s.event("coop", "trust.StandingPublished", {
        "context": "ledger", "epoch": 1, "as_of": 3, "count": 2, "digest": "ab" * 32})  # fmt: skip
    pay = s.pay("alice", "bob", 100)
    events = list(enumerate([founded, vouch, revoke, epoch, pay]))
    _, changes = plan_batch("demo", events, TRUST_PROJECTIONS, {}, {})
    assert changes.rows == {
        ATTESTATIONS.name: [
            ("demo", 1, vouch.id, "ledger", s.did("alice"), s.did("bob"), 700_000, vouch.ts,
             2_000_000_000_000, "reliable"),
        ],
        REVOCATIONS.name: [("demo", vouch.id, 2, revoke.id)],
        EPOCHS.name: [("demo", "ledger", 1, 3, epoch.id, 3, 2, "ab" * 32, epoch.ts)],
    }  # fmt: skip
    assert changes.sums == {}
    assert all(p in PROJECTIONS for p in TRUST_PROJECTIONS)
    assert len({p.name for p in PROJECTIONS}) == len(PROJECTIONS)
    empty = Changes()
    for p in TRUST_PROJECTIONS:
        p.apply(4, pay, empty)
    assert len(empty) == 0


@pytest.mark.parametrize(
    ("text", "ppm"),
    [("0.8", 800_000), ("1", 1_000_000), ("0", 0), ("800000", 800_000), ("0.000001", 1)],
)
def test_a_score_is_a_fraction_of_one_or_an_integer_ppm(text: str, ppm: int) -> None:
    assert score_ppm(text) == ppm


@pytest.mark.parametrize("text", ["1.5", "-0.1", "0.0000005", "1000001", "nan", "inf", "x"])
def test_a_score_outside_0_to_1_is_refused_with_a_code(text: str) -> None:
    with pytest.raises(Refused) as refused:
        score_ppm(text)
    assert refused.value.code == "invalid-score"
