"""The web page: one static, data-free HTML file (login form + views that call the JSON API), plus its
script and stylesheet, all served from this process (no CDN, no build step).

They are public like the login endpoint the page posts to; everything it shows comes from authenticated
API calls made by handlers/web/app.js, which renders server data as text only (never as HTML).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

_DIR = Path(__file__).with_name("web")
_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'")
# URL path -> (file in handlers/web/, media type). A fixed table: nothing else in that folder is served.
_FILES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/style.css": ("style.css", "text/css; charset=utf-8"),
}


def _endpoint(name: str, media_type: str) -> Callable[[Request], Awaitable[Response]]:
    async def serve_file(request: Request) -> Response:
        return Response((_DIR / name).read_bytes(), media_type=media_type,
                        headers={"content-security-policy": _CSP})

    return serve_file


routes = [Route(path, _endpoint(name, media_type), methods=["GET"], name=f"web:{name}")
          for path, (name, media_type) in _FILES.items()]
