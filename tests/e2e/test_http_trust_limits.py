"""Trust at work in a running node: the duty round publishes an epoch by itself, and the
caller's class sets their rate limit and body cap (real ``icn node run``, real HTTP)."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from support.nodes import RunningNode, bearer, login

from icn.infrastructure.keystore import Keystore

PASSPHRASE = "e2e-test-passphrase"
COOP = "lim"
V1 = f"/v1/coops/{COOP}"
POLICY: dict[str, Any] = {
    "credit": {"hours": {"baseline": 10000, "max_limit": 50000}},
    "trust": {"epoch_every_attestations": 2},
}
ISOLATED_BURST = 3
ISOLATED_PAYLOAD = 2048
EPOCH_WITHIN_S = 15.0
"""Duty rounds every 0.2 s: an epoch is due after the second attestation's round."""


class Served:
    """The running node, its members' DIDs, and an HTTP client per member."""

    def __init__(self, node: RunningNode, did: dict[str, str], clients: dict[str, httpx.Client]):
        self.node, self.did, self.clients = node, did, clients


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, icn_path_module: str, icn_env_module: dict[str, str]
) -> Iterator[Served]:
    """A coop whose policy wants an epoch every 2 attestations, served with a fast duty round
    and a tight Isolated class; alice and bob vouch for each other, carol for no one."""
    root = tmp_path_factory.mktemp("trust-limits")
    data = root / "node"
    env = {
        **icn_env_module,
        "ICN_DUTIES_INTERVAL_S": "0.2",
        "ICN_REPLICATION": "false",
        "ICN_RATE_ISOLATED_PER_S": "0.2",
        "ICN_RATE_ISOLATED_BURST": str(ISOLATED_BURST),
        "ICN_PAYLOAD_ISOLATED_BYTES": str(ISOLATED_PAYLOAD),
    }

    def icn(*args: str) -> Any:
        proc = subprocess.run(
            [icn_path_module, *args, "--data-dir", str(data)],
            env=env, capture_output=True, timeout=120,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr.decode()
        return json.loads(proc.stdout) if "--json" in args else None

    icn("node", "init")
    for name in ("alice", "bob", "carol"):
        icn("id", "init", name)
    did = {n: icn("id", "show", n, "--json")["did"] for n in ("alice", "bob", "carol")}
    policy = root / "policy.json"  # carol founds the coop too, but no standing flows to her
    trust = {**POLICY["trust"], "pretrusted": [did["alice"], did["bob"]]}
    policy.write_text(json.dumps({**POLICY, "trust": trust}))
    icn("coop", "found", "--coop", COOP, "--name", "Limits", "--currency", "hours:hour:2",
        "--member", "alice:admin", "--member", "bob", "--member", "carol",
        "--policy-file", str(policy))  # fmt: skip
    node = RunningNode(icn_path_module, env, data).start()
    keys = Keystore(data / "keys")
    clients = {
        n: httpx.Client(
            base_url=node.base,
            headers=bearer(login(node.base, keys.unlock(n, PASSPHRASE), COOP)),
            timeout=30,
        )
        for n in did
    }
    # Two attestations over HTTP, and no `icn trust publish` anywhere.
    url = ["--url", node.base, "--coop", COOP]
    icn("trust", "add", "bob", "0.9", "--key", "alice", *url)
    icn("trust", "add", "alice", "0.9", "--key", "bob", *url)
    yield Served(node, did, clients)
    for client in clients.values():
        client.close()
    node.stop()


def first_epoch(http: httpx.Client) -> dict[str, Any]:
    """The first ``general`` epoch, once the duty round published it."""
    deadline = time.monotonic() + EPOCH_WITHIN_S
    while True:
        r = http.get(f"{V1}/trust/epochs")
        assert r.status_code == 200, r.text
        if r.json()["epochs"]:
            return dict(r.json()["epochs"][0])
        assert time.monotonic() < deadline, "the duty round published no epoch"
        time.sleep(0.1)


def test_the_duty_round_publishes_an_epoch_once_enough_attestations_arrived(
    served: Served,
) -> None:
    alice = served.clients["alice"]
    epoch = first_epoch(alice)
    assert (epoch["context"], epoch["epoch"], epoch["count"]) == ("general", 1, 3)
    page = alice.get(f"{V1}/trust/standing").json()
    assert page["epoch"]["digest"] == epoch["digest"]
    classes = {m["did"]: m["class"] for m in page["members"]}
    who = served.did
    assert classes == {who["alice"]: "federated", who["bob"]: "federated", who["carol"]: "isolated"}


def test_an_isolated_member_is_limited_at_its_rate_while_a_federated_one_is_not(
    served: Served,
) -> None:
    first_epoch(served.clients["alice"])
    carol, alice = served.clients["carol"], served.clients["alice"]
    big = b"[" + b" " * ISOLATED_PAYLOAD + b"]"
    # The body cap of carol's class (this request spends one of her tokens too).
    r = carol.post(f"{V1}/events", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["code"] == "too-large", r.text
    statuses = [carol.get(f"{V1}/trust/epochs").status_code for _ in range(ISOLATED_BURST - 1)]
    assert statuses == [200] * (ISOLATED_BURST - 1)
    refused = carol.get(f"{V1}/trust/epochs")
    assert refused.status_code == 429, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["code"] == "rate-limited" and "isolated" in refused.json()["detail"]
    assert 1 <= int(refused.headers["retry-after"]) <= 5  # 0.2/s
    # Alice, Federated, on the same address: far more, and her bodies are not capped at 2 KiB.
    assert {alice.get(f"{V1}/trust/epochs").status_code for _ in range(40)} == {200}
    r = alice.post(f"{V1}/events", content=big, headers={"content-type": "application/json"})
    assert r.status_code not in (413, 429), r.text
