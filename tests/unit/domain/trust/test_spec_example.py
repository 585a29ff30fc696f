"""The spec's worked example (docs/spec/trust-standing-v1.md, section 9) comes out as its file says.

The expected numbers in ``trust-standing-v1.example.json`` are what an
independent implementation must reproduce; the node's implementation and the
plain transcription of the spec (``spec_reference``) both compute them from
the file's raw inputs: member statuses, founders, attestations with their
times, expiries and revocations.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from icn.domain.coop.records import TrustPolicy
from icn.domain.trust.classes import classify
from icn.domain.trust.records import AttestationRecord
from icn.domain.trust.standing import Edge, compute, edge_weight

from . import spec_reference as spec

EXAMPLE = Path(__file__).resolve().parents[4] / "docs/spec/trust-standing-v1.example.json"


@pytest.fixture(scope="module")
def example() -> dict[str, Any]:
    return json.loads(EXAMPLE.read_text())


def test_the_node_reproduces_every_number_of_the_worked_example(example: dict[str, Any]) -> None:
    now, want = example["now_ms"], example["expected"]
    policy = TrustPolicy(**example["policy"])
    active = [m["did"] for m in example["members"] if m["status"] == "active"]
    records = [
        AttestationRecord(id="0" * 64, context=example["context"], **a)
        for a in example["attestations"]
    ]
    edges = [
        Edge(
            a.truster,
            a.subject,
            edge_weight(a.score_ppm, a.recorded_ms, now, policy.half_life_days),
        )
        for a in records
        if a.live_at(now)
    ]
    pretrusted = policy.pretrusted if policy.pretrusted is not None else example["founders"]
    run = {"alpha_ppm": policy.alpha_ppm}

    first = compute(active, pretrusted, edges, **run, iterations=1)
    result = compute(active, pretrusted, edges, **run, iterations=policy.iterations)

    assert list(result.members) == want["members"]
    assert list(first.mass) == want["mass_after_round_1"]
    assert list(result.mass) == want["mass"]
    assert result.standing_ppm() == want["standing_ppm"]
    assert result.typical() == want["typical"]
    assert result.normalised_ppm() == want["normalised_ppm"]
    assert [classify(x, policy).value for x in result.normalised_ppm()] == want["classes"]
    assert len(result.members) == want["count"]
    assert result.digest() == want["digest"]


def test_the_spec_transcription_reproduces_every_number_of_the_worked_example(
    example: dict[str, Any],
) -> None:
    now, want, policy = example["now_ms"], example["expected"], example["policy"]
    members = spec.members_of(example["members"])
    pretrusted = spec.pretrusted_of(policy["pretrusted"], example["founders"])
    counted = spec.counted(example["attestations"], now, policy["half_life_days"])
    alpha = policy["alpha_ppm"]

    mass = spec.standing(members, pretrusted, counted, alpha, policy["iterations"])

    assert members == want["members"]
    assert [d for d in want["members"] if d in pretrusted] == want["pretrusted"]
    in_m = set(members)
    assert [
        [a, b, x] for a, b, x in counted if a in in_m and b in in_m and a != b and x > 0
    ] == want["weights"]
    assert spec.standing(members, pretrusted, counted, alpha, 1) == want["mass_after_round_1"]
    assert mass == want["mass"]
    assert sum(mass) == spec.MASS
    assert spec.standing_ppm(mass) == want["standing_ppm"]
    assert spec.typical(mass) == want["typical"]
    assert spec.normalised(mass) == want["normalised_ppm"]
    assert [spec.klass(x, policy) for x in spec.normalised(mass)] == want["classes"]
    assert len(members) == want["count"]
    assert spec.digest(members, mass) == want["digest"]
