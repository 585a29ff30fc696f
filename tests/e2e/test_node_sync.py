"""``icn node sync``: a node started from nothing catches up a coop from its stream.

Node A holds a coop's log (imported); its ``sync`` publishes it to the coop's
stream on a real ``nats-server -js``. Node B, initialised empty, then runs
``sync`` for that coop and must end with the same log, byte for byte. Its
stderr is not a terminal here, so the progress comes as plain lines, the last
one saying every message was taken, and a second ``sync`` of B publishes nothing
back: what B received is past its relay's cursor.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess

from support.coops import sample_log, write_jsonl
from support.nats import start_nats_server

from icn.infrastructure.replication.nats_server import LocalNatsServer

COOP = "demo"
EVENTS = 41


def test_an_empty_node_catches_up_a_coop_showing_progress_lines(
    icn: Callable[..., CompletedProcess[bytes]], tmp_path: Path
) -> None:
    server = start_nats_server(tmp_path)
    try:
        _catch_up(icn, tmp_path, server)
    finally:
        server.stop()


def _catch_up(
    icn: Callable[..., CompletedProcess[bytes]], tmp_path: Path, nats_server: LocalNatsServer
) -> None:
    a, b = ["--data-dir", str(tmp_path / "a")], ["--data-dir", str(tmp_path / "b")]
    icn("node", "init", *a)
    icn("node", "init", *b)
    log = write_jsonl(tmp_path / "log.jsonl", sample_log(payments=EVENTS - 1))
    icn("log", "import", str(log), *a)
    nats = ["--nats", nats_server.url]

    published = json.loads(icn("node", "sync", *nats, *a, "--json").stdout)
    assert published["coops"][COOP]["published"] == EVENTS

    caught_up = icn("node", "sync", *nats, "--serve", COOP, *b)
    lines = caught_up.stderr.decode().splitlines()
    assert lines[-1] == f"sync: {EVENTS}/{EVENTS} (100%)", lines
    assert (
        f"{COOP}: published 0, received {EVENTS} (accepted {EVENTS}," in caught_up.stdout.decode()
    )
    exported = [icn("log", "export", "--coop", COOP, *d).stdout for d in (a, b)]
    assert exported[0] == exported[1] == log.read_bytes()
    # B's relay cursor passed what its intake appended: a later run (sync, or the node's
    # relay) publishes none of it back, which past JetStream's duplicate window would
    # store each event in the stream a second time (it published all 41 before the fix).
    again = json.loads(icn("node", "sync", *nats, "--serve", COOP, *b, "--json").stdout)
    assert again["coops"][COOP]["published"] == 0, again
