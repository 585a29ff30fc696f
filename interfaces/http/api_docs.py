"""The API docs page (``/schema``): Redoc, served from the node itself under a strict CSP.

Litestar's Redoc page loads Redoc from a CDN and starts it with an inline
script; the node's own CSP refuses both (and nodes often run without
internet), so the page was blank. This page loads the vendored bundle and a
small start script from ``/schema/assets/``, each pinned by its SRI hash,
and :data:`DOCS_CSP` allows exactly that: scripts from the node only, no
inline script, no eval. Redoc injects its styles at run time, so inline
*styles* are allowed, and it runs its search index in a ``blob:`` worker.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field, fields
from functools import cache
from importlib.resources import files
from typing import Any

from litestar import Request, Response, Router, get
from litestar.exceptions import NotFoundException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import OpenAPIRenderPlugin
from litestar.openapi.spec import OpenAPI
from litestar.params import FromPath

ASSETS = {
    "redoc.standalone.js": "text/javascript; charset=utf-8",
    "init.js": "text/javascript; charset=utf-8",
    "docs.css": "text/css; charset=utf-8",
}
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src blob:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
"""The CSP of the docs page (HTML responses); every other response keeps the node's own."""


@cache
def asset(name: str) -> bytes:
    """A vendored file of ``docs_ui``, read once."""
    return files("icn.interfaces.http.docs_ui").joinpath(name).read_bytes()


def integrity(name: str) -> str:
    """The SRI value of an asset (``sha384-…``)."""
    return "sha384-" + base64.b64encode(hashlib.sha384(asset(name)).digest()).decode()


@get("/assets/{name:str}", sync_to_thread=False, include_in_schema=False)
def docs_asset(name: FromPath[str]) -> Response[bytes]:
    """One of the docs page's files; nothing else is served from here."""
    media_type = ASSETS.get(name)
    if media_type is None:
        raise NotFoundException(f"no asset {name}")
    return Response(
        asset(name), media_type=media_type, headers={"Cache-Control": "public, max-age=86400"}
    )


class LocalRedoc(OpenAPIRenderPlugin):
    """Redoc at ``/schema`` (and ``/schema/redoc``), assets from ``/schema/assets/``."""

    def __init__(self) -> None:
        super().__init__(path=["/", "/redoc"], favicon="", style="")

    def receive_router(self, router: Router) -> None:
        router.register(docs_asset)

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        base = request.app.openapi_config.path if request.app.openapi_config else "/schema"
        title = str(openapi_schema["info"]["title"]).replace("<", "&lt;")

        def script(name: str) -> str:
            return f'<script src="{base}/assets/{name}" integrity="{integrity(name)}"></script>'

        return (
            "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{title}</title>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            "<link rel='icon' href='data:,'>"
            f"<link rel='stylesheet' href='{base}/assets/docs.css' "
            f"integrity='{integrity('docs.css')}'>"
            f"</head><body><div id='redoc' data-spec-url='{base}/openapi.json'></div>"
            f"{script('redoc.standalone.js')}{script('init.js')}</body></html>"
        ).encode()


WEBSOCKETS = {
    "/v1/coops/{coop}/ws": {
        "summary": "Live stream of the coop's log (WebSocket)",
        "description": "The same events, filters and cursor as GET /v1/coops/{coop}/stream; "
        "see that operation and docs/api.md.",
        "query": ["after", "type", "author"],
        "subprotocols": ["icn.v1", "icn.bearer.<token>"],
        "frames": ['{"position": n, "event": {…}}', '{"heartbeat": ms}'],
        "close_codes": {
            "1001": "server shutting down",
            "4008": "too slow",
            "4400": "token-in-url / unknown-parameter / invalid-request",
            "4401": "unauthorized / invalid-token / token-expired",
            "4403": "token-coop-mismatch / missing-scope / member-suspended / not-a-member",
        },
        "refusals_before_upgrade": {
            "429": "too-many-streams / rate-limited",
            "503": "streams-full",
        },
    }
}
"""OpenAPI 3.1 has no WebSocket operations, so the route is described in ``x-websockets``."""


@dataclass
class _OpenAPIWithWebSockets(OpenAPI):
    websockets: dict[str, Any] | None = field(default=None, metadata={"alias": "x-websockets"})


@dataclass
class DocsConfig(OpenAPIConfig):
    """The node's OpenAPI config: the document also carries :data:`WEBSOCKETS`."""

    def to_openapi_schema(self) -> OpenAPI:
        base = super().to_openapi_schema()
        values = {f.name: getattr(base, f.name) for f in fields(base)}
        return _OpenAPIWithWebSockets(**values, websockets=WEBSOCKETS)
