"""Pure-ASGI middleware: what every request and response gets (request id, security headers, metrics, access log),
the API's compression, and the guard that refuses to serve from a store file that was deleted or replaced under
this process."""

from __future__ import annotations

import logging
import re
import secrets
import time

from starlette.middleware.gzip import GZipMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import logs
from handlers.errors import SECURITY_HEADERS, envelope
from handlers.security import _trusted
from metrics import process

_HEADERS = [(name.encode(), value.encode()) for name, value in SECURITY_HEADERS.items()]


class StoreGuard:
    """Every request but liveness gets 503 `store_replaced` once the store file this worker opened was deleted or
    replaced (store/identity.py): serving on would split users, tokens and sessions between two files. One stat
    per request (~1 us, against ~300 us for the request)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        deps = scope.get("state", {}).get("deps") if scope["type"] == "http" else None
        if deps is not None and not scope["path"].endswith("/health/live"):
            problem = deps.store.identity_problem()
            if problem is not None:
                response = envelope(503, "store_replaced", problem)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


access_log = logging.getLogger("bangui.access")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}$")


class Edge:
    """What every HTTP request and response gets, in one layer with one send wrapper (a layer per concern cost a
    coroutine frame and a closure per message: ~10% of a ban's CPU, issue 13):

    - a request id, echoed in `X-Request-Id` and carried by every log line of the request (a context variable read
      by logs.JsonFormatter). A client's `X-Request-Id` is taken only from a trusted proxy (BANGUI_TRUSTED_PROXIES)
      and only when it is short and plain; otherwise bangui makes one (16 hex digits);
    - the security headers (the web page is same-origin only), unless the response set its own;
    - its metrics: counted by route template (`/api/v1/jails/{jail}`, never the raw path, so addresses and names
      do not become series), method and status, with its latency (metrics/process.py);
    - with BANGUI_LOG_LEVEL=debug, one access line (method, path, status, duration).
    """

    def __init__(self, app: ASGIApp, trusted_proxies: tuple[str, ...] = ()) -> None:
        self.app = app
        self.trusted_proxies = trusted_proxies

    def _incoming(self, scope: Scope) -> str | None:
        client = scope.get("client")
        if not self.trusted_proxies or not client or not _trusted(client[0], self.trusted_proxies):
            return None
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                text = value.decode("latin-1").strip()
                return text if _REQUEST_ID.match(text) else None
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = self._incoming(scope) or secrets.token_hex(8)
        own = (b"x-request-id", rid.encode("latin-1"))
        id_token, actor_token = logs.request_id.set(rid), logs.actor.set(None)
        status = 500  # an exception that escaped every handler: the server answers 500
        started = time.perf_counter()

        async def send_edge(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                headers += [h for h in _HEADERS if h[0] not in present]
                headers.append(own)
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_edge)
        finally:
            seconds = time.perf_counter() - started
            route = scope.get("route")  # set by Starlette's router on a match (the Route, with its template)
            process.observe_request(getattr(route, "path", None) or "unmatched", scope["method"], status, seconds)
            if access_log.isEnabledFor(logging.DEBUG):
                access_log.debug("%s %s %d %.1fms", scope["method"], scope["path"], status, seconds * 1000)
            logs.request_id.reset(id_token)
            logs.actor.reset(actor_token)


def accepts_gzip(headers: list[tuple[bytes, bytes]]) -> bool:
    """Does the request's Accept-Encoding allow gzip (`gzip;q=0` refuses it: Starlette's own check does not see the
    q-value)?"""
    for name, value in headers:
        if name == b"accept-encoding":
            for item in value.decode("latin-1").split(","):
                coding, _, params = item.strip().partition(";")
                if coding.strip().lower() in ("gzip", "*"):
                    return params.replace(" ", "") not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


class ApiCompression:
    """Answers over 1 KB of the API (and of CrowdSec's LAPI) gzip-compressed for a client that accepts it
    (issue 23 item 9), by Starlette's GZipMiddleware: it leaves text/event-stream alone (the log stream is never
    buffered) and flushes each chunk of other streamed answers (CSV). The web page's assets are compressed once
    at start by handlers/web.py, with their own validators: not again here. Level 6, zlib's default: about half the
    CPU of Starlette's 9 for a few % more bytes."""

    PREFIXES = ("/api/", "/v1/")

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.gzip = GZipMiddleware(app, minimum_size=1024, compresslevel=6)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(self.PREFIXES) and accepts_gzip(scope["headers"]):
            await self.gzip(scope, receive, send)
        else:
            await self.app(scope, receive, send)
