"""Module bytes through a coop's JetStream Object Store bucket, on a real nats-server: shared
once and read back whole (chunked past 128 KiB), and every way a peer's bucket can fail a
reader ends in ``ModuleUnavailable``, bounded, never in bytes over the size limit."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest
from nats.js.api import ObjectLink, ObjectMeta, ObjectMetaOptions
from support.nats import run_bounded

from icn.infrastructure.compute.module_bucket import (
    ModuleUnavailable,
    bucket_name,
    fetch,
    share,
    share_held,
)
from icn.infrastructure.compute.modules import module_hash
from icn.infrastructure.compute.store import ModuleStore
from icn.infrastructure.replication.connection import close, connect
from icn.infrastructure.replication.nats_server import LocalNatsServer

COOP = "bucket-coop"


def test_shared_once_read_back_whole_and_bounded(nats_server: LocalNatsServer) -> None:
    big = os.urandom(600 * 1024)  # five chunks of 128 KiB
    name = module_hash(big)

    async def body() -> None:
        nc = await connect(nats_server.url)
        try:
            with pytest.raises(ModuleUnavailable, match="has shared a module yet"):
                await fetch(nc, COOP, name)  # no bucket at all
            assert await share(nc, COOP, name, big) is True
            assert await share(nc, COOP, name, big) is False  # held already: not written again
            assert await fetch(nc, COOP, name) == big
            with pytest.raises(ModuleUnavailable, match=f"has shared module {'0' * 64}"):
                await fetch(nc, COOP, "0" * 64)
            with pytest.raises(ModuleUnavailable, match="over 1000"):
                await fetch(nc, COOP, name, limit=1000)  # by its declared size, before reading

            store = await nc.jetstream().object_store(bucket_name(COOP))
            # A peer declaring less than it wrote is stopped as the chunks arrive.
            liar = "1" * 64
            await store.put(liar, big)
            info = await store.get_info(liar)
            meta = info.as_dict()
            meta["size"] = 10
            subject = f"$O.{bucket_name(COOP)}.M.{base64.urlsafe_b64encode(liar.encode()).decode()}"
            await nc.jetstream().publish(
                subject, json.dumps(meta).encode(), headers={"Nats-Rollup": "sub"}
            )
            with pytest.raises(ModuleUnavailable, match="ran past 1000"):
                await fetch(nc, COOP, liar, limit=1000)
            # A link to another object is not the module's bytes.
            link = "2" * 64
            to = ObjectLink(bucket=bucket_name(COOP), name=name)
            options = ObjectMetaOptions(link=to, max_chunk_size=1024)
            await store.put(link, b"", meta=ObjectMeta(name=link, options=options))
            with pytest.raises(ModuleUnavailable, match="a link"):
                await fetch(nc, COOP, link)
        finally:
            await close(nc)

    run_bounded(body(), 60)


def test_a_node_shares_what_it_keeps_once(nats_server: LocalNatsServer, tmp_path: Path) -> None:
    store = ModuleStore(tmp_path / "modules")
    kept = [os.urandom(1000 + i) for i in range(2)]
    names = [store.put(COOP, b) for b in kept]
    tampered = store.put("other-coop", b"before")
    (tmp_path / "modules" / "other-coop" / f"{tampered}.wasm").write_bytes(b"after")
    (tmp_path / "modules" / COOP / "notes.txt").write_text("not a module")

    async def body() -> None:
        nc = await connect(nats_server.url)
        try:
            known: set[tuple[str, str]] = set()
            assert await share_held(nc, store, known) == 2  # not the changed file
            assert known == {(COOP, n) for n in names}
            assert await share_held(nc, store, known) == 0  # known: NATS not even asked
            assert await share_held(nc, store, set()) == 0  # in the bucket already
            assert [await fetch(nc, COOP, n) for n in names] == kept
            with pytest.raises(ModuleUnavailable):
                await fetch(nc, "other-coop", tampered)
        finally:
            await close(nc)

    run_bounded(body(), 60)
