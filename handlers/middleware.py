"""Pure-ASGI middleware: headers every response carries (the web page is same-origin only), and the guard that
refuses to serve from a store file that was deleted or replaced under this process."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from errors import SECURITY_HEADERS, envelope

_HEADERS = [(name.encode(), value.encode()) for name, value in SECURITY_HEADERS.items()]


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    h for h in _HEADERS if h[0] not in present]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class StoreGuard:
    """Every request but liveness gets 503 `store_replaced` once the store file this worker opened was deleted or
    replaced (store/identity.py): serving on would split users, tokens and sessions between two files. One stat
    per CHECK_S at most."""

    CHECK_S = 1.0

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._checked = 0.0
        self._problem: str | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        deps = scope.get("state", {}).get("deps") if scope["type"] == "http" else None
        if deps is not None and not scope["path"].endswith("/health/live"):
            now = time.monotonic()
            if now - self._checked >= self.CHECK_S:
                self._checked, self._problem = now, deps.store.identity_problem()
            if self._problem is not None:
                response = envelope(503, "store_replaced", self._problem)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
