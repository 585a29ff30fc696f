"""The replication gauges say what /v1/ready says, and nothing when it does not know."""

from __future__ import annotations

from icn.infrastructure.replication.numbers import CoopReplication, ReplicationReadiness
from icn.interfaces.http.telemetry import replication_samples


def readiness(**coops: CoopReplication) -> ReplicationReadiness:
    return ReplicationReadiness(nats="nats://127.0.0.1:4222", connected=True,
                                local_server=True, coops=coops)  # fmt: skip


def test_an_unknown_lag_has_no_sample_rather_than_a_zero():
    ready = readiness(
        known=CoopReplication(consumer_lag=7, parked=2),
        caught_up=CoopReplication(consumer_lag=0),
        unknown=CoopReplication(consumer_lag=None, parked=1),
    )
    assert replication_samples(ready, "consumer_lag") == {"known": 7.0, "caught_up": 0.0}
    assert replication_samples(ready, "parked") == {"known": 2.0, "caught_up": 0.0, "unknown": 1.0}


def test_no_replication_no_samples():
    assert replication_samples(None, "consumer_lag") == {}
