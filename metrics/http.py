"""Pure-ASGI middleware: every HTTP request counted by route template (`/api/v1/jails/{jail}`, never the raw
path, so addresses and names do not become series), method and status, with its latency."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from metrics import process


class HttpMetrics:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an exception that escaped every handler: the server answers 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")  # set by Starlette's router on a match (the Route, with its template)
            template = getattr(route, "path", None) or "unmatched"
            process.observe_request(template, scope["method"], status, time.perf_counter() - started)
