"""Poison in a coop's stream: two in-process nodes on a real nats-server keep replicating.

Someone publishes straight into ``ICN_<coop>`` with a raw NATS client: a
validly signed event nesting 10,000 levels and bytes that are not JSON. Both
nodes reject them (``malformed``, recorded with their stream sequence), and a
normal write through node A, judged at a stream position past them, goes in
and reaches node B. A message node B's handler fails on every time (a failure
injected at the intake's store port) ends as a dead letter after N
deliveries; B goes on, and ``/v1/ready`` and ``icn node status`` say
``degraded`` with the count.

Before: the consumer raised ``RecursionError``, redelivered every 5 s for
ever, and every write to the coop answered 503 ``stream-unavailable``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import nats
import pytest
from litestar.testing import TestClient
from support.coops import CoopScript, key_for
from support.nats import run_bounded, wait_until
from support.poison import NOT_JSON, deep_signed_event
from typer.testing import CliRunner

from icn.application.intake import Intake
from icn.infrastructure.replication.config import ReplicationConfig
from icn.infrastructure.replication.nats_server import LocalNatsServer
from icn.infrastructure.replication.supervisor import ReplicationSupervisor
from icn.infrastructure.settings import Settings
from icn.infrastructure.store.parked import SqlReplicationState
from icn.interfaces.bootstrap import Node, build_node, init_node
from icn.interfaces.cli.main import app as cli
from icn.interfaces.http.app import create_app

COOP = "poison-coop"
POISON_ID = "f" * 64
"""The id claimed by the message node B's handler fails on."""
ATTEMPTS = 3


class _FailingLot:
    """B's store port, raising whenever a batch claims :data:`POISON_ID` (a judge's bug)."""

    def __init__(self, lot: SqlReplicationState) -> None:
        self._lot = lot

    def __getattr__(self, name: str) -> object:
        return getattr(self._lot, name)

    def known_ids(self, coop: str, ids: Sequence[str]) -> set[str]:
        if POISON_ID in ids:
            raise RuntimeError("the judge failed on this message")
        return self._lot.known_ids(coop, ids)


@contextlib.contextmanager
def _logging_left_alone() -> Iterator[None]:
    """Litestar's app sets up logging handlers on pytest's captured stderr; put back what
    was there, so nothing later logs to a closed stream."""
    loggers = [logging.getLogger(), *(
        lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)
    )]  # fmt: skip
    saved = {lg: lg.handlers[:] for lg in loggers}
    try:
        yield
    finally:
        for lg in [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]:
            if isinstance(lg, logging.Logger):
                lg.handlers[:] = saved.get(lg, [])


def _node(directory: Path, url: str) -> tuple[Node, ReplicationSupervisor]:
    """A node as ``icn node run`` builds it, replicating through ``url``."""
    settings = Settings(data_dir=directory)
    init_node(settings)
    config = ReplicationConfig(
        nats=[url], serve=[COOP], dead_letter_after=ATTEMPTS, ack_wait_s=2.0,
        retry_pause_s=(0.01, 0.05),
    )  # fmt: skip
    served = build_node(settings, config=config)
    assert served.replication is not None
    return served.node, served.replication


def _log(node: Node) -> list[str]:
    return [e.event_id for e in node.store.entries(COOP)]


def _rejected(node: Node) -> list[Any]:
    state = SqlReplicationState(node.store)
    try:
        return list(state.rejected(COOP))
    finally:
        state.close()


def test_poison_is_rejected_or_dead_lettered_and_the_coop_goes_on(
    tmp_path: Path, nats_server: LocalNatsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ICN_PASSPHRASE", "poison test passphrase, long enough")
    (a, ra), (b, rb) = (
        _node(tmp_path / "a", nats_server.url),
        _node(tmp_path / "b", nats_server.url),
    )
    s = CoopScript(COOP)
    founded = s.found({"alice": ["admin"], "bob": []})
    pay1, pay2 = s.pay("alice", "bob", 5), s.pay("bob", "alice", 2)
    deep = deep_signed_event(key_for("mallory"), COOP)
    subject = f"icn.{COOP}.ledger.EntryRecorded.z6Mkmallory"

    async def scenario() -> None:
        rb.intake = Intake(b.append, _FailingLot(rb.state), b.clock_ms)  # type: ignore[arg-type]
        await ra.start()
        await rb.start()
        raw = await nats.connect(nats_server.url)
        try:
            assert (await asyncio.to_thread(a.append.append, [founded.wire_bytes()]))[0].stored
            js = raw.jetstream()
            deep_seq = (await js.publish(subject, deep)).seq
            junk_seq = (await js.publish(subject, NOT_JSON)).seq
            # Judged at the position after the founding; the stream has moved on past the
            # poison, which A's consumer must apply (reject) before the write can go in.
            assert (await asyncio.to_thread(a.append.append, [pay1.wire_bytes()]))[0].stored
            await wait_until(lambda: _log(b) == [founded.id, pay1.id])
            for node in (a, b):
                # Recorded right after the batch's append commits, before its ack: B's log
                # may show pay1 a moment before B's refusals of the same batch.
                await wait_until(lambda node=node: len(_rejected(node)) >= 2)
                rows = _rejected(node)
                assert [(r.stream_seq, r.code) for r in rows] == [
                    (deep_seq, "malformed"), (junk_seq, "malformed"),
                ]  # fmt: skip
                assert "nesting deeper than 64" in rows[0].reason

            poison_seq = (await js.publish(subject, json.dumps({"id": POISON_ID}).encode())).seq
            assert (await asyncio.to_thread(a.append.append, [pay2.wire_bytes()]))[0].stored
            await wait_until(lambda: _log(b) == [founded.id, pay1.id, pay2.id])
            letters = rb.state.dead_letters(COOP)
            assert [(d.stream_seq, d.attempts) for d in letters] == [(poison_seq, ATTEMPTS)]
            assert "the judge failed" in letters[0].error
            assert ra.state.dead_letter_count(COOP) == 0  # A judged it: malformed
            await rb._refresh_numbers()  # what the supervisor does every second
            await ra._refresh_numbers()
            assert rb.readiness().status == "degraded"
            numbers = rb.readiness().coops[COOP]
            assert (numbers.status, numbers.dead_letters, numbers.rejected) == ("degraded", 1, 2)
            assert ra.readiness().coops[COOP].rejected == 3
            assert ra.readiness().status == "ok"

            def http_ready(node: Node, runtime: ReplicationSupervisor) -> dict[str, object]:
                with _logging_left_alone():
                    # Already running on the test's loop: the app serves it as it is.
                    app = create_app(node, None, jwt_secret=b"j" * 32, replication=runtime)
                    with TestClient(app) as client:
                        response = client.get("/v1/ready")
                assert response.status_code == 200
                return dict(response.json())

            ready_b = await asyncio.to_thread(http_ready, b, rb)
            assert ready_b["status"] == "degraded"
            assert ready_b["replication"]["coops"][COOP]["dead_letters"] == 1  # type: ignore[index]
            assert (await asyncio.to_thread(http_ready, a, ra))["status"] == "ready"
        finally:
            await raw.close()
            await ra.stop()
            await rb.stop()

    run_bounded(scenario(), 60)
    a.close()
    b.close()
    result = CliRunner().invoke(
        cli, ["node", "status", "--data-dir", str(tmp_path / "b"), "--nats", nats_server.url,
              "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    status = json.loads(result.stdout)
    assert status["status"] == "degraded"
    assert status["coops"][COOP]["dead_letters"] == 1
    assert status["coops"][COOP]["rejected"] == 2
    text = CliRunner().invoke(
        cli, ["node", "status", "--data-dir", str(tmp_path / "b"), "--nats", nats_server.url]
    )
    assert "degraded" in text.stdout
