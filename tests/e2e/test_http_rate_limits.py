"""Rate limits over real HTTP, against a real ``icn node run`` with tight ``ICN_RATE_*``."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from nacl.signing import SigningKey
from support.nodes import RunningNode, login, start_node

from icn.domain.identity.did import did_from_public_key

COOP = "food-coop"


@pytest.fixture(scope="module")
def start(
    tmp_path_factory: pytest.TempPathFactory,
    icn_path_module: str,
    icn_env_module: dict[str, str],
    coop_log_file: Path,
) -> Iterator[Callable[[dict[str, str]], str]]:
    """Start nodes (the members' log imported) with extra ``ICN_*`` settings.

    Each is stopped, and must exit 0, at the end.
    """
    nodes: list[RunningNode] = []

    def _start(settings: dict[str, str]) -> str:
        data = tmp_path_factory.mktemp("limits") / "node"
        env = {**icn_env_module, **settings}
        nodes.append(start_node(icn_path_module, env, data, coop_log_file))
        return nodes[-1].base

    yield _start
    for node in nodes:
        node.stop()


@pytest.fixture(scope="module")
def strict_auth(start: Callable[[dict[str, str]], str]) -> str:
    """A node allowing three login requests per address, then one every two seconds."""
    return start({"ICN_RATE_AUTH_BURST": "3", "ICN_RATE_AUTH_PER_S": "0.5"})


@pytest.fixture(scope="module")
def strict_did(start: Callable[[dict[str, str]], str]) -> str:
    """A node with generous per-address limits and five requests per DID, then one in 10 s."""
    return start(
        {
            "ICN_RATE_IP_BURST": "10000",
            "ICN_RATE_IP_PER_S": "1000",
            "ICN_RATE_DID_BURST": "5",
            "ICN_RATE_DID_PER_S": "0.1",
        }
    )


def assert_rate_limited(r: httpx.Response) -> int:
    """The refusal's shape; returns its ``Retry-After``."""
    assert r.status_code == 429, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    doc = r.json()
    assert doc["status"] == 429 and doc["code"] == "rate-limited" and doc["title"]
    after = int(r.headers["retry-after"])
    assert after >= 1
    return after


def test_the_fourth_challenge_in_a_burst_is_refused_with_retry_after(
    strict_auth: str, members: dict[str, SigningKey]
) -> None:
    did = did_from_public_key(bytes(members["alice"].verify_key))
    with httpx.Client(base_url=strict_auth) as client:
        answers = [client.post("/v1/auth/challenge", json={"did": did}) for _ in range(4)]
        assert [r.status_code for r in answers[:3]] == [200, 200, 200]
        # One token takes 2 s at 0.5/s; part of it may have refilled already.
        assert 1 <= assert_rate_limited(answers[3]) <= 2
        # Health is never limited, even while this address is.
        for _ in range(50):
            assert client.get("/v1/health").status_code == 200
        assert client.get("/v1/ready").status_code == 200
        # Other routes use the general per-address bucket, which is far from empty.
        assert client.get(f"/v1/coops/{COOP}/events").status_code == 401
        # After Retry-After, the next challenge is served.
        time.sleep(2.05)
        assert client.post("/v1/auth/challenge", json={"did": did}).status_code == 200


def test_one_did_is_limited_while_another_on_the_same_address_is_served(
    strict_did: str, members: dict[str, SigningKey]
) -> None:
    alice = {"Authorization": f"Bearer {login(strict_did, members['alice'])}"}
    bob = {"Authorization": f"Bearer {login(strict_did, members['bob'])}"}
    path = f"/v1/coops/{COOP}/events"
    with httpx.Client(base_url=strict_did) as client:
        statuses = [client.get(path, headers=alice).status_code for _ in range(5)]
        assert 429 not in statuses
        assert 1 <= assert_rate_limited(client.get(path, headers=alice)) <= 10  # 0.1/s
        assert client.get(path, headers=bob).status_code not in (429,)
        # A token that does not verify charges no DID: the route refuses it, every time.
        for _ in range(10):
            r = client.get(path, headers={"Authorization": "Bearer not.a.token"})
            assert r.status_code == 401 and r.json()["code"] == "invalid-token"
        assert client.get("/v1/health", headers=alice).status_code == 200
