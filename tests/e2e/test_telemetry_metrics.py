"""Metrics and JSON logs of a real ``icn node run``, scraped and read over real HTTP.

A few posts (two accepted, one refused by the node's judgement, one refused before
judging), then ``GET /metrics``: every instrument of docs/operations.md is there with
its labels, and the counters say what happened. The log is one JSON object a line.
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
SAMPLE = re.compile(r"^(?P<name>[a-z_]+)(?:\{(?P<labels>.*)\})? (?P<value>\S+)$")


def samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    """(name, labels, value) of every sample line of a Prometheus text exposition."""
    found = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, line
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m["labels"] or ""))
        found.append((m["name"], labels, float(m["value"])))
    return found


def value(found: list[tuple[str, dict[str, str], float]], name: str, **labels: str) -> float:
    hits = [v for n, ls, v in found if n == name and all(ls.get(k) == x for k, x in labels.items())]
    assert hits, f"no {name} {labels}"
    return sum(hits)


def lag_of(found: list[tuple[str, dict[str, str], float]]) -> float | None:
    """The lag gauge's sample for the coop, or ``None`` when it has none (lag unknown)."""
    hits = [v for n, ls, v in found if n == "icn_replication_lag_events" and ls.get("coop") == COOP]
    return hits[0] if hits else None


def _consumer_lag(base: str) -> int | None:
    ready = httpx.get(f"{base}/v1/ready", timeout=10).json()
    return ready["replication"]["coops"][COOP]["consumer_lag"]  # type: ignore[no-any-return]


def payment(base: str, token: str, key: SigningKey, amount: int = 3) -> bytes:
    did = did_from_public_key(bytes(key.verify_key))
    head = httpx.get(f"{base}/v1/coops/{COOP}/chains/{did}/head", headers=bearer(token)).json()
    tx = {"from": did, "to": did_for(PAYEE), "amount": amount, "currency": "hours", "memo": None}
    return sign_event(
        key, coop=COOP, seq=head["next_seq"], prev=head["prev"], ts=int(time.time() * 1000),
        type="ledger.EntryRecorded", body={"transactions": [tx]},
    ).wire_bytes()  # fmt: skip


def post(base: str, token: str, wire: bytes) -> httpx.Response:
    headers = {**bearer(token), "Content-Type": "application/json"}
    return httpx.post(f"{base}/v1/coops/{COOP}/events", content=wire, headers=headers)


def test_metrics_after_posts_and_json_logs(
    tmp_path: Path, coop_log_file: Path, icn_path_module: str, icn_env_module: dict, members
) -> None:
    env = {**icn_env_module, "ICN_LOG_FORMAT": "json"}
    node = start_node(icn_path_module, env, tmp_path / "node", coop_log_file)
    try:
        alice, bob = members["alice"], members["bob"]
        token = login(node.base, alice)
        first = payment(node.base, token, alice)
        assert post(node.base, token, first).status_code == 201
        assert post(node.base, token, payment(node.base, token, alice)).status_code == 201
        again = post(node.base, token, first)  # a resend: judged, refused as a duplicate
        assert again.status_code == 409 and again.json()["code"] == "duplicate"
        # Bob posts alice's event: refused before judging (only its author may post it).
        other = post(node.base, login(node.base, bob), payment(node.base, token, alice))
        assert other.status_code == 403 and other.json()["code"] == "not-author"
        scrape = httpx.get(node.metrics)
        assert scrape.status_code == 200
        assert scrape.headers["content-type"].startswith("text/plain")
        found = samples(scrape.text)
        names = {n for n, _, _ in found}
        kind = "ledger.EntryRecorded"
        assert value(found, "icn_events_appended_total", coop=COOP, type=kind) == 2
        assert value(found, "icn_events_refused_total", coop=COOP, code="duplicate") == 1
        assert value(found, "icn_events_refused_total", coop=COOP, code="not-author") == 1
        route = "/v1/coops/{coop}/events"
        posts = {"route": route, "method": "POST"}
        assert value(found, "icn_http_request_duration_seconds_count", **posts, status="201") == 2
        assert value(found, "icn_http_request_duration_seconds_count", **posts, status="409") == 1
        assert value(found, "icn_http_request_duration_seconds_count", **posts, status="403") == 1
        assert value(found, "icn_verify_seconds_count") >= 4
        assert value(found, "icn_verify_seconds_sum") > 0
        assert value(found, "icn_group_commit_events_count") >= 3  # the refused one too
        assert value(found, "icn_group_commit_events_sum") >= 3
        # The replication figures are /v1/ready's, refreshed every second: the node catches
        # up with its own stream (the imported log, then the posts) and the lag goes to 0.
        # While JetStream's consumer info is not in (a 2 s timeout on a busy machine),
        # /v1/ready says null and the gauge has no sample for the coop, never a 0.
        deadline = time.monotonic() + 20
        while (lag := _consumer_lag(node.base)) != 0 or lag_of(found) != 0:
            assert lag is None or lag >= 0, lag
            assert time.monotonic() < deadline, f"the lag never went to 0 ({lag})"
            time.sleep(0.5)
            found = samples(httpx.get(node.metrics).text)
        assert value(found, "icn_replication_parked", coop=COOP) == 0
        assert value(found, "icn_quarantined_forks", coop=COOP) == 0
        assert value(found, "icn_stream_clients", kind="stream") == 0
        assert value(found, "icn_stream_clients", kind="ws") == 0
        assert "icn_http_request_duration_seconds_bucket" in names
        # A live stream shows while it is open.
        with httpx.stream(
            "GET", f"{node.base}/v1/coops/{COOP}/stream", headers=bearer(token),
            params={"after": 0}, timeout=10,
        ) as live:  # fmt: skip
            assert live.status_code == 200
            during = samples(httpx.get(node.metrics).text)
            assert value(during, "icn_stream_clients", kind="stream") == 1
        # /metrics takes no token and is off the public rate limits.
        for _ in range(5):
            assert httpx.get(node.metrics).status_code == 200
    finally:
        node.stop()
    lines = [line for line in node.log.read_text().splitlines() if line.strip()]
    objects = [json.loads(line) for line in lines if line.startswith("{")]
    assert objects, lines[:20]
    for obj in objects:
        assert {"ts", "level", "logger", "msg"} <= obj.keys(), obj
    assert any(o["logger"].startswith("uvicorn") for o in objects)
    assert not any("Traceback" in line for line in lines)


def test_metrics_are_apart_from_the_api_unless_asked_for_there(
    tmp_path: Path, coop_log_file: Path, icn_path_module: str, icn_env_module: dict
) -> None:
    """/metrics (coop names, counts) is on a loopback listener of its own, not on the API's
    port (the default 127.0.0.1:9464: tests/unit/infrastructure/test_metrics_addr.py; here a
    free port, as nodes of parallel tests need); ``ICN_METRICS_ADDR=api`` puts it back on the
    API's port, still without a token and off the rate limits."""
    node = start_node(icn_path_module, icn_env_module, tmp_path / "node", coop_log_file)
    try:
        assert httpx.get(f"{node.base}/metrics").status_code == 404  # not on the API's port
        assert node.metrics.startswith("http://127.0.0.1:") and node.base not in node.metrics
        scrape = httpx.get(node.metrics)
        assert scrape.status_code == 200
        assert value(samples(scrape.text), "icn_quarantined_forks", coop=COOP) == 0
        assert httpx.get(node.metrics.replace("/metrics", "/other")).status_code == 404
    finally:
        node.stop()
    env = {**icn_env_module, "ICN_METRICS_ADDR": "api", "ICN_RATE_IP_BURST": "2",
           "ICN_RATE_IP_PER_S": "0.01"}  # fmt: skip
    node = start_node(icn_path_module, env, tmp_path / "api", coop_log_file)
    try:
        assert node.metrics == f"{node.base}/metrics"
        for _ in range(4):  # beyond the IP burst: not limited
            scrape = httpx.get(node.metrics)
            assert scrape.status_code == 200
        assert value(samples(scrape.text), "icn_quarantined_forks", coop=COOP) == 0
    finally:
        node.stop()


def test_rate_limits_and_checkpoints_are_counted(
    tmp_path: Path, coop_log_file: Path, icn_path_module: str, icn_env_module: dict, members
) -> None:
    env = {
        **icn_env_module,
        "ICN_RATE_IP_BURST": "3", "ICN_RATE_IP_PER_S": "0.01",  # callers without a token
        "ICN_CHECKPOINT_EVERY": "1", "ICN_CHECKPOINT_SECONDS": "1",
    }  # fmt: skip
    node = start_node(icn_path_module, env, tmp_path / "node", coop_log_file)
    try:
        answers = [httpx.get(f"{node.base}/v1/coops/{COOP}/events").status_code for _ in range(5)]
        assert answers.count(429) == 2, answers
        # The node checkpoints the imported log within a tick of its schedule.
        deadline = time.monotonic() + 20
        while True:
            scrape = httpx.get(node.metrics)
            assert scrape.status_code == 200  # no token, and not limited like the others
            found = samples(scrape.text)
            if any(n == "icn_checkpoint_age_seconds" for n, _, _ in found):
                break
            assert time.monotonic() < deadline, "no checkpoint age"
            time.sleep(0.5)
        assert value(found, "icn_rate_limited_total", bucket="ip") == 2
        assert 0 <= value(found, "icn_checkpoint_age_seconds", coop=COOP) < 60
    finally:
        node.stop()
