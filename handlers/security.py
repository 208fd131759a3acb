"""Who is calling, what they may do, and where they call from.

- Authentication: `Authorization: Bearer bgt_...` (API token) or the `bangui_session` cookie
  (server-side session). Both are one small inline store read (in fleet mode: Redis, in a worker thread
  with a deadline, then this host's replica); the write that refreshes last-seen/last-used happens only
  every minute or so, in a worker thread.
- Roles: viewer < operator < admin. Every route declares the least role it needs.
- CSRF: an unsafe request without a Bearer token (cookie-authenticated, or login/setup) is refused
  when the browser says it is cross-origin (`Sec-Fetch-Site: cross-site|same-site`, or an `Origin`
  that differs from our own origin). Requests with neither header (curl, scripts) and Bearer
  requests pass.
- Proxies: `X-Forwarded-For/-Proto/-Host` count only when the TCP peer is in BANGUI_TRUSTED_PROXIES.
"""

from __future__ import annotations

import contextlib
import ipaddress
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from starlette.requests import HTTPConnection

from core.actor import Actor, anonymous
from core.roles import Role
from errors import Forbidden
from settings import Settings
from store.base import offload
from store.faults import StorageFull
from store.redis_backend import FleetUnavailable

if TYPE_CHECKING:
    from core.deps import Deps

SESSION_COOKIE = "bangui_session"
_UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


async def authenticate(request: HTTPConnection, deps: Deps) -> Actor:
    """The caller: a user (cookie), a token (Bearer), or anonymous (role None) when no valid
    credentials came with the request. Two small inline reads: the credential and its user's live
    record (role, uid, password generation; see store/users.py)."""
    store = deps.store
    source = client_address(request, deps.settings)
    auth = request.headers.get("authorization")
    if auth is not None:
        scheme, _, token = auth.partition(" ")
        record = await _lookup(store, "token", token.strip()) if scheme.lower() == "bearer" else None
        if record is None:
            return anonymous(source)
        if store.tokens.needs_touch(record):
            await _touch(store.tokens.touch, token.strip())
        return Actor(f"token:{record['name']}", Role[record["role"]], "token", source, user=record["owner"],
                     token_id=record["id"], expires_at=record["expires_at"])
    session_id = request.cookies.get(SESSION_COOKIE)
    record = await _lookup(store, "session", session_id) if session_id else None
    if record is None or session_id is None:
        return anonymous(source)
    if store.sessions.needs_touch(record):
        await _touch(store.sessions.touch, session_id, record)
    return Actor(record["user"], Role[record["role"]], "cookie", source, user=record["user"],
                 session_id=session_id, expires_at=record["expires_at"])


async def _lookup(store: Any, kind: str, credential: str) -> dict[str, Any] | None:
    """One small inline read on this host's store; in fleet mode a thread with a deadline, then the host's replica
    of the fleet's identity (store/fleet_cache.py): a slow Redis must not hold every request of this worker."""
    remote = store.tokens.lookup if kind == "token" else store.sessions.lookup
    if store.replica is None:
        record: dict[str, Any] | None = remote(credential)
        return record
    from store.fleet_cache import lookup

    local = store.replica.lookup_token if kind == "token" else store.replica.lookup_session
    return await lookup(remote, local, credential)


async def _touch(func: Any, *args: Any) -> None:
    """Refresh last-used/idle times; on a full disk reads go on without it (issue 8 item 14)."""
    with contextlib.suppress(StorageFull, FleetUnavailable):  # FleetUnavailable: the fleet store is away or slow
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
    """Refuse an unsafe request that a browser says comes from another site. Applied to every unsafe
    request that carries no Bearer token: cookie-authenticated ones, and login and setup, where a
    cross-site form would otherwise log the victim's browser into the attacker's account."""
    if request.scope.get("method") not in _UNSAFE:
        return
    site = request.headers.get("sec-fetch-site", "").lower()
    origin = request.headers.get("origin")
    if site in ("cross-site", "same-site") or (origin is not None and
                                               origin.lower() != request_origin(request, settings)):
        raise Forbidden("cross-origin request refused", code="csrf_rejected")


def cookie_secure(request: HTTPConnection, settings: Settings) -> bool:
    return settings.cookie_secure or request_scheme(request, settings) == "https"
