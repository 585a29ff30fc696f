"""Paid compute end to end over real HTTP, on two nodes replicating through one
``nats-server -js``: a member uploads a module to node A and submits a task with the CLI; two
executors run it in the sandbox, commit and reveal (node B itself, ``icn node run
--executor``, which never received the module's bytes and reads them from the coop's bucket,
and a separate ``icn compute executor run`` against node A); node A's coop key settles it:
each executor paid its fee from the hold, the rest released, balances summing to zero. Then
the module served by hash, a 1 MiB module uploaded with the CLI and read on node B, the upload
limit, and the refusals."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from support.nodes import RunningNode, bearer, login

from icn.domain.compute import bodies as cb
from icn.domain.compute.abi import MAX_OUTPUT_BYTES
from icn.domain.coop.records import CreditPolicy, Policy, TrustPolicy
from icn.infrastructure.compute.engine import EngineSettings
from icn.infrastructure.compute.modules import StoredModule, intake, module_hash
from icn.infrastructure.compute.sandbox import Sandbox
from icn.infrastructure.compute.store import ModuleStore
from icn.infrastructure.keystore import Keystore
from icn.infrastructure.replication.nats_auth import NatsUser, NatsUsers, new_password
from icn.infrastructure.replication.nats_server import LocalNatsServer
from icn.interfaces.cli.identity import NODE_KEY
from icn.interfaces.cli.writes import RemoteWriter
from icn.interfaces.client.api import IcnClient
from tests.conftest import REPO_ROOT

from .conftest import PASSPHRASE, run_icn

COOP = "compute-coop"
V1 = f"/v1/coops/{COOP}"
WAT = REPO_ROOT / "examples" / "compute" / "swapcase.wat"
INPUT = b"Hello, Cooperative World"
SWAPPED = bytes(b ^ 32 for b in INPUT)
NODE_USER = NatsUser("icn-node", new_password())
MIB = 1024 * 1024


def big_wat(size: int) -> str:
    """A valid task module whose binary is a little over ``size`` bytes (one data segment)."""
    pages = size // 65536 + 1
    return (
        f'(module (memory (export "memory") {pages}) (data (i32.const 0) "{"a" * size}")'
        ' (func (export "run") (result i32) (i32.const 0)))'
    )


@pytest.fixture
def nats(tmp_path: Path) -> Iterator[LocalNatsServer]:
    """The ``nats-server -js`` both nodes replicate through."""
    server = LocalNatsServer(tmp_path / "nats", users=NatsUsers(node=NODE_USER)).start()
    try:
        yield server
    finally:
        server.stop()


def test_upload_submit_two_executors_settle(
    tmp_path: Path, nats: LocalNatsServer, icn_path_module: str, icn_env_module: dict[str, str]
) -> None:
    env = dict(
        icn_env_module, ICN_DUTIES_INTERVAL_S="0.3", ICN_CHECKPOINT_SECONDS="86400",
        ICN_NATS_URL=nats.url, ICN_NATS_USER=NODE_USER.user,
        ICN_NATS_PASSWORD=NODE_USER.password, ICN_SERVE=COOP,
    )  # fmt: skip
    data, data_b = tmp_path / "node", tmp_path / "node-b"

    def icn(*args: str, check: int | None = 0, home: Path = data) -> Any:
        return run_icn(*args, "--data-dir", str(home), env=env, check=check)

    def doc(*args: str, home: Path = data) -> Any:
        return json.loads(icn(*args, "--json", home=home).stdout)

    icn("node", "init")
    icn("node", "init", home=data_b)
    for name in ("alice", "bob"):
        icn("id", "init", name)
    home = tmp_path / "ex1"
    icn("id", "init", "exec", home=home)
    execs = [Keystore(data_b / "keys").info(NODE_KEY).did, Keystore(home / "keys").info("exec").did]
    # alice and bob pre-trusted: at an epoch nobody vouched in, the executors have no
    # standing, so they are of the smallest class (Isolated, 16 KiB a body)
    members = [Keystore(data / "keys").info(n).did for n in ("alice", "bob")]
    policy = Policy(credit={"hours": CreditPolicy(baseline=10_000, max_limit=50_000)},
                    trust=TrustPolicy(pretrusted=members))  # fmt: skip
    (tmp_path / "policy.json").write_bytes(msgspec.json.encode(policy))
    icn("coop", "found", "--coop", COOP, "--name", "Compute", "--currency", "hours:hour:2",
        "--member", "alice:admin", "--member", "bob", *[a for d in execs for a in ("--member", d)],
        "--policy-file", str(tmp_path / "policy.json"))  # fmt: skip
    with_executor = tmp_path / "icn-executor"  # `icn node run … --executor`
    with_executor.write_text(f'#!/bin/sh\nexec {icn_path_module} "$@" --executor\n')
    with_executor.chmod(0o755)
    # A writes in a writer process (the upload is shared through the writer's NATS link),
    # B in one process: the module crosses between the two kinds of node.
    node = RunningNode(icn_path_module, {**env, "ICN_WRITER_PROCESS": "1"}, data)
    node_b = RunningNode(str(with_executor), env, data_b)
    runners: list[subprocess.Popen[bytes]] = []
    try:
        node.start(timeout=90)  # slow when busy
        node_b.start(timeout=90)
        c = ["--coop", COOP, "--url", node.base]
        for d in execs:
            icn("compute", "executor", "add", d, "--cpu-millis", "1000", "--memory-mib", "64",
                "--region", "eu-1", *c, "--key", "alice")  # fmt: skip
        module = doc("compute", "upload", str(WAT), *c, "--key", "bob")["module"]
        again = doc("compute", "upload", str(WAT), *c, "--key", "bob")
        assert (again["module"], again["new"]) == (module, False)
        (tmp_path / "input").write_bytes(INPUT)
        task = doc("compute", "submit", module, "--input-file", str(tmp_path / "input"),
                   "--fuel", "200000", "--max-fee", "0.50", "--currency", "hours",
                   *c, "--key", "bob")["task"]  # fmt: skip

        token = login(node.base, Keystore(data / "keys").unlock("bob", PASSPHRASE), COOP)
        http = httpx.Client(base_url=node.base, headers=bearer(token), timeout=30)
        placed = http.get(f"{V1}/tasks/{task}").json()
        assert sorted(placed["executors"]) == sorted(execs) and placed["held"] == 50
        bob = Keystore(data / "keys").info("bob").did
        hours = http.get(f"{V1}/accounts/{bob}/balances").json()["accounts"]["hours"]
        assert (hours["held"], [h["task"] for h in hours["holds"]]) == (50, [task])
        assert hours["available"] == hours["credit_limit"] - 50 == hours["spendable"]
        full_env = {**os.environ, **env, "ICN_PASSPHRASE": PASSPHRASE}
        cmd = [icn_path_module, "compute", "executor", "run", *c, "--key", "exec",
               "--interval", "0.2", "--data-dir", str(home)]  # fmt: skip
        log = (tmp_path / "ex1.log").open("wb")
        runners.append(subprocess.Popen(cmd, env=full_env, stdout=log, stderr=log))
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if http.get(f"{V1}/tasks/{task}").json()["state"] == "settled":
                break
            time.sleep(0.2)
        status = doc("compute", "status", task, *c, "--key", "bob")
        logs = (tmp_path / "ex1.log").read_text() + node_b.log.read_text()[-3000:]
        assert status["state"] == "settled", (status, logs)
        assert status["outcome"] == "ok"
        assert base64.b64decode(status["output"]) == SWAPPED
        assert status["dissenting"] == [] and status["held"] == 0
        # node B ran it on bytes it read from the coop's bucket (and kept, judged as an upload)
        assert (data_b / "modules" / COOP / f"{module}.wasm").exists()
        fee = status["fee"]
        assert 0 < fee <= 25  # ⌈fuel / 10,000⌉ each, at most half the 50 held
        out = tmp_path / "out"
        icn("compute", "result", task, *c, "--key", "bob", "--out", str(out))
        assert out.read_bytes() == SWAPPED

        served = http.get(f"{V1}/modules/{module}")
        assert served.status_code == 200 and served.headers["content-type"] == "application/wasm"
        assert served.content[:4] == b"\x00asm"
        balances = {}
        for did in (*members, *execs):
            r = http.get(f"{V1}/accounts/{did}/balances")
            assert r.status_code == 200, r.text
            balances[did] = r.json()["balances"]["hours"]
        assert balances[members[1]] == -2 * fee
        assert [balances[d] for d in execs] == [fee, fee]
        assert sum(balances.values()) == 0
        hours = http.get(f"{V1}/accounts/{bob}/balances").json()["accounts"]["hours"]
        assert (hours["held"], hours["holds"]) == (0, [])  # released by the settlement

        for path, code, status_code in (
            (f"{V1}/modules/{'0' * 64}", "unknown-module", 404),
            (f"{V1}/modules/nothex", "invalid-request", 400),
            (f"{V1}/tasks/{'0' * 64}", "unknown-task", 404),
            (f"{V1}/tasks?state=lost", "invalid-request", 400),
        ):
            r = http.get(path)
            assert (r.status_code, r.json()["code"]) == (status_code, code), r.text
        r = http.put(f"{V1}/modules/{module}", content=b"\x00asm\x01\x00\x00\x00")
        assert (r.status_code, r.json()["code"]) == (422, "module-hash-mismatch"), r.text
        r = http.put(f"{V1}/modules/{module}", content=b"\x00" * (4 * MIB + 1))
        assert (r.status_code, r.json()["code"]) == (413, "module-too-large"), r.text

        # A 1 MiB module through the CLI (past the API's 256 KiB body limit), read on node B
        (tmp_path / "big.wat").write_text(big_wat(MIB))
        big = doc("compute", "upload", str(tmp_path / "big.wat"), *c, "--key", "bob")
        assert big["size"] > MIB and big["new"] is True and big["shared"] is True
        token_b = login(node_b.base, Keystore(data / "keys").unlock("bob", PASSPHRASE), COOP)
        http_b = httpx.Client(base_url=node_b.base, headers=bearer(token_b), timeout=30)
        deadline = time.monotonic() + 60
        while (r := http_b.get(f"{V1}/modules/{big['module']}")).status_code == 404:
            assert time.monotonic() < deadline, r.text  # compute.ModuleStored not replicated
            time.sleep(0.2)
        assert r.status_code == 200 and module_hash(r.content) == big["module"], r.text
        # A module the log stores whose bytes no node was given: 503, not a verdict
        with Sandbox(EngineSettings(epoch_interruption=False)) as sandbox:
            orphan = intake(big_wat(1000).encode(), sandbox)
        assert isinstance(orphan, StoredModule)
        bob_key = Keystore(data / "keys").unlock("bob", PASSPHRASE)
        client = IcnClient(node.base)
        client.login(bob_key, COOP)
        RemoteWriter(client, bob_key, COOP).submit([(cb.MODULE_STORED, orphan.body())])
        r = http.get(f"{V1}/modules/{orphan.hash}")
        assert (r.status_code, r.json()["code"]) == (503, "module-unavailable"), r.text
        # ... until its bytes land in node A's data directory (as an upload with --data-dir
        # to a stopped node would): A shares what it keeps, and node B can read them
        ModuleStore(data / "modules").put(COOP, orphan.binary)
        deadline = time.monotonic() + 60
        while (r := http_b.get(f"{V1}/modules/{orphan.hash}")).status_code == 503:
            assert time.monotonic() < deadline, r.text
            time.sleep(0.5)
        assert r.status_code == 200 and r.content == orphan.binary, r.text
        listed = http.get(f"{V1}/tasks", params={"state": "settled", "executor": execs[0]})
        assert [t["id"] for t in listed.json()["tasks"]] == [task]
        over = icn("compute", "submit", module, "--fuel", "1000", "--max-fee", "500",
                   "--currency", "hours", *c, "--key", "bob", check=1)  # fmt: skip
        assert "credit-limit-exceeded" in over.stderr.decode()

        # Executors of the smallest class reveal a full-size output (32 KiB: a ~44 KiB
        # event, over their 16 KiB body cap, which bounds batches, never one legal event).
        icn("trust", "publish", "--coop", COOP, "--context", "general", "--url", node.base,
            "--key", "alice")  # fmt: skip
        standing = http.get(f"{V1}/trust/standing").json()["members"]
        assert {m["class"] for m in standing if m["did"] in execs} == {"isolated"}, standing
        full = bytes(range(256)) * (MAX_OUTPUT_BYTES // 256)
        (tmp_path / "full").write_bytes(full)
        task = doc("compute", "submit", module, "--input-file", str(tmp_path / "full"),
                   "--fuel", "5000000", "--max-fee", "10", "--currency", "hours",
                   *c, "--key", "bob")["task"]  # fmt: skip
        deadline = time.monotonic() + 120
        while (state := http.get(f"{V1}/tasks/{task}").json())["state"] != "settled":
            logs = (tmp_path / "ex1.log").read_text()[-3000:] + node_b.log.read_text()[-3000:]
            assert time.monotonic() < deadline, (state, logs)
            time.sleep(0.3)
        assert base64.b64decode(state["output"]) == bytes(b ^ 32 for b in full), state
        assert sorted(state["agreeing"]) == sorted(execs), state
    finally:
        for p in runners:
            p.send_signal(signal.SIGTERM)
        for p in runners:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for n in (node_b, node):
            if n.proc is not None and n.proc.poll() is None:
                n.stop()
    # the rules' state (holds, tasks, loads) and every read model rebuild identically
    assert doc("replay")["identical"] is True
