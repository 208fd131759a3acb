"""One error vocabulary: every layer raises `AppError` (or a subclass); the edge renders each as
`{"error": {"code": "...", "message": "...", "details": {...}}}` (handlers/errors.py).
"""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None,
                 details: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.details = details or {}
        self.headers = headers or {}


class InvalidInput(AppError):
    status, code = 400, "invalid_request"


class Unauthorized(AppError):
    status, code = 401, "unauthorized"

    def __init__(self, message: str = "log in or send 'Authorization: Bearer <token>'", **kw: Any) -> None:
        kw.setdefault("headers", {"WWW-Authenticate": 'Bearer realm="bangui"'})
        super().__init__(message, **kw)


class Forbidden(AppError):
    status, code = 403, "forbidden"


class NotFound(AppError):
    status, code = 404, "not_found"


class Conflict(AppError):
    status, code = 409, "conflict"


class RateLimited(AppError):
    status, code = 429, "rate_limited"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message, details={"retry_after_s": retry_after},
                         headers={"Retry-After": str(retry_after)})


class Unavailable(AppError):
    status, code = 503, "unavailable"
