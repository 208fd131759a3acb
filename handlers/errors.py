"""The edge's rendering of every error: `{"error": {"code": "...", "message": "...", "details": {...}}}`.

`app.py` installs `render_error` for the vocabulary's `AppError` (errors.py), for Starlette's own HTTPException
(router 404/405), for the storage faults (store/faults.py) and for anything unexpected, which is logged with its
traceback and answered with a bare 500 that leaks no exception text. A client that disconnects before its request
is complete is not an error: counted as 499, nothing logged.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from errors import AppError
from store.faults import translated

log = logging.getLogger("bangui.errors")


def allowed_methods(request: Request) -> list[str]:
    """Every method of every route on this path (Starlette's own 405 names only the first route's)."""
    from starlette.routing import Match

    methods: set[str] = set()
    for route in getattr(request.app, "routes", []):
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods.update(getattr(route, "methods", None) or ())
    return sorted(methods)


def exception_handlers() -> dict[Any, Any]:
    """What app.py installs: everything below `Exception` is rendered inside the middleware stack (security
    headers, no re-raise); `Exception` itself by Starlette's outermost ServerErrorMiddleware."""
    import sqlite3

    import diskcache

    return {cls: render_error for cls in (AppError, HTTPException, ExceptionGroup, diskcache.Timeout,
                                          sqlite3.Error, OSError, ClientDisconnect, Exception)}


# nginx's "client closed request": what the metrics and the access log count for a client that went away before
# its request was complete (nobody receives the response). Not a server error (issue 18).
CLIENT_CLOSED = 499

_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large", 400: "bad_request"}


def envelope(status: int, code: str, message: str, details: dict[str, Any] | None = None,
             headers: dict[str, str] | None = None) -> Response:
    body = {"error": {"code": code, "message": message, "details": details or {}}}
    return JSONResponse(body, status_code=status, headers=headers)


# Every response carries these (handlers/middleware.py adds them; errors rendered outside it, the 500s of
# Starlette's outermost ServerErrorMiddleware, add them here).
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cache-control": "no-store",
}


def first_app_error(exc: BaseException) -> AppError | None:
    """The first AppError inside (nested) exception groups: a task group wraps a handler's 404/503."""
    if isinstance(exc, AppError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = first_app_error(inner)
            if found is not None:
                return found
    return None


async def render_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, BaseExceptionGroup):
        exc = first_app_error(exc) or exc
    if isinstance(exc, ClientDisconnect):  # the client aborted its request (e.g. mid-body): nothing to log
        log.debug("client went away during %s %s", request.method, request.url.path)
        return Response(status_code=CLIENT_CLOSED)
    exc = translated(exc) or exc
    if isinstance(exc, AppError):
        return envelope(exc.status, exc.code, exc.message, exc.details, exc.headers)
    if isinstance(exc, HTTPException):
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        if exc.status_code == 404:
            message = f"no route for {request.url.path}"
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
            headers["Allow"] = ", ".join(allowed_methods(request)) or headers.get("Allow", "")
        return envelope(exc.status_code, code, message, headers=headers or None)
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return envelope(500, "internal_error", "internal error; the server log has the details",
                    headers=SECURITY_HEADERS)
