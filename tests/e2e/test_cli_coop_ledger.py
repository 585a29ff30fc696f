"""The coop and ledger write commands, through real ``icn`` processes on a temp data dir.

found → apply → admit → pay → refusals → freeze → dispute → settlement →
demurrage, each step checked against what the log then says (balances are
recomputed from the exported log by ``icn audit verify``, which needs no
store), and a running node that settles a resolution posted over HTTP.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.coops import CoopScript, keep_coop_key, write_jsonl
from support.nodes import RunningNode, login, run_icn

from icn.domain.coop.records import DAY_MS, CreditPolicy, DemurragePolicy, Policy
from icn.infrastructure.keystore import Keystore

Icn = Callable[..., subprocess.CompletedProcess[bytes]]
PASSPHRASE = "e2e-test-passphrase"  # what tests/e2e/conftest.py gives every ``icn`` it runs


class Cli:
    """``icn`` on one data dir: ``run`` answers the process, ``json`` the parsed document."""

    def __init__(self, icn: Icn, data: Path) -> None:
        self.icn, self.data = icn, data

    def run(self, *args: str, check: int = 0, env: dict[str, str] | None = None):
        return self.icn(*args, "--data-dir", str(self.data), check=check, env=env)

    def json(self, *args: str, env: dict[str, str] | None = None) -> Any:
        return json.loads(self.run(*args, "--json", env=env).stdout)

    def refused(self, code: str, *args: str, exit_code: int = 1) -> str:
        """Run a command that must fail with ``code``; returns its stderr."""
        proc = self.run(*args, check=exit_code)
        text = proc.stderr.decode()
        assert f"({code})" in text, text
        assert proc.stdout == b""
        return text

    def did(self, name: str) -> str:
        return str(self.json("id", "show", name)["did"])

    def balances(self, coop: str, currency: str = "hours") -> dict[str, int]:
        """Every balance, recomputed from the exported log alone."""
        log = self.data.parent / f"{coop}-export.jsonl"
        log.write_bytes(self.run("log", "export", "--coop", coop).stdout)
        audit = json.loads(self.icn("audit", "verify", str(log), "--json").stdout)
        return {did: units for did, units in audit["balances"].get(currency, {}).items()}


@pytest.fixture(scope="module")
def founded_template(tmp_path_factory, icn_path_module: str, icn_env_module: dict) -> Path:
    """Once per module: a node with keys alice, bob, carol, dave and coop ``fc`` founded."""
    data = tmp_path_factory.mktemp("template") / "node"
    run_icn(icn_path_module, icn_env_module, "node", "init", "--data-dir", str(data))
    for name in ("alice", "bob", "carol", "dave"):
        run_icn(icn_path_module, icn_env_module, "id", "init", name, "--data-dir", str(data))
    run_icn(icn_path_module, icn_env_module, "coop", "found", "--coop", "fc",
            "--name", "Food coop", "--currency", "hours:hour:2", "--member", "alice:admin",
            "--member", "bob", "--member", "dave:mediator", "--baseline", "100",
            "--max-limit", "500", "--data-dir", str(data))  # fmt: skip
    return data


@pytest.fixture
def cli(icn: Icn, founded_template: Path, tmp_path: Path) -> Cli:
    """A fresh copy of the founded node: alice (admin), bob, dave (mediator) are founders."""
    data = tmp_path / "node"
    shutil.copytree(founded_template, data)
    return Cli(icn, data)


def pay(c: Cli, payer: str, payee: str, amount: str, **kw: str) -> Any:
    extra = [x for k, v in kw.items() for x in (f"--{k}", v)]
    return c.json("pay", payee, amount, "hours", "--coop", "fc", "--key", payer, *extra)


def test_found_makes_the_coop_key_and_refuses_a_second_founding(icn: Icn, node_dir: Path):
    c = Cli(icn, node_dir)
    c.run("id", "init", "alice")
    founded = c.json("coop", "found", "--coop", "food", "--name", "Food",
                     "--currency", "hours:hour:2", "--currency", "eur:euro:2",
                     "--member", "alice:admin,treasurer")  # fmt: skip
    assert founded["type"] == "coop.Founded" and founded["position"] == 0
    assert founded["author"] == founded["did"] == c.did("coop-food")
    assert founded["members"] == [{"did": c.did("alice"), "roles": ["admin", "treasurer"]}]
    assert Keystore(node_dir / "keys").info("coop-food").did == founded["did"]
    again = ["coop", "found", "--coop", "food", "--name", "Food", "--currency", "hours:hour:2",
             "--member", "alice"]  # fmt: skip
    c.refused("coop-already-founded", *again)
    # Wrong usage: exit 2, nothing created.
    c.run("coop", "found", "--coop", "x", "--name", "X", "--currency", "hours:2",
          "--member", "alice", check=2)  # fmt: skip
    c.run("coop", "found", "--coop", "x", "--name", "X", "--currency", "hours:hour:2",
          "--member", "nobody", check=2)  # fmt: skip
    c.run("coop", "found", "--coop", "Bad_Id", "--name", "X", "--currency", "hours:hour:2",
          "--member", "alice", check=2)  # fmt: skip
    # A refused founding leaves no coop key behind.
    c.refused("invalid-policy", "coop", "found", "--coop", "x", "--name", "X",
              "--currency", "hours:hour:2", "--member", "alice",
              "--initial-limit", "600", "--max-limit", "500")  # fmt: skip
    assert not Keystore(node_dir / "keys").exists("coop-x")


def test_apply_admit_pay_prints_the_new_balance_and_refuses_bad_payments(cli: Cli):
    c = cli
    applied = c.json("member", "apply", "--coop", "fc", "--key", "carol", "--note", "hello")
    assert applied["type"] == "coop.MemberApplied" and applied["author"] == c.did("carol")
    c.refused("not-authorized", "member", "admit", "carol", "--coop", "fc", "--key", "bob")
    admitted = c.json("member", "admit", "carol", "--coop", "fc", "--key", "alice")
    assert admitted["body"] == {"member": c.did("carol"), "roles": []}

    text = c.run("pay", "bob", "2.5", "hours", "--memo", "bike repair",
                 "--coop", "fc", "--key", "alice").stdout.decode()  # fmt: skip
    assert "paid 2.50 hours" in text and "balance: -2.50 hours" in text
    paid = pay(c, "carol", c.did("alice"), "1.25", memo="2h childcare")
    assert (paid["amount"], paid["amount_display"]) == (125, "1.25")
    assert (paid["balance"], paid["balance_display"]) == (-125, "-1.25")
    assert paid["from"] == c.did("carol") and paid["to"] == c.did("alice")

    over = c.refused("credit-limit-exceeded", "pay", "bob", "100.01", "hours",
                     "--coop", "fc", "--key", "carol")  # fmt: skip
    assert "credit limit" in over
    for amount in ("2.555", "0", "0.00", "abc", "90071992547409.92"):
        c.refused("invalid-amount", "pay", "bob", amount, "hours", "--coop", "fc", "--key", "alice")
    negative = c.icn("pay", "--data-dir", str(c.data), "--coop", "fc", "--key", "alice",
                     "bob", "--", "-5", "hours", check=1)  # fmt: skip
    assert b"(invalid-amount)" in negative.stderr
    c.refused("unknown-currency", "pay", "bob", "1", "euros", "--coop", "fc", "--key", "alice")
    c.refused("self-payment", "pay", "alice", "1", "hours", "--coop", "fc", "--key", "alice")
    c.refused("unknown-coop", "pay", "bob", "1", "hours", "--coop", "nope", "--key", "alice")
    c.run("pay", "did:icn:nope", "1", "hours", "--coop", "fc", "--key", "alice", check=2)
    c.run("pay", "bob", "1", "hours", "--coop", "fc", check=2)  # no --key
    # Nothing refused was stored: the balances are exactly the two payments.
    assert c.balances("fc") == {
        c.did("alice"): -250 + 125, c.did("bob"): 250, c.did("carol"): -125,
    }  # fmt: skip


def test_membership_changes_and_their_refusals(cli: Cli):
    c = cli
    c.run("member", "admit", "carol", "--coop", "fc", "--key", "alice", "--role", "baker")
    roles = c.json("member", "roles", "carol", "--coop", "fc", "--key", "alice",
                   "--role", "baker", "--role", "driver")  # fmt: skip
    assert roles["body"]["roles"] == ["baker", "driver"]
    c.json("member", "suspend", "carol", "--coop", "fc", "--key", "alice", "--reason", "absent")
    c.refused("member-suspended", "pay", "bob", "1", "hours", "--coop", "fc", "--key", "carol")
    c.refused("member-suspended", "pay", "carol", "1", "hours", "--coop", "fc", "--key", "bob")
    c.json("member", "reinstate", "carol", "--coop", "fc", "--key", "alice")
    pay(c, "carol", "bob", "1")
    c.refused("balance-not-settled", "member", "exit", "--coop", "fc", "--key", "carol")
    pay(c, "bob", "carol", "1")
    exited = c.json("member", "exit", "--coop", "fc", "--key", "carol", "--reason", "moving")
    assert exited["type"] == "coop.MemberExited"
    c.refused("not-a-member", "pay", "bob", "1", "hours", "--coop", "fc", "--key", "carol")


def test_a_frozen_member_can_receive_but_not_pay(cli: Cli):
    c = cli
    frozen = c.json("member", "freeze", "bob", "--coop", "fc", "--key", "alice",
                    "--reason", "under review")  # fmt: skip
    assert frozen["type"] == "ledger.AccountFrozen"
    text = c.refused("account-frozen", "pay", "alice", "1", "hours", "--coop", "fc", "--key", "bob")
    assert "can receive" in text
    assert pay(c, "alice", "bob", "3")["balance"] == -300
    c.refused("not-authorized", "member", "unfreeze", "bob", "--coop", "fc", "--key", "dave")
    c.json("member", "unfreeze", "bob", "--coop", "fc", "--key", "alice")
    assert pay(c, "bob", "alice", "1")["balance"] == 200
    # A freeze with an end date: bad dates are wrong usage.
    c.run("member", "freeze", "bob", "--coop", "fc", "--key", "alice", "--reason", "x",
          "--until", "next tuesday", check=2)  # fmt: skip
    until = c.json("member", "freeze", "bob", "--coop", "fc", "--key", "alice", "--reason", "x",
                   "--until", "2099-01-01")  # fmt: skip
    assert until["body"]["until"] == 4_070_908_800_000


def test_a_reversed_dispute_is_settled_by_the_coop_and_moves_the_money_back(cli: Cli):
    c = cli
    alice, bob, coop_did = c.did("alice"), c.did("bob"), c.did("coop-fc")
    entry = pay(c, "alice", "bob", "3", memo="bookshelf delivery")["id"]
    filed = c.json("dispute", "file", entry, "--reason", "never arrived",
                   "--evidence", "a photo", "--coop", "fc", "--key", "alice")  # fmt: skip
    dispute = filed["dispute"]
    assert dispute == filed["id"] and filed["entry"] == entry
    c.refused("already-disputed", "dispute", "file", entry, "--reason", "again",
              "--coop", "fc", "--key", "bob")  # fmt: skip
    c.refused("not-a-party", "dispute", "answer", dispute, "--response", "?",
              "--coop", "fc", "--key", "dave")  # fmt: skip
    c.json("dispute", "answer", dispute, "--response", "van broke down",
           "--coop", "fc", "--key", "bob")  # fmt: skip
    c.json("dispute", "assign", dispute, "--mediator", "dave", "--coop", "fc", "--key", "alice")
    c.refused(
        "not-authorized",
        "dispute",
        "resolve",
        dispute,
        "--outcome",
        "reversed",
        "--coop",
        "fc",
        "--key",
        "alice",
    )  # fmt: skip  (a mediator is assigned)
    c.run(
        "dispute",
        "resolve",
        dispute,
        "--outcome",
        "partial-refund",
        "--coop",
        "fc",
        "--key",
        "dave",
        check=2,
    )  # fmt: skip  (no --refund)
    c.run("dispute", "resolve", "not-an-id", "--outcome", "reversed",
          "--coop", "fc", "--key", "dave", check=2)  # fmt: skip
    text = c.run("dispute", "resolve", dispute, "--outcome", "reversed",
                 "--coop", "fc", "--key", "dave").stdout.decode()  # fmt: skip
    assert "resolved dispute" in text and "settled by the coop's DID: entry" in text
    assert c.balances("fc") == {alice: 0, bob: 0}

    exported = [
        json.loads(line) for line in (c.data.parent / "fc-export.jsonl").read_bytes().splitlines()
    ]
    settled = [e for e in exported if e["type"] == "ledger.DisputeSettled"]
    assert len(settled) == 1 and settled[0]["author"] == coop_did
    settlement = next(e for e in exported if e["id"] == settled[0]["body"]["entry"])
    assert settlement["author"] == coop_did
    assert settlement["body"]["transactions"][0] | {"memo": None} == {
        "from": bob, "to": alice, "amount": 300, "currency": "hours", "memo": None,
    }  # fmt: skip
    assert c.json("ledger", "duties") == {
        "signed": [],
        "settlements": 0,
        "demurrage": 0,
        "refused": [],
    }


def test_a_partial_refund_is_parsed_with_the_currency_decimals(cli: Cli):
    c = cli
    entry = pay(c, "alice", "bob", "4")["id"]
    dispute = c.json("dispute", "file", entry, "--reason", "half done",
                     "--coop", "fc", "--key", "alice")["dispute"]  # fmt: skip
    c.json("dispute", "assign", dispute, "--mediator", "dave", "--coop", "fc", "--key", "alice")
    c.refused("invalid-amount", "dispute", "resolve", dispute, "--outcome", "partial-refund",
              "--refund", "1.005", "--coop", "fc", "--key", "dave")  # fmt: skip
    resolved = c.json("dispute", "resolve", dispute, "--outcome", "partial-refund",
                      "--refund", "1.5", "--coop", "fc", "--key", "dave")  # fmt: skip
    assert resolved["refund"] == 150 and resolved["settlement"]
    assert c.balances("fc") == {c.did("alice"): -250, c.did("bob"): 250}


def test_ledger_duties_charges_demurrage_and_the_sum_stays_zero(icn: Icn, node_dir: Path):
    c = Cli(icn, node_dir)
    script = CoopScript("dem")
    policy = Policy(
        credit={"hours": CreditPolicy(baseline=100_000, max_limit=100_000)},
        demurrage={"hours": DemurragePolicy(rate_ppm=10_000, period_days=30, threshold=1_000)},
    )
    events = [script.found({"alice": ["admin"], "bob": []}, policy=policy),
              script.pay("alice", "bob", 50_000, memo="a big job")]  # fmt: skip
    c.run("log", "import", str(write_jsonl(node_dir.parent / "dem.jsonl", events)))
    coop_did = keep_coop_key(node_dir / "keys", script, PASSPHRASE)

    # Periods count from the founding's trusted time (the import), not from the date its
    # author wrote: a node whose clock reads 11 periods later finds 11 due.
    later = {"ICN_CLOCK_OFFSET_MS": str(11 * 30 * DAY_MS + 60_000)}
    assert "nothing due" in c.run("ledger", "duties").stdout.decode()
    done = c.json("ledger", "duties", env=later)
    assert done["settlements"] == 0 and done["demurrage"] == 11
    charges = [e for e in done["signed"] if e["type"] == "ledger.EntryRecorded"]
    assert charges and all(e["author"] == coop_did for e in done["signed"])
    assert all(
        tx["from"] == script.did("bob") and tx["to"] == coop_did
        for e in charges
        for tx in e["body"]["transactions"]
    )
    first = charges[0]["body"]["transactions"][0]["amount"]
    assert first == (50_000 - 1_000) * 10_000 // 1_000_000  # 1 % above the threshold
    balances = c.balances("dem")
    assert sum(balances.values()) == 0
    assert balances[coop_did] == sum(
        tx["amount"] for e in charges for tx in e["body"]["transactions"]
    )
    assert balances[script.did("bob")] < 50_000
    again = c.run("ledger", "duties", env=later).stdout.decode()
    assert "nothing due" in again


@pytest.mark.slow
def test_a_node_settles_a_resolution_posted_over_http_within_seconds(
    icn: Icn, node_dir: Path, icn_path: str, icn_process_env: dict[str, str]
):
    c = Cli(icn, node_dir)
    for name in ("alice", "bob", "dave"):
        c.run("id", "init", name)
    c.run("coop", "found", "--coop", "fc", "--name", "Food coop", "--currency", "hours:hour:2",
          "--member", "alice:admin", "--member", "bob", "--member", "dave")  # fmt: skip
    env = {**icn_process_env, "ICN_DUTIES_INTERVAL_S": "0.5", "ICN_CHECKPOINT_SECONDS": "3600"}
    node = RunningNode(icn_path, env, node_dir).start()
    try:
        remote = {"ICN_URL": node.url}
        paid = c.json("pay", "bob", "2", "hours", "--coop", "fc", "--key", "alice", env=remote)
        assert paid["position"] > 0 and paid["balance_display"] == "-2.00"  # the node's read API
        over = c.run("pay", "bob", "101", "hours", "--coop", "fc", "--key", "alice",
                     env=remote, check=1)  # fmt: skip
        assert b"(credit-limit-exceeded)" in over.stderr
        bad = c.run("pay", "bob", "2.555", "hours", "--coop", "fc", "--key", "alice",
                    env=remote, check=1)  # fmt: skip
        assert b"(invalid-amount)" in bad.stderr
        dispute = c.json("dispute", "file", paid["id"], "--reason", "not done",
                         "--coop", "fc", "--key", "alice", env=remote)["dispute"]  # fmt: skip
        c.json("dispute", "assign", dispute, "--mediator", "dave",
               "--coop", "fc", "--key", "alice", env=remote)  # fmt: skip
        resolved = c.json("dispute", "resolve", dispute, "--outcome", "partial-refund",
                          "--refund", "0.5", "--coop", "fc", "--key", "dave",
                          env=remote)  # fmt: skip
        assert resolved["refund"] == 50 and resolved["settlement"] is None  # the node's job
        started = time.monotonic()

        key = Keystore(node_dir / "keys").unlock("alice", PASSPHRASE)
        headers = {"Authorization": f"Bearer {login(node.url, key, 'fc')}"}
        url = f"{node.url}/v1/coops/fc/events"
        settled: list[Any] = []
        while not settled and time.monotonic() - started < 10:
            page = httpx.get(url, params={"type": "ledger.DisputeSettled"}, headers=headers)
            settled = page.json()["events"]
            time.sleep(0.1)
        assert settled, "the node did not settle the dispute within 10 s"
        assert settled[0]["event"]["body"]["dispute"] == dispute
        assert settled[0]["event"]["author"] == c.did("coop-fc")
    finally:
        node.stop()
    assert c.balances("fc") == {c.did("alice"): -150, c.did("bob"): 150}


def test_a_member_names_themselves_with_icn_profile_name(cli: Cli):
    c = cli
    named = c.json("profile", "name", "  Zoe\u0308   Ng ", "--coop", "fc", "--key", "bob")
    # Put in NFC and tidied before signing: the node takes signed bytes as they are.
    assert named["type"] == "coop.ProfileUpdated" and named["author"] == c.did("bob")
    assert named["body"] == {"display_name": "Zo\u00eb Ng"}
    assert (
        "you are now 'Bob' in fc"
        in c.run("profile", "name", "Bob", "--coop", "fc", "--key", "bob").stdout.decode()
    )
    c.refused("not-a-member", "profile", "name", "Alice", "--coop", "fc", "--key", "carol")
    for bad in ("Bob\u202eevil", "x" * 65, "Ali\u200bce"):  # refused before signing
        proc = c.run("profile", "name", bad, "--coop", "fc", "--key", "bob", check=2)
        assert b"DISPLAY_NAME" in proc.stderr
    report = c.json("replay")  # the names read model rebuilds from the log alike
    assert report["identical"], report["differences"]
