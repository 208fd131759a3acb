"""The web page: one static, data-free HTML file (login form + views that call the JSON API).

It is public like the login endpoint it posts to; everything it shows comes from authenticated API calls.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

_PAGE = Path(__file__).with_name("web") / "index.html"
_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'")


async def index(request: Request) -> HTMLResponse:
    return HTMLResponse(_PAGE.read_text(encoding="utf-8"), headers={"content-security-policy": _CSP})


routes = [Route("/", index, methods=["GET"])]
