"""Governance as people use it on a data dir: propose admitting a member, vote, read the tally,
let the node's duty close and execute it once its clock passes the close, recount from the log."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

Icn = Callable[..., subprocess.CompletedProcess[bytes]]
LATER = {"ICN_CLOCK_OFFSET_MS": str(2 * 86_400_000)}
"""The node's clock two days on: past the proposal's close."""


def test_propose_vote_tally_close_and_recount(icn: Icn, tmp_path: Path) -> None:
    node = ["--data-dir", str(tmp_path / "node")]

    def run(*args: str, check: int = 0, env: dict[str, str] | None = None) -> Any:
        return icn(*args, *node, check=check, env=env)

    def doc(*args: str, env: dict[str, str] | None = None) -> Any:
        return json.loads(run(*args, "--json", env=env).stdout)

    run("node", "init")
    for name in ("alice", "bob", "carol", "dan"):
        run("id", "init", name)
    run("coop", "found", "--coop", "gc", "--name", "Gov coop", "--currency", "hours:hour:2",
        "--member", "alice:admin", "--member", "bob", "--member", "carol")  # fmt: skip
    c = ["--coop", "gc"]
    dan = doc("id", "show", "dan")["did"]

    proposed = doc("propose", "add-member", "dan", *c, "--key", "alice", "--title", "Admit dan",
                   "--closes-in", "1d")  # fmt: skip
    pid = proposed["id"]
    assert proposed["action"] == {"kind": "add-member", "member": dan, "roles": []}
    doc("vote", pid, "yes", *c, "--key", "alice")
    doc("vote", pid, "yes", *c, "--key", "bob", "--reason", "good neighbour")
    refused = run("vote", pid, "yes", *c, "--key", "dan", check=1)
    assert "(not-a-member)" in refused.stderr.decode(), refused.stderr.decode()

    doc("delegate", "alice", *c, "--key", "carol")  # carol's vote follows alice's
    live = doc("tally", pid, *c)
    assert (live["state"], live["projected"], live["counts"]["yes"]) == ("open", "accepted", 3)
    assert [p["id"] for p in doc("proposals", *c, "--state", "open")["proposals"]] == [pid]
    assert doc("governance", "recount", pid, *c)["closed"] is False

    signed = doc("ledger", "duties", env=LATER)["signed"]
    kinds = [e["type"] for e in signed]
    assert kinds == [
        "governance.ProposalClosed",
        "coop.MemberAdmitted",
        "governance.ProposalExecuted",
    ]
    assert doc("ledger", "duties", env=LATER)["signed"] == []  # executed once

    recounted = doc("governance", "recount", pid, *c)
    assert recounted["matches"] and recounted["outcome"] == "accepted"
    assert recounted["ballots_digest"] == signed[0]["body"]["ballots_digest"]
    assert recounted["counts"] == signed[0]["body"]["counts"]
    closed = doc("proposals", *c)["proposals"][0]
    assert (closed["state"], closed["execution"]) == ("accepted", "executed")
    assert doc("charter", *c)["sections"] == []
