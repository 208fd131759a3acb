"""Login, logout and sessions. Failed logins are rate limited across all processes and each one
writes one stable log line for fail2ban (contrib/fail2ban/filter.d/bangui-auth.conf):

    bangui login failed: client=<address> user=<json-quoted name> reason=<bad_credentials|rate_limited>
"""

from __future__ import annotations

import json
import logging

import msgspec
from starlette.responses import Response

from errors import RateLimited, Unauthorized
from handlers.api import Call, iso, json_response, route
from handlers.security import SESSION_COOKIE, Role, client_address, cookie_secure
from store.base import offload

log = logging.getLogger("bangui.auth")


class LoginRequest(msgspec.Struct, forbid_unknown_fields=True):
    username: str
    password: str


class SessionInfo(msgspec.Struct):
    username: str
    role: str
    expires_at: str | None


def _log_failure(client: str, username: str, reason: str) -> None:
    # json.dumps quotes and escapes the user-controlled name, so it cannot forge a client= field.
    log.warning("bangui login failed: client=%s user=%s reason=%s", client, json.dumps(username[:64]),
                reason)


async def login(call: Call) -> Response:
    body: LoginRequest = call.body
    store, settings = call.deps.store, call.deps.settings
    client = client_address(call.request, settings)
    retry_after = await offload(store.login_limiter.reserve, client, body.username)
    if retry_after:
        _log_failure(client, body.username, "rate_limited")
        raise RateLimited(f"too many failed logins; retry in {retry_after} s", retry_after)
    user = await offload(store.users.verify, body.username, body.password)
    if user is None:
        _log_failure(client, body.username, "bad_credentials")
        raise Unauthorized("wrong username or password", code="invalid_credentials")
    await offload(store.login_limiter.succeeded, client, body.username)
    session_id, record = await offload(store.sessions.create, user["name"], user["role"], client)
    info = SessionInfo(user["name"], user["role"], iso(record["expires_at"]))
    response = json_response(info)
    response.set_cookie(SESSION_COOKIE, session_id, max_age=int(store.sessions.lifetime), path="/",
                        httponly=True, samesite="strict", secure=cookie_secure(call.request, settings))
    log.info("login: user=%s client=%s", user["name"], client)
    return response


async def logout(call: Call) -> Response:
    assert call.principal is not None
    if call.principal.session_id:
        await offload(call.deps.store.sessions.delete, call.principal.session_id)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response


async def current_session(call: Call) -> SessionInfo:
    principal = call.principal
    assert principal is not None
    return SessionInfo(principal.actor, principal.role.name, iso(principal.expires_at))


async def end_all_sessions(call: Call) -> dict[str, int]:
    principal = call.principal
    assert principal is not None
    if principal.username is None:
        raise Unauthorized("a CLI token belongs to no user and has no sessions")
    ended = await offload(call.deps.store.sessions.end_all, principal.username)
    return {"ended": ended}


routes = [
    route("POST", "/auth/login", login, None, "Log in: sets the bangui_session cookie.", body=LoginRequest,
          response=SessionInfo),
    route("POST", "/auth/logout", logout, Role.viewer, "Log out this session.", status=204),
    route("GET", "/auth/session", current_session, Role.viewer, "Who is logged in.", response=SessionInfo),
    route("DELETE", "/auth/sessions", end_all_sessions, Role.viewer, "Log out everywhere (own user)."),
]
