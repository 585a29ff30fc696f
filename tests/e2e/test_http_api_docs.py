"""The API docs page works offline under the node's CSP (real HTTP, real ``icn node run``).

The page and every script and style sheet it references come from the node
itself, each script is pinned by an SRI hash that matches what the node
serves, and the page's CSP allows scripts from the node only (no inline
script, no eval). The WebSocket route, which OpenAPI cannot describe as an
operation, is described on the SSE route and in an ``x-`` extension.
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import httpx
import pytest
from support.nodes import start_node


@pytest.fixture(scope="module")
def node(tmp_path_factory, coop_log_file: Path, icn_path_module: str, icn_env_module: dict):
    running = start_node(
        icn_path_module, icn_env_module, tmp_path_factory.mktemp("docs") / "node", coop_log_file
    )
    yield running
    running.stop()


def test_the_docs_page_and_all_it_loads_come_from_the_node(node) -> None:
    page = httpx.get(f"{node.base}/schema")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = dict(d.strip().split(" ", 1) for d in page.headers["content-security-policy"].split(";"))
    assert csp["script-src"] == "'self'" and csp["default-src"] == "'none'"
    assert "unsafe-inline" not in csp["script-src"] and "unsafe-eval" not in page.text
    html = page.text
    assert "<script>" not in html and "http://" not in html and "https://" not in html
    assert not re.search(r"<script(?![^>]*\bsrc=)", html), "an inline script"
    scripts = re.findall(r'<script src="([^"]+)" integrity="([^"]+)"', html)
    sheets = re.findall(r"<link rel='stylesheet' href='([^']+)' integrity='([^']+)'", html)
    assert len(scripts) == 2 and len(sheets) == 1
    for url, sri in [*scripts, *sheets]:
        assert url.startswith("/schema/assets/")
        r = httpx.get(node.base + url)
        assert r.status_code == 200, url
        kind = "javascript" if url.endswith(".js") else "css"
        assert kind in r.headers["content-type"]
        algo, digest = sri.split("-", 1)
        assert base64.b64encode(hashlib.new(algo, r.content).digest()).decode() == digest
    assert b"Redoc" in httpx.get(node.base + scripts[0][0]).content
    spec = re.search(r"data-spec-url='([^']+)'", html)
    assert spec is not None
    r = httpx.get(node.base + spec.group(1))
    assert r.status_code == 200 and r.json()["openapi"].startswith("3.1")
    assert httpx.get(f"{node.base}/schema/assets/../app.py").status_code == 404
    assert httpx.get(f"{node.base}/schema/assets/app.py").status_code == 404
    api = httpx.get(f"{node.base}/v1/health")  # every other response keeps the strict CSP
    assert api.headers["content-security-policy"].startswith("default-src 'self'")


def test_the_openapi_document_describes_the_websocket_route(node) -> None:
    doc = httpx.get(f"{node.base}/schema/openapi.json").json()
    sse = doc["paths"]["/v1/coops/{coop}/stream"]["get"]
    assert "/v1/coops/{coop}/ws" in sse["description"]
    assert "icn.bearer." in sse["description"] and "4401" in sse["description"]
    ws = doc["x-websockets"]["/v1/coops/{coop}/ws"]
    assert ws["subprotocols"] == ["icn.v1", "icn.bearer.<token>"]
