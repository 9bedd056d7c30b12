"""The web console: a static shell (HTML, JavaScript, CSS) that calls the JSON API from the browser.

Why this design (docs/console.md): a browser cannot send ``Authorization: Bearer`` when it follows a link, and a
cookie would open a CSRF surface. So the shell holds no data at all and is served without the token at
``GET /console`` (and ``/console/<asset>``); the page asks for the API token once, keeps it in the tab's
``sessionStorage`` and sends it as the bearer header on every JSON call, exactly like curl. Every piece of data
still needs the token; nothing a browser sends by itself (cookies, Basic credentials) is accepted, so a foreign
page cannot act on the user's behalf.

The shell is the same for every deployment and public in the repository. It is kept safe from hostile order data
by the page (values are written with ``textContent``, never parsed as HTML) and by the headers set here: a strict
Content-Security-Policy (scripts and styles from this origin only, no inline script, no framing), ``nosniff`` and
no referrer.

The files are package data of the core layer, read with importlib.resources, so the deployed ApiFunction and
``make serve`` serve the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

PREFIX = "/console"

# Every file the console consists of: its name under static/ and its content type. Nothing else is served.
ASSETS: dict[str, tuple[str, str]] = {
    "": ("index.html", "text/html; charset=utf-8"),
    "console.js": ("console.js", "text/javascript; charset=utf-8"),
    "console.css": ("console.css", "text/css; charset=utf-8"),
    "i18n.js": ("i18n.js", "text/javascript; charset=utf-8"),
}

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    "connect-src 'self'",
    "form-action 'none'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
])

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    # The shell changes with each deployment and is tiny: never serve a stale one next to a newer API.
    "Cache-Control": "no-cache",
}


@dataclass(frozen=True)
class Asset:
    status: int
    content_type: str
    body: str


def is_console_path(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


@cache
def _read(name: str) -> str:
    return resources.files(__package__).joinpath("static", name).read_text(encoding="utf-8")


def console_asset(method: str, path: str) -> Asset:
    """The answer to ``method path`` under ``/console``: a file of the shell, or 404/405 (no data in either)."""
    if method not in ("GET", "HEAD"):
        return Asset(405, "text/plain; charset=utf-8", "method not allowed\n")
    name = path[len(PREFIX):].strip("/")
    known = ASSETS.get(name)
    if known is None:
        return Asset(404, "text/plain; charset=utf-8", "not found\n")
    file_name, content_type = known
    return Asset(200, content_type, _read(file_name))


def console_response(method: str, path: str) -> dict[str, Any]:
    """A finished API Gateway (payload 2.0) answer for a console path, with the security headers."""
    asset = console_asset(method, path)
    headers = {"Content-Type": asset.content_type, **SECURITY_HEADERS}
    if asset.status == 405:
        headers["Allow"] = "GET, HEAD"
    return {"statusCode": asset.status, "headers": headers, "body": asset.body, "isBase64Encoded": False}
