"""Login, logout and sessions (actions/auth.py does the work and the audit)."""

from __future__ import annotations

import msgspec
from starlette.responses import Response

from actions import auth as actions
from core.roles import Role
from handlers.api import Call, iso, json_response, route
from handlers.security import SESSION_COOKIE, cookie_secure


class LoginRequest(msgspec.Struct, forbid_unknown_fields=True):
    username: str
    password: str


class SessionInfo(msgspec.Struct):
    username: str
    role: str
    expires_at: str | None


async def login(call: Call) -> Response:
    body: LoginRequest = call.body
    session_id, record, user = await actions.login(call.deps, call.actor, body.username, body.password)
    response = json_response(SessionInfo(user["name"], user["role"], iso(record["expires_at"])))
    response.set_cookie(SESSION_COOKIE, session_id, max_age=int(call.deps.store.sessions.lifetime), path="/",
                        httponly=True, samesite="strict", secure=cookie_secure(call.request, call.deps.settings))
    return response


async def logout(call: Call) -> Response:
    await actions.logout(call.deps, call.actor)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response


async def current_session(call: Call) -> SessionInfo:
    actor = call.actor
    assert actor.role is not None
    return SessionInfo(actor.name, actor.role.name, iso(actor.expires_at))


async def end_all_sessions(call: Call) -> dict[str, int]:
    return await actions.logout_everywhere(call.deps, call.actor)


routes = [
    route("POST", "/auth/login", login, None, "Log in: sets the bangui_session cookie.", body=LoginRequest,
          response=SessionInfo, action=actions.login),
    route("POST", "/auth/logout", logout, Role.viewer, "Log out this session.", status=204,
          action=actions.logout),
    route("GET", "/auth/session", current_session, Role.viewer, "Who is logged in.", response=SessionInfo),
    route("DELETE", "/auth/sessions", end_all_sessions, Role.viewer, "Log out everywhere (own user).",
          action=actions.logout_everywhere),
]
