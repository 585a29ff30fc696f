"""Contracts as people use them on a data dir: ``icn contract deploy`` opens the vote, the
node's duty deploys it once its clock passes the close, ``icn contract invoke`` runs the time
bank's rule and the duty moves the hours; a requirement that fails is refused with its code; a
rule's ``propose`` opens a proposal that ``icn contract show`` lists under its invocation."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import REPO_ROOT

Icn = Callable[..., subprocess.CompletedProcess[bytes]]
DAY = 86_400_000
LATER = {"ICN_CLOCK_OFFSET_MS": str(2 * DAY)}
"""The node's clock two days on: past the proposal's close."""
TIMEBANK = REPO_ROOT / "examples" / "contracts" / "timebank.json"
ASKER = {"name": "asker", "version": 1, "capabilities": ["propose"], "fuel_limit": 100,
         "code": {"rules": {"ask": {"body": [{"do": "propose", "domain": "root",
                                              "title": "Review the time bank"}]}}}}  # fmt: skip
"""A contract whose one rule opens a proposal (the coop's DID signs it for the invocation)."""


def test_deploy_by_vote_invoke_and_refusals(icn: Icn, tmp_path: Path) -> None:
    node = ["--data-dir", str(tmp_path / "node")]

    def run(*args: str, check: int = 0, env: dict[str, str] | None = None) -> Any:
        return icn(*args, *node, check=check, env=env)

    def doc(*args: str, env: dict[str, str] | None = None) -> Any:
        return json.loads(run(*args, "--json", env=env).stdout)

    run("node", "init")
    for name in ("alice", "bob", "carol"):
        run("id", "init", name)
    run("coop", "found", "--coop", "tb", "--name", "Time bank", "--currency", "hours:hour:2",
        "--member", "alice:admin", "--member", "bob", "--member", "carol",
        "--baseline", "50")  # fmt: skip
    c = ["--coop", "tb"]
    alice, bob = (doc("id", "show", n)["did"] for n in ("alice", "bob"))

    asker = tmp_path / "asker.json"
    asker.write_text(json.dumps(ASKER))
    for path in (TIMEBANK, asker):
        proposed = doc("contract", "deploy", str(path), *c, "--key", "alice", "--closes-in", "1d")
        for who in ("alice", "bob", "carol"):
            doc("vote", proposed["proposal"], "yes", *c, "--key", who)
    kinds = [e["type"] for e in doc("ledger", "duties", env=LATER)["signed"]]
    assert "contract.Deployed" in kinds and kinds[-1] == "governance.ProposalExecuted"

    args = ["--arg", f"sender={alice}", "--arg", f"recipient={bob}"]
    refused = run("contract", "invoke", "timebank", "record_service", *args, "--arg", "hours=0",
                  *c, "--key", "alice", check=1, env=LATER)  # fmt: skip
    assert "(requirement-failed)" in refused.stderr.decode(), refused.stderr.decode()
    invoked = doc("contract", "invoke", "timebank", "record_service", *args, "--arg", "hours=2",
                  *c, "--key", "alice", env=LATER)  # fmt: skip
    assert invoked["type"] == "contract.Invoked" and invoked["args"]["hours"] == 2
    signed = doc("ledger", "duties", env=LATER)["signed"]
    assert [e["type"] for e in signed] == ["ledger.EntryRecorded", "contract.Executed"]
    assert signed[1]["body"]["invocation"] == invoked["invocation"]
    assert doc("balance", *c, "--did", "bob")["balances"]["hours"] == 200

    asked = doc("contract", "invoke", "asker", "ask", *c, "--key", "bob", env=LATER)
    signed = doc("ledger", "duties", env=LATER)["signed"]
    assert [e["type"] for e in signed] == ["governance.ProposalSubmitted", "contract.Executed"]
    shown = doc("contract", "show", "asker", *c)
    [recent] = shown["recent"]
    assert (recent["id"], recent["state"]) == (asked["invocation"], "executed")
    assert [(p["id"], p["state"]) for p in recent["proposals"]] == [(signed[0]["id"], "open")]
    text = run("contract", "show", "asker", *c).stdout.decode()
    assert f"opened proposal {signed[0]['id']}  open" in text, text
