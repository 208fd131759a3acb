"""The web page: one static, data-free HTML file (login form + views that call the JSON API), plus its
script modules, stylesheet and map data, all served from this process (no CDN, no build step).

They are public like the login endpoint the page posts to; everything it shows comes from authenticated
API calls made by the page's scripts, which render server data as text only (never as HTML).

Caching without a build step: when this module is imported, every asset of handlers/web/ gets a name with
its content hash (`/assets/app.3f2a9c1b7d.js`); a module's imports of sibling modules are rewritten to
those names first, so a change anywhere changes the name of everything that imports it. Versioned names
are cached for a year (`immutable`); the page itself (`/`) is revalidated on every load (`no-cache` + ETag),
so a new version is picked up at once. Every body is gzipped once, here, and kept in memory.

The page comes in two variants: with `data-session="1"` on <html> when the browser sent a session cookie. Only
then does the page ask "am I logged in?", so a logged-out load makes no request that answers 401 (a console error
in every browser). The cookie's presence is a hint, never trusted: the API decides.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import re
from collections.abc import Awaitable, Callable
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from handlers.security import SESSION_COOKIE

_DIR = Path(__file__).with_name("web")
# No inline script or style anywhere: scripts and styles come only from this origin's files.
_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
_IMPORT = re.compile(r"""(\bfrom\s+|\bimport\s+|\bimport\()'\./([\w-]+\.js)'""")
_STATIC_IMPORT = re.compile(r"""(?:\bfrom\s+|\bimport\s+)'\./([\w-]+\.js)'""")
LONG_CACHE = "public, max-age=31536000, immutable"
PAGE_CACHE = "no-cache"


@dataclasses.dataclass(frozen=True)
class Asset:
    url: str
    body: bytes
    gzipped: bytes
    media_type: str
    etag: str  # of the identity body; the gzipped one is etag + "-gz" (a different representation)
    cache_control: str


def _make(url: str, body: bytes, media_type: str, cache_control: str) -> Asset:
    digest = hashlib.sha256(body).hexdigest()[:16]
    return Asset(url, body, gzip.compress(body, 9, mtime=0), media_type, f'"{digest}"', cache_control)


def _build(folder: Path) -> tuple[Asset, dict[str, Asset]]:
    """(the page, {versioned URL: asset}) for every .js/.css file of the folder."""
    sources = {p.name: p.read_text(encoding="utf-8") for p in sorted(folder.iterdir()) if p.suffix in _TYPES}
    urls: dict[str, str] = {}  # file name -> versioned URL
    assets: dict[str, Asset] = {}

    def versioned(name: str, stack: tuple[str, ...] = ()) -> str:
        if name in urls:
            return urls[name]
        if name not in sources:
            raise RuntimeError(f"handlers/web/{stack[-1]} imports ./{name}, which does not exist")
        if name in stack:
            raise RuntimeError(f"import cycle between the page's modules: {' -> '.join((*stack, name))}")
        text = _IMPORT.sub(lambda m: m.group(1) + "'" + versioned(m.group(2), (*stack, name)).replace(
            "/assets/", "./") + "'", sources[name])
        body = text.encode()
        stem, ext = name.rsplit(".", 1)
        url = f"/assets/{stem}.{hashlib.sha256(body).hexdigest()[:10]}.{ext}"
        assets[url] = _make(url, body, _TYPES["." + ext], LONG_CACHE)
        urls[name] = url
        return url

    for name in sources:
        versioned(name)
    page = (folder / "index.html").read_text(encoding="utf-8")
    # the page names its entry points as /assets/<file>; each becomes its versioned URL, and every module
    # is preloaded so the browser fetches the whole graph at once instead of import by import
    entries = set(re.findall(r"/assets/([\w-]+\.js)", page))
    page = re.sub(r"/assets/([\w-]+\.(?:js|css))", lambda m: urls[m.group(1)], page)
    # modules only imported with import('./x.js') (views opened later) are fetched when first opened
    static = _statically_imported(sources, entries)
    preload = "".join(f'<link rel="modulepreload" href="{url}">\n' for name, url in sorted(urls.items())
                      if name in static and url not in page)
    page = page.replace("</head>", preload + "</head>")
    return _make("/", page.encode(), "text/html; charset=utf-8", PAGE_CACHE), assets


def _statically_imported(sources: dict[str, str], entries: set[str]) -> set[str]:
    """The modules the entry points reach through static imports (`import ... from './x.js'`)."""
    seen: set[str] = set()
    todo = list(entries)
    while todo:
        name = todo.pop()
        if name not in seen and name in sources:
            seen.add(name)
            todo.extend(_STATIC_IMPORT.findall(sources[name]))
    return seen


PAGE, ASSETS = _build(_DIR)
PAGE_WITH_SESSION = _make("/", PAGE.body.replace(b'<html lang="en">', b'<html lang="en" data-session="1">', 1),
                          PAGE.media_type, PAGE_CACHE)


def _accepts_gzip(request: Request) -> bool:
    for item in request.headers.get("accept-encoding", "").split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip().lower() in ("gzip", "*"):
            return params.replace(" ", "") not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


def respond(request: Request, asset: Asset) -> Response:
    zipped = _accepts_gzip(request)
    etag = asset.etag[:-1] + '-gz"' if zipped else asset.etag
    headers = {"content-security-policy": _CSP, "cache-control": asset.cache_control, "etag": etag,
               "vary": "accept-encoding, cookie" if asset.url == "/" else "accept-encoding"}
    candidates = [t.strip().removeprefix("W/") for t in request.headers.get("if-none-match", "").split(",")]
    if etag in candidates or "*" in candidates:
        return Response(status_code=304, headers=headers)
    if zipped:
        headers["content-encoding"] = "gzip"
    return Response(asset.gzipped if zipped else asset.body, media_type=asset.media_type, headers=headers)


async def serve_page(request: Request) -> Response:
    return respond(request, PAGE_WITH_SESSION if request.cookies.get(SESSION_COOKIE) else PAGE)


def _endpoint(asset: Asset) -> Callable[[Request], Awaitable[Response]]:
    async def serve_asset(request: Request) -> Response:
        return respond(request, asset)

    return serve_asset


routes = [Route("/", serve_page, methods=["GET", "HEAD"], name="web:page")]
routes += [Route(url, _endpoint(asset), methods=["GET", "HEAD"], name=f"web:{url}") for url, asset in ASSETS.items()]
