"""Who is calling, what they may do, and where they call from.

- Authentication: `Authorization: Bearer bgt_...` (API token) or the `bangui_session` cookie
  (server-side session). Both are one small inline store read; the write that refreshes
  last-seen/last-used happens only every minute or so, in a worker thread.
- Roles: viewer < operator < admin. Every route declares the least role it needs.
- CSRF: a cookie-authenticated unsafe request is refused when the browser says it is cross-origin
  (`Sec-Fetch-Site: cross-site|same-site`, or an `Origin` that differs from our own origin). Requests
  with neither header (curl, scripts) and Bearer requests pass.
- Proxies: `X-Forwarded-For/-Proto/-Host` count only when the TCP peer is in BANGUI_TRUSTED_PROXIES.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import ipaddress
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from starlette.requests import HTTPConnection

from errors import Forbidden
from settings import Settings
from store.base import offload
from store.faults import StorageFull

if TYPE_CHECKING:
    from handlers.deps import Deps

SESSION_COOKIE = "bangui_session"
_UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


class Role(enum.IntEnum):
    viewer = 0
    operator = 1
    admin = 2


@dataclasses.dataclass(frozen=True, slots=True)
class Principal:
    username: str | None  # None for a CLI-made token
    role: Role
    via_cookie: bool
    token_name: str | None = None
    token_id: str | None = None
    session_id: str | None = dataclasses.field(default=None, repr=False)
    expires_at: float | None = None  # the session's absolute end, or the token's expiry

    @property
    def actor(self) -> str:
        return f"token:{self.token_name}" if self.token_name else str(self.username)

    def require(self, role: Role) -> None:
        if self.role < role:
            raise Forbidden(f"this needs the {role.name} role; you have {self.role.name}")


async def authenticate(request: HTTPConnection, deps: Deps) -> Principal | None:
    """The caller, or None when no valid credentials came with the request."""
    store = deps.store
    auth = request.headers.get("authorization")
    if auth is not None:
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer":
            return None
        token = token.strip()
        record = store.tokens.lookup(token)
        if record is None:
            return None
        if store.tokens.needs_touch(record):
            await _touch(store.tokens.touch, token)
        return Principal(record["owner"], Role[record["role"]], False, record["name"], record["id"],
                         expires_at=record["expires_at"])
    session_id = request.cookies.get(SESSION_COOKIE)
    if not session_id:
        return None
    record = store.sessions.lookup(session_id)
    if record is None:
        return None
    if store.sessions.needs_touch(record):
        await _touch(store.sessions.touch, session_id, record)
    return Principal(record["user"], Role[record["role"]], True, session_id=session_id,
                     expires_at=record["expires_at"])


async def _touch(func: Any, *args: Any) -> None:
    """Refresh last-used/idle times; on a full disk reads go on without it (issue 8 item 14)."""
    with contextlib.suppress(StorageFull):
        await offload(func, *args)


@lru_cache(maxsize=64)
def _trusted(peer: str, networks: tuple[str, ...]) -> bool:
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(n) for n in networks)


def _from_trusted_proxy(request: HTTPConnection, settings: Settings) -> bool:
    peer = request.client.host if request.client else ""
    return bool(settings.trusted_proxies) and _trusted(peer, settings.trusted_proxies)


def client_address(request: HTTPConnection, settings: Settings) -> str:
    """The TCP peer, or the nearest untrusted hop of X-Forwarded-For behind a trusted proxy."""
    peer = request.client.host if request.client else "unknown"
    if not _from_trusted_proxy(request, settings):
        return peer
    hops = [h.strip() for h in request.headers.get("x-forwarded-for", "").split(",") if h.strip()]
    for hop in reversed(hops):  # walk back past our own proxies; the first stranger is the client
        if not _trusted(hop, settings.trusted_proxies):
            return hop
    return hops[0] if hops else peer


def request_scheme(request: HTTPConnection, settings: Settings) -> str:
    if _from_trusted_proxy(request, settings):
        forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
        if forwarded in ("http", "https"):
            return forwarded
    return request.url.scheme


def request_origin(request: HTTPConnection, settings: Settings) -> str:
    host = request.headers.get("host", "")
    if _from_trusted_proxy(request, settings):
        host = request.headers.get("x-forwarded-host", host).split(",")[0].strip()
    return f"{request_scheme(request, settings)}://{host}".lower()


def check_csrf(request: HTTPConnection, settings: Settings) -> None:
    if request.scope.get("method") not in _UNSAFE:
        return
    site = request.headers.get("sec-fetch-site", "").lower()
    origin = request.headers.get("origin")
    if site in ("cross-site", "same-site") or (origin is not None and
                                               origin.lower() != request_origin(request, settings)):
        raise Forbidden("cross-origin request refused", code="csrf_rejected")


def cookie_secure(request: HTTPConnection, settings: Settings) -> bool:
    return settings.cookie_secure or request_scheme(request, settings) == "https"
