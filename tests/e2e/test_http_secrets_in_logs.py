"""A token never reaches the node's log output, over a real run (real ``icn node run``).

WebSocket clients hand their token over as a subprotocol; an old client that
still puts it in the URL is refused, and the URL it used is logged with its
query values redacted: by uvicorn's WebSocket line (written even with the
access log off) and by the access log when it is on; in both log formats (text, and
JSON: one object a line, the message formatted from the redacted record).
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from support.nodes import bearer, login, start_node
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from icn.interfaces.client import ws_subprotocols

COOP = "food-coop"


@pytest.mark.parametrize("log_format", ["text", "json"])
@pytest.mark.parametrize("access_log", ["false", "true"])
def test_no_token_in_the_log_of_a_real_run(
    tmp_path: Path, coop_log_file: Path, icn_path_module: str, icn_env_module: dict, members,
    access_log: str, log_format: str,
) -> None:  # fmt: skip
    env = {**icn_env_module, "ICN_HTTP_ACCESS_LOG": access_log, "ICN_LOG_FORMAT": log_format}
    node = start_node(icn_path_module, env, tmp_path / "node", coop_log_file)
    try:
        token = login(node.base, members["alice"])
        ws = f"{node.ws_base}/v1/coops/{COOP}/ws"
        with connect(f"{ws}?after=0", subprotocols=ws_subprotocols(token), open_timeout=5) as s:
            assert s.subprotocol == "icn.v1"
            assert json.loads(s.recv(timeout=5))["position"] == 1
        # An old client: the token in the URL is refused (and must not be logged either).
        with connect(f"{ws}?token={token}&after=0", open_timeout=5) as s:
            with pytest.raises(ConnectionClosed) as closed:
                s.recv(timeout=5)
            assert closed.value.rcvd is not None and closed.value.rcvd.reason == "token-in-url"
        # Any other URL that carries it, on a plain HTTP route.
        r = httpx.get(f"{node.base}/v1/coops/{COOP}/events", headers=bearer(token),
                      params={"limit": 1, "token": token})  # fmt: skip
        assert r.status_code == 400 and r.json()["code"] == "token-in-url", r.text
    finally:
        node.stop()
    log = node.log.read_text(errors="replace")
    assert token not in log
    for part in token.split("."):  # not even a piece of it
        assert part not in log
    assert "/ws?after=…" in log and "token=…" in log  # the lines are there, values redacted
    if access_log == "true":
        assert "/events?limit=…&token=…" in log
    if log_format == "json":  # the node's lines are JSON objects (the banner is not a log line)
        lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
        said = [line["msg"] for line in lines]
        assert any("/ws?after=…" in msg for msg in said), said
        assert all({"ts", "level", "logger", "msg"} <= line.keys() for line in lines)
        if access_log == "true":
            assert any("/events?limit=…&token=…" in msg for msg in said), said
