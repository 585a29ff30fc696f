"""The Grafana dashboard of ops/ asks only for metrics a real node exports.

A node (replication on, checkpoints after every event, a strict login limit) serves a
login, two posts (one appended, one refused as a duplicate) and a few logins too many;
then every metric named in the dashboard's queries and variables must be in its
``GET /metrics`` (a histogram by its ``_bucket``/``_sum``/``_count`` series).
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import httpx
from nacl.signing import SigningKey
from support.coops import did_for
from support.nodes import PAYEE, bearer, login, start_node

from icn.domain.events.envelope import sign_event
from icn.domain.identity.did import did_from_public_key

COOP = "food-coop"
DASHBOARD = Path(__file__).resolve().parents[2] / "ops" / "grafana" / "dashboards" / "icn.json"
METRIC = re.compile(r"\bicn_[a-z0-9_]+")


def dashboard_metrics() -> set[str]:
    """Every ``icn_*`` name in the dashboard's panel queries and template variables."""
    dashboard = json.loads(DASHBOARD.read_text())
    texts = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    texts += [json.dumps(v.get("query")) for v in dashboard["templating"]["list"]]
    return {name for text in texts for name in METRIC.findall(text)}


def exported(text: str) -> set[str]:
    """The sample names of a Prometheus text exposition."""
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    return {re.split(r"[{ ]", line, maxsplit=1)[0] for line in lines}


def payment(base: str, token: str, key: SigningKey) -> bytes:
    did = did_from_public_key(bytes(key.verify_key))
    head = httpx.get(f"{base}/v1/coops/{COOP}/chains/{did}/head", headers=bearer(token)).json()
    tx = {"from": did, "to": did_for(PAYEE), "amount": 2, "currency": "hours", "memo": None}
    return sign_event(
        key, coop=COOP, seq=head["next_seq"], prev=head["prev"], ts=int(time.time() * 1000),
        type="ledger.EntryRecorded", body={"transactions": [tx]},
    ).wire_bytes()  # fmt: skip


def test_every_metric_the_dashboard_queries_is_exported(
    tmp_path: Path, coop_log_file: Path, icn_path_module: str, icn_env_module: dict, members
) -> None:
    wanted = dashboard_metrics()
    assert {"icn_events_appended_total", "icn_events_refused_total"} <= wanted
    assert "icn_http_request_duration_seconds_bucket" in wanted
    env = {
        **icn_env_module,
        "ICN_CHECKPOINT_EVERY": "1",
        "ICN_RATE_AUTH_BURST": "4",  # a login is two requests: room for one, then 429s
        "ICN_RATE_AUTH_PER_S": "0.01",
    }
    node = start_node(icn_path_module, env, tmp_path / "node", coop_log_file)
    try:
        alice = members["alice"]
        token = login(node.base, alice)
        headers = {**bearer(token), "Content-Type": "application/json"}
        wire = payment(node.base, token, alice)
        url = f"{node.base}/v1/coops/{COOP}/events"
        assert httpx.post(url, content=wire, headers=headers).status_code == 201
        assert httpx.post(url, content=wire, headers=headers).status_code == 409
        did = did_from_public_key(bytes(alice.verify_key))
        limited = [
            httpx.post(f"{node.base}/v1/auth/challenge", json={"did": did}).status_code
            for _ in range(4)
        ]
        assert 429 in limited, limited
        deadline = time.monotonic() + 30
        while True:  # the gauges read per scrape: a checkpoint and the replication figures
            names = exported(httpx.get(node.metrics).text)
            missing = wanted - names
            if not missing or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert not missing, f"the dashboard queries metrics the node does not export: {missing}"
    finally:
        node.stop()
