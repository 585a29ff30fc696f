"""An expired login nonce is refused over real HTTP (TTL shortened for the test)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from support.nodes import start_node

from icn.domain.identity.did import did_from_public_key


def test_a_nonce_used_after_its_ttl_is_refused(
    tmp_path: Path, members: dict, coop_log_file: Path, icn_path_module: str, icn_env_module: dict
) -> None:
    env = dict(icn_env_module, ICN_AUTH_CHALLENGE_TTL_S="1")
    node = start_node(icn_path_module, env, tmp_path / "node", coop_log_file)
    try:
        alice = members["alice"]  # a member: only the expiry can refuse her
        did = did_from_public_key(bytes(alice.verify_key))
        ch = httpx.post(f"{node.base}/v1/auth/challenge", json={"did": did}).json()
        assert ch["expires_at"] - time.time() * 1000 <= 1000
        sig = alice.sign(b"icn-auth-v1:" + bytes.fromhex(ch["nonce"])).signature.hex()
        time.sleep(1.2)
        r = httpx.post(
            f"{node.base}/v1/auth/verify",
            json={"did": did, "nonce": ch["nonce"], "signature": sig, "coop": "food-coop"},
        )
        assert r.status_code == 401 and r.json()["code"] == "auth-failed"
        # A fresh nonce signed at once still works: the refusal was the expiry.
        ch = httpx.post(f"{node.base}/v1/auth/challenge", json={"did": did}).json()
        sig = alice.sign(b"icn-auth-v1:" + bytes.fromhex(ch["nonce"])).signature.hex()
        r = httpx.post(
            f"{node.base}/v1/auth/verify",
            json={"did": did, "nonce": ch["nonce"], "signature": sig, "coop": "food-coop"},
        )
        assert r.status_code == 200
    finally:
        node.stop()
