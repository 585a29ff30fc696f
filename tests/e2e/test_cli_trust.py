"""The web of trust as people use it: ``icn trust`` on a data dir, then over real HTTP from a
running node (attest, revoke, publish, standing, path, graph, verify, replay; bad input codes)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from support.nodes import RunningNode, bearer, login

from icn.infrastructure.keystore import Keystore

Icn = Callable[..., subprocess.CompletedProcess[bytes]]
PASSPHRASE = "e2e-test-passphrase"
V1 = "/v1/coops/tc"


def test_trust_from_the_cli_and_over_http(
    icn: Icn, tmp_path: Path, icn_path: str, icn_process_env: dict[str, str]
) -> None:
    data = tmp_path / "node"
    node = ["--data-dir", str(data)]

    def run(*args: str, check: int = 0) -> subprocess.CompletedProcess[bytes]:
        return icn(*args, *node, check=check)

    def doc(*args: str) -> Any:
        return json.loads(run(*args, "--json").stdout)

    def refused(code: str, *args: str, exit_code: int = 1) -> None:
        proc = run(*args, check=exit_code)
        assert f"({code})" in proc.stderr.decode(), proc.stderr.decode()

    run("node", "init")
    for name in ("alice", "bob", "carol", "dan"):
        run("id", "init", name)
    run("coop", "found", "--coop", "tc", "--name", "Trust coop", "--currency", "hours:hour:2",
        "--member", "alice:admin", "--member", "bob", "--member", "carol",
        "--baseline", "100", "--max-limit", "500")  # fmt: skip
    did = {n: doc("id", "show", n)["did"] for n in ("alice", "bob", "carol", "dan")}
    c = ["--coop", "tc"]

    to_bob = doc("trust", "add", "bob", "0.9", *c, "--key", "alice", "--note", "fixed my bike")
    assert to_bob["score_ppm"] == 900_000 and to_bob["subject"] == did["bob"]
    doc("trust", "add", did["carol"], "800000", *c, "--key", "bob")
    to_carol = doc("trust", "add", "carol", "0.5", *c, "--key", "alice")
    doc("trust", "revoke", to_carol["id"], *c, "--key", "alice")

    refused("self-attestation", "trust", "add", "alice", "0.5", *c, "--key", "alice")
    refused("invalid-score", "trust", "add", "bob", "1.5", *c, "--key", "alice")
    refused("not-a-member", "trust", "add", "dan", "0.5", *c, "--key", "alice")
    refused("not-truster", "trust", "revoke", to_bob["id"], *c, "--key", "bob")
    refused("attestation-not-live", "trust", "revoke", to_carol["id"], *c, "--key", "alice")
    run("trust", "add", "bob", "0.5", *c, "--key", "alice", "--context", "love", check=2)

    published = doc("trust", "publish", *c)["published"]
    assert [(p["context"], p["epoch"]) for p in published] == [("general", 1)]
    page = doc("trust", "standing", *c)
    assert page["epoch"]["epoch"] == 1 and page["epoch"]["digest"] == published[0]["digest"]
    assert sorted(m["did"] for m in page["members"]) == sorted(did[n] for n in did if n != "dan")
    assert doc("trust", "standing", *c, "bob")["standings"][0]["context"] == "general"
    way = doc("trust", "path", "alice", "carol", *c)
    assert way["found"] and [e["subject"] for e in way["path"]] == [did["bob"], did["carol"]]
    checked = doc("trust", "verify", *c)
    assert checked["ok"] and [e["ok"] for e in checked["epochs"]] == [True]
    picture = tmp_path / "trust.svg"
    drawn = doc("trust", "graph", *c, "--svg", str(picture), "--min-score", "0.1")
    assert len(drawn["edges"]) == 2 and picture.read_text().count("<circle") >= 3

    served = RunningNode(icn_path, icn_process_env, data).start()
    try:
        keys = Keystore(data / "keys")
        token = login(served.base, keys.unlock("carol", PASSPHRASE), "tc")
        http = httpx.Client(base_url=served.base, headers=bearer(token), timeout=30)

        def get(path: str, status: int = 200, **params: Any) -> Any:
            r = http.get(f"{V1}{path}", params=params)
            assert r.status_code == status, r.text
            return r.json()

        url = ["--url", served.base]
        remote = json.loads(icn("trust", "add", "alice", "1", *c, "--key", "carol", *url,
                                "--json", *node).stdout)  # fmt: skip
        assert get("/trust/standing")["epoch"]["epoch"] == 1
        given = get(f"/members/{did['carol']}/attestations")["given"]
        assert [a["id"] for a in given] == [remote["id"]]
        received = get(f"/members/{did['carol']}/attestations")["received"]
        assert {(a["truster"], a["revoked"]) for a in received} == {
            (did["alice"], True),
            (did["bob"], False),
        }
        graph = get("/trust/graph", min_score_ppm=850_000)
        assert {(e["truster"], e["subject"]) for e in graph["edges"]} == {
            (did["alice"], did["bob"]),
            (did["carol"], did["alice"]),
        }
        hop = get(f"/trust/path/{did['carol']}/{did['bob']}", context="general")
        assert hop["found"] and len(hop["path"]) == 2 and hop["score_ppm"] > 800_000

        r = http.post(f"{V1}/trust/epochs")
        assert r.status_code == 201, r.text
        assert [(p["context"], p["epoch"]) for p in r.json()["published"]] == [("general", 2)]
        again = json.loads(icn("trust", "publish", *c, "--context", "general", "--key", "bob",
                               *url, "--json", *node).stdout)  # fmt: skip
        assert again["published"][0]["epoch"] == 3
        assert [e["epoch"] for e in get("/trust/epochs")["epochs"]] == [1, 2, 3]
        mine = get(f"/trust/standing/{did['carol']}", context="general")["standings"]
        assert mine[0]["epoch"] == 3 and mine[0]["class"] in ("known", "partner", "federated")

        for path, params, code in [
            ("/trust/standing", {"context": "love"}, "invalid-context"),
            ("/trust/graph", {"min_score_ppm": 2_000_000}, "invalid-score"),
            ("/trust/path/did:icn:nope/x", {}, "invalid-did"),
            ("/members/nope/attestations", {}, "invalid-did"),
        ]:
            assert get(path, 400, **params)["code"] == code
        r = httpx.get(f"{served.base}{V1}/trust/standing", timeout=30)
        assert r.status_code == 401
    finally:
        served.stop()

    checked = doc("trust", "verify", *c)
    assert checked["ok"] and len(checked["epochs"]) == 3
    report = doc("replay")
    assert report["identical"], report["differences"]
