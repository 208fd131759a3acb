"""One error vocabulary: every layer raises `AppError` (or a subclass); the edge renders each as
`{"error": {"code": "...", "message": "...", "details": {...}}}` (handlers/errors.py).

An error says WHAT went wrong: its kind (the classes below: not found, conflict, unavailable, ...) and its code.
Layers below the edge subclass a kind (`f2b.client.JailNotFound` is a `NotFound`, `store.faults.StorageFull` a
`NoSpace`) and never name an HTTP status. `STATUS` is the one table from kind to status: the edge answers with it,
and the audit (actions/base.py, which also runs for the CLI and jobs) records the same status.
"""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, details: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details or {}
        self.headers = headers or {}

    @property
    def status(self) -> int:
        """The HTTP status of this error's kind (`STATUS`)."""
        return next(STATUS[kind] for kind in type(self).__mro__ if kind in STATUS)


class InvalidInput(AppError):
    code = "invalid_request"


class Unauthorized(AppError):
    code = "unauthorized"

    def __init__(self, message: str = "log in or send 'Authorization: Bearer <token>'", **kw: Any) -> None:
        kw.setdefault("headers", {"WWW-Authenticate": 'Bearer realm="bangui"'})
        super().__init__(message, **kw)


class Forbidden(AppError):
    code = "forbidden"


class NotFound(AppError):
    code = "not_found"


class RequestTimeout(AppError):
    """The client stopped sending its request."""

    code = "request_timeout"


class Conflict(AppError):
    code = "conflict"


class PreconditionFailed(AppError):
    """The caller's precondition (an If-Match) no longer holds."""

    code = "precondition_failed"


class TooLarge(AppError):
    code = "body_too_large"


class Rejected(AppError):
    """Well-formed, but refused for what it says (fail2ban rejects a configuration, a change did not apply)."""

    code = "rejected"


class RateLimited(AppError):
    code = "rate_limited"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message, details={"retry_after_s": retry_after},
                         headers={"Retry-After": str(retry_after)})


class Failed(AppError):
    """Something of ours failed (the details are in the server log, never in the answer)."""

    code = "internal_error"


class UpstreamFailed(AppError):
    """fail2ban answered with an error bangui did not expect."""

    code = "upstream_error"


class Unavailable(AppError):
    code = "unavailable"


class NoAnswer(AppError):
    """Something bangui waits on (another host, fail2ban's configuration readers) did not answer in time."""

    code = "no_answer"


class NoSpace(AppError):
    """The data dir's disk is full."""

    code = "storage_full"


# The one table from an error's kind to its HTTP status (a subclass takes its nearest kind's).
STATUS: dict[type[AppError], int] = {
    AppError: 400, InvalidInput: 400, Unauthorized: 401, Forbidden: 403, NotFound: 404, RequestTimeout: 408,
    Conflict: 409, PreconditionFailed: 412, TooLarge: 413, Rejected: 422, RateLimited: 429, Failed: 500,
    UpstreamFailed: 502, Unavailable: 503, NoAnswer: 504, NoSpace: 507,
}


def portable(exc: AppError) -> dict[str, Any]:
    """An error as plain data, for another process of the fleet (fleet/rpc.py): `revived` makes it again."""
    return {"status": exc.status, "code": exc.code, "message": exc.message}


def revived(data: dict[str, Any], **details: Any) -> AppError:
    """The error `portable` described (its kind from its status), with `details` (e.g. which host answered)."""
    kind = next((k for k, status in STATUS.items() if status == data.get("status") and k is not AppError), AppError)
    error = kind.__new__(kind)  # a kind's own constructor may take other arguments (RateLimited)
    AppError.__init__(error, data["message"], code=data["code"], details=details)
    return error
