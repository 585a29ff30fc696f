"""Governance as people use it on a data dir: propose admitting a member, vote, read the tally,
let the node's duty close and execute it once its clock passes the close, recount from the log;
withdraw, veto, appeal, and a sealed domain's commit and reveal, each refusal with its code."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

Icn = Callable[..., subprocess.CompletedProcess[bytes]]
DAY = 86_400_000
LATER = {"ICN_CLOCK_OFFSET_MS": str(2 * DAY)}
"""The node's clock two days on: past the proposal's close."""
REVEALING = {"ICN_CLOCK_OFFSET_MS": str(3 * DAY + 600_000)}
"""Past the sealed proposal's close (proposed at LATER, closing a day later), in its reveals."""
TALLIED = {"ICN_CLOCK_OFFSET_MS": str(5 * DAY)}
"""Past the sealed proposal's reveal window: its tally is due."""
SEALED = {"sealed": True, "veto_roles": ["admin"]}


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

    council = doc("propose", "change-domain", "council", *c, "--key", "alice", "--title",
                  "A sealed council", "--closes-in", "1d", "--action-json",
                  json.dumps({"rules": SEALED}))["id"]  # fmt: skip
    doc("vote", council, "yes", *c, "--key", "alice")
    doc("vote", council, "yes", *c, "--key", "bob")
    dropped = doc("propose", "text", *c, "--key", "alice", "--title", "Paint it", "--closes-in",
                  "1d")["id"]  # fmt: skip
    refused = run("withdraw", dropped, *c, "--key", "bob", check=1)
    assert "(not-proposal-author)" in refused.stderr.decode(), refused.stderr.decode()
    assert doc("withdraw", dropped, *c, "--key", "alice", "--reason", "later")["type"] == (
        "governance.ProposalWithdrawn"
    )

    doc("delegate", "alice", *c, "--key", "carol")  # carol's vote follows alice's
    live = doc("tally", pid, *c)
    assert (live["state"], live["projected"], live["counts"]["yes"]) == ("open", "accepted", 3)
    assert [p["id"] for p in doc("proposals", *c, "--state", "open")["proposals"]] == [pid, council]
    assert doc("governance", "recount", pid, *c)["closed"] is False

    signed = doc("ledger", "duties", env=LATER)["signed"]
    kinds = [e["type"] for e in signed]
    closing = ["governance.ProposalClosed", "governance.ProposalExecuted"]
    assert sorted(kinds) == sorted(
        [*closing, *closing, "coop.MemberAdmitted", "governance.DomainDefined"]
    )
    close = next(e for e in signed if e["type"].endswith("Closed") and e["body"]["proposal"] == pid)
    assert doc("ledger", "duties", env=LATER)["signed"] == []  # executed once

    recounted = doc("governance", "recount", pid, *c)
    assert recounted["matches"] and recounted["outcome"] == "accepted"
    assert recounted["ballots_digest"] == close["body"]["ballots_digest"]
    assert recounted["counts"] == close["body"]["counts"]
    closed = next(p for p in doc("proposals", *c)["proposals"] if p["id"] == pid)
    assert (closed["state"], closed["execution"]) == ("accepted", "executed")
    assert doc("charter", *c)["sections"] == []

    domains = {d["domain"]: d for d in doc("governance", "domains", *c, "--history")["domains"]}
    assert [(v["version"], v["kind"], v["proposal"]) for v in domains["council"]["versions"]] == [
        (1, "defined", council)
    ]
    assert (
        domains["council"]["current"]["rules"]["sealed"]
        and domains["root"]["versions"][0]["kind"] == "founded"
    )
    refused = run("charter", *c, "--section", "purpose", "--history", check=1)
    assert "(unknown-section)" in refused.stderr.decode(), refused.stderr.decode()

    appealed = doc("appeal", pid, *c, "--key", "bob", "--grounds", "dan never asked", env=LATER)
    assert appealed["type"] == "governance.AppealFiled"

    # The council domain (sealed, admins may veto) came from the accepted change-domain.
    def council_text(title: str) -> str:
        return str(doc("propose", "text", *c, "--key", "bob", "--title", title, "--domain",
                       "council", "--closes-in", "3d", env=LATER)["id"])  # fmt: skip

    vetoed, sealed = council_text("Sell the van"), council_text("Buy a kiln")
    refused = run("veto", vetoed, *c, "--key", "bob", "--reason", "no", check=1, env=LATER)
    assert "(no-veto-right)" in refused.stderr.decode(), refused.stderr.decode()
    doc("veto", vetoed, *c, "--key", "alice", "--reason", "the van is rented", env=LATER)

    committed = doc("vote", sealed, "yes", *c, "--key", "alice", "--reason", "kilns last",
                    env=LATER)  # fmt: skip
    assert committed["type"] == "governance.VoteCommitted" and "choice" not in committed
    kept = Path(committed["kept"])
    assert kept.stat().st_mode & 0o777 == 0o600 and b"yes" not in kept.read_bytes()
    doc("vote", sealed, "yes", *c, "--key", "bob", env=LATER)
    hidden = doc("tally", sealed, *c, env=LATER)
    assert (hidden["counts"], hidden["ballots"]) == (None, 2)

    refused = run("reveal", sealed, *c, "--key", "dan", check=1, env=REVEALING)
    assert "(no-commitment)" in refused.stderr.decode(), refused.stderr.decode()
    revealed = [doc("reveal", sealed, *c, "--key", who, env=REVEALING) for who in ("alice", "bob")]
    assert [(r["choice"], r["reason"]) for r in revealed] == [("yes", "kilns last"), ("yes", None)]
    assert not kept.exists()  # revealed: the secret is public now

    assert [e["type"] for e in doc("ledger", "duties", env=TALLIED)["signed"]] == [
        "governance.ProposalClosed",
        "governance.ProposalExecuted",
    ]
    recounted = doc("governance", "recount", sealed, *c)
    assert recounted["matches"] and recounted["outcome"] == "accepted"
    # two commitments, two reveals and carol's delegation, each verified again
    assert (recounted["counts"]["yes"], recounted["verified"]) == (2, 5)
    states = {p["id"]: p["state"] for p in doc("proposals", *c)["proposals"]}
    assert (states[dropped], states[vetoed], states[sealed]) == ("withdrawn", "vetoed", "accepted")
