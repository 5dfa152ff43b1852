"""The operator page: static files shipped in the package, served by the API app.

The page (``ops/static/``) is plain JavaScript with no build step and loads nothing
from anywhere else, so it works on an air-gapped host. It holds no secret: the API
key is typed into the page, kept in the browser's ``sessionStorage`` and sent as
``X-API-Key`` on same-origin requests (and as the first message on ``/events``), so
the page routes are open while every call the page makes is checked as usual.

Only the files named in ``ASSETS`` are served; a name is never joined to a path from
the request, so nothing outside the folder can be reached.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from hedgegrid_ops.ops.errors import ApiError

STATIC_DIR = Path(__file__).parent / "static"
PAGE_ROUTES = ("/", "/ui", "/ui/static/{filename}")

ASSETS = {
    "app.js": "text/javascript",
    "style.css": "text/css",
    "favicon.svg": "image/svg+xml",
}

# The page may only talk to its own origin and run its own files.
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
_HEADERS = {
    "Content-Security-Policy": _CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


async def index(request: web.Request) -> web.StreamResponse:
    resp = web.FileResponse(STATIC_DIR / "index.html", headers=_HEADERS)
    resp.content_type = "text/html"
    return resp


async def asset(request: web.Request) -> web.StreamResponse:
    name = request.match_info["filename"]
    content_type = ASSETS.get(name)
    if content_type is None:
        raise ApiError(404, "not_found", f"no page asset named {name!r}")
    resp = web.FileResponse(STATIC_DIR / name, headers=_HEADERS)
    resp.content_type = content_type
    return resp


def add_page_routes(app: web.Application) -> None:
    """The operator page at / and /ui, and its assets."""
    app.router.add_get("/", index, allow_head=False)
    app.router.add_get("/ui", index, allow_head=False)
    app.router.add_get("/ui/static/{filename}", asset, allow_head=False)
