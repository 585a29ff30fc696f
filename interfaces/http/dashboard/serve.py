"""Serving the members' dashboard: one HTML shell at ``/`` and its files under ``/assets/``.

Why this shape: the node must serve everything itself (no CDN, no build step a
newcomer runs), under a CSP that allows scripts from the node only and no
inline script. So the shell is static HTML naming its ES modules; every
module is listed as a ``modulepreload`` with its SRI hash, so the browser
checks each file it runs, and fetches them all at once.

Asset URLs carry the hash of the whole set (``/assets/<version>/lib/api.js``):
an asset can then be cached for a year (``immutable``), the modules' relative
imports keep working, and a node that is upgraded serves new URLs, never a
stale mix. The shell itself is ``no-cache`` (it is small, and names the
version).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from importlib.resources.abc import Traversable

from litestar import Response, Router, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath

PACKAGE = "icn.interfaces.http.dashboard"
MEDIA_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
}
SHELL = "index.html"
ENTRY = "app.js"
STYLE = "style.css"
DASHBOARD_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; manifest-src 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'none'"
)
"""The dashboard's CSP: scripts, styles and requests to this node only; nothing inline."""
ASSET_CACHE = "public, max-age=31536000, immutable"


@dataclass(frozen=True)
class Assets:
    """Every servable file (path relative to the package -> bytes) and the set's version."""

    files: dict[str, bytes]
    version: str

    def integrity(self, path: str) -> str:
        """The SRI value of one asset (``sha384-…``)."""
        return "sha384-" + base64.b64encode(hashlib.sha384(self.files[path]).digest()).decode()


def _walk(root: Traversable, prefix: str = "") -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for item in sorted(root.iterdir(), key=lambda t: t.name):
        if item.is_dir():
            if item.name != "__pycache__":
                found.update(_walk(item, f"{prefix}{item.name}/"))
        elif any(item.name.endswith(ext) for ext in MEDIA_TYPES):
            found[prefix + item.name] = item.read_bytes()
    return found


@cache
def assets() -> Assets:
    """The dashboard's files, read once; the version is a hash over all of them."""
    found = _walk(files(PACKAGE))
    digest = hashlib.sha256()
    for path, data in found.items():
        digest.update(path.encode() + b"\0" + hashlib.sha256(data).digest())
    return Assets(found, digest.hexdigest()[:16])


@cache
def shell() -> bytes:
    """The HTML shell with the asset URLs and SRI hashes filled in."""
    a = assets()
    base = f"/assets/{a.version}/"
    modules = sorted(p for p in a.files if p.endswith(".js"))
    preloads = "".join(
        f'<link rel="modulepreload" href="{base}{p}" integrity="{a.integrity(p)}">\n'
        for p in modules
        if p != ENTRY
    )
    template = files(PACKAGE).joinpath(SHELL).read_text()
    return (
        template.replace("{{base}}", base)
        .replace("{{style_sri}}", a.integrity(STYLE))
        .replace("{{entry_sri}}", a.integrity(ENTRY))
        .replace("{{preloads}}", preloads)
        .encode()
    )


@get("/", sync_to_thread=False, include_in_schema=False)
def dashboard_shell() -> Response[bytes]:
    """The dashboard's one page; its modules draw Coop, My account, Log … from the JSON API."""
    return Response(
        shell(),
        media_type="text/html",
        headers={"Cache-Control": "no-cache", "Content-Security-Policy": DASHBOARD_CSP},
    )


@get("/assets/{version:str}/{path:path}", sync_to_thread=False, include_in_schema=False)
def dashboard_asset(version: FromPath[str], path: FromPath[str]) -> Response[bytes]:
    """One file of the dashboard, at the current version only (older URLs: 404)."""
    a = assets()
    name = path.lstrip("/")
    data = a.files.get(name)
    if version != a.version or data is None:
        raise NotFoundException(f"no dashboard asset {version}/{name}")
    media_type = MEDIA_TYPES[name[name.rindex(".") :]]
    return Response(data, media_type=media_type, headers={"Cache-Control": ASSET_CACHE})


def router() -> Router:
    """The dashboard's routes, for the app to mount (no token: the files hold no data)."""
    return Router(path="/", route_handlers=[dashboard_shell, dashboard_asset])
