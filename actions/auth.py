"""Login, logout, log out everywhere, and first-run setup.

Failed logins are rate limited across all processes (store/ratelimit.py) and each one writes one
stable log line for fail2ban (contrib/fail2ban/filter.d/bangui-auth.conf):

    bangui login failed: client=<address> user=<json-quoted name> reason=<bad_credentials|rate_limited>
"""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import Any

from actions.base import Act, action
from core.roles import Role
from errors import Forbidden, RateLimited, Unauthorized
from store import setup as first_start
from store.base import offload, offload_heavy
from store.tokens import cli_owned
from store.users import user_fields

log = logging.getLogger("bangui.auth")


def _log_failure(client: str, username: str, reason: str) -> None:
    # json.dumps quotes and escapes the user-controlled name, so it cannot forge a client= field.
    log.warning("bangui login failed: client=%s user=%s reason=%s", client, json.dumps(username[:64]),
                reason)


@action("auth.login", None, target="username")
async def login(act: Act, username: str, password: str) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(session id, session record, user) for a right password; 401/429 otherwise."""
    store, client = act.deps.store, act.actor.source_ip or "unknown"
    retry_after = await offload(store.login_limiter.reserve, client, username)
    if retry_after:
        _log_failure(client, username, "rate_limited")
        raise RateLimited(f"too many failed logins; retry in {retry_after} s", retry_after)
    user = await offload_heavy(store.users.verify, username, password)
    if user is None:
        _log_failure(client, username, "bad_credentials")
        raise Unauthorized("wrong username or password", code="invalid_credentials")
    await offload(store.login_limiter.succeeded, client, username)
    session_id, record = await offload(store.sessions.create, user, client)
    # Audited as the user who logged in (the caller was anonymous until now).
    act.actor = dataclasses.replace(act.actor, name=user["name"], role=Role[user["role"]], via="cookie",
                                    user=user["name"])
    log.info("login: user=%s client=%s", user["name"], client)
    return session_id, record, user


@action("auth.logout", Role.viewer)
async def logout(act: Act) -> None:
    act.status = 204
    if act.actor.session_id:
        await offload(act.deps.store.sessions.delete, act.actor.session_id)


@action("auth.logout_everywhere", Role.viewer)
async def logout_everywhere(act: Act) -> dict[str, int]:
    """End every session of the caller's user (a CLI-owned token's owner has none: 0). From a session, or an
    admin-role token: a viewer token of an admin once ended the admin's sessions everywhere (issue 18)."""
    actor = act.actor
    if actor.via == "token" and actor.role is not Role.admin:
        raise Forbidden("a token may end only itself (DELETE /tokens/{its id}); ending its owner's sessions "
                        "needs a session or an admin-role token", code="token_cannot_end_sessions")
    user = actor.user
    ended = 0 if user is None or cli_owned(user) else await offload(act.deps.store.sessions.end_all, user)
    act.details["ended"] = ended
    return {"ended": ended}


@action("setup.complete", None, target="username")
async def complete_setup(act: Act, setup_token: str, username: str, password: str) -> dict[str, Any]:
    act.status = 201
    user = await offload_heavy(first_start.complete, act.deps.store, setup_token, username, password)
    return user_fields(user)
