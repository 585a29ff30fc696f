"""A 3-server JetStream cluster: R3 coop streams keep working when one server dies."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from support.nats import (
    run_bounded,
    sample_events,
    start_nats_cluster,
    wait_for_no_lag,
    wait_until,
)

from icn.infrastructure.replication.connection import connect
from icn.infrastructure.replication.consumer import Delivered, DurableCoopConsumer
from icn.infrastructure.replication.publisher import JetStreamPublisher
from icn.infrastructure.replication.streams import cluster_size, default_replicas, ensure_stream
from icn.infrastructure.replication.subjects import stream_name

COOP = "cluster-coop"


@pytest.mark.slow
def test_an_r3_stream_keeps_publishing_and_consuming_without_its_leader(tmp_path: Path) -> None:
    before, after = sample_events(200, COOP), sample_events(200, COOP)
    seen: set[int] = set()

    async def scenario() -> None:
        # Given one member's URL, the client learns the others from the cluster's INFO.
        one = await connect(cluster.urls[0])
        assert cluster_size(one) == 3
        await one.close()
        nc = await connect(cluster.urls)
        assert cluster_size(nc) == 3
        js = nc.jetstream()
        info = await ensure_stream(js, COOP, default_replicas(nc))
        assert info.config.num_replicas == 3
        # A node that counts fewer servers (one was down as it started) never shrinks it.
        assert (await ensure_stream(js, COOP, 1)).config.num_replicas == 3

        publisher = JetStreamPublisher(nc)
        stop = asyncio.Event()
        consumer = DurableCoopConsumer(nc, "node-a", COOP, fetch_timeout=0.5, ack_wait=5)

        async def handle(batch: list[Delivered]) -> None:
            seen.update(d.stream_seq for d in batch)

        consuming = asyncio.create_task(consumer.run(handle, stop))
        await publisher.publish_many(before)
        await wait_until(lambda: len(seen) == 200)

        placed = (await js.stream_info(stream_name(COOP))).cluster
        assert placed and placed.leader and len(placed.replicas or []) == 2
        leader = next(s for s in cluster.servers if s.data_dir.name == placed.leader)
        await asyncio.to_thread(leader.stop)

        results = await publisher.publish_many(after)
        assert sorted(r.seq for r in results) == list(range(201, 401))
        await wait_until(lambda: len(seen) == 400, 30)
        await wait_for_no_lag(consumer, 30)
        new_leader = (await js.stream_info(stream_name(COOP))).cluster
        assert new_leader and new_leader.leader not in (None, placed.leader)
        stop.set()
        await consuming
        await nc.close()

    cluster = start_nats_cluster(tmp_path)
    try:
        run_bounded(scenario(), 60)
    finally:
        cluster.stop()
    assert seen == set(range(1, 401))
