"""API tokens: created by a user or a token (role capped at the caller's), listed without secrets.
Non-admins see and revoke only their owner's tokens that do not exceed their role (actions/tokens.py)."""

from __future__ import annotations

from typing import Any

import msgspec

from actions import tokens as actions
from core.roles import Role
from handlers.api import Call, iso, route
from store.base import offload
from store.tokens import token_fields


class NewToken(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    role: str
    expires_in_days: int | None = None


def shown_token(record: dict[str, Any]) -> dict[str, Any]:
    """A token's fields with API times."""
    return dict(token_fields(record), created=iso(record["created"]), expires_at=iso(record["expires_at"]),
                last_used=iso(record["last_used"]))


async def create_token(call: Call) -> dict[str, Any]:
    body: NewToken = call.body
    token, record = await actions.create_token(call.deps, call.actor, body.name, body.role,
                                               body.expires_in_days)
    return dict(shown_token(record), token=token)


async def list_tokens(call: Call) -> dict[str, Any]:
    records = await offload(call.deps.store.tokens.list)
    return {"tokens": [shown_token(r) for r in actions.visible_tokens(call.actor, records)]}


async def revoke_token(call: Call) -> None:
    await actions.revoke_token(call.deps, call.actor, call.param("id"))


routes = [
    route("POST", "/tokens", create_token, Role.viewer, "Create an API token (shown once).", body=NewToken,
          status=201, action=actions.create_token),
    route("GET", "/tokens", list_tokens, Role.viewer, "List tokens (yours; all for admins), no secrets."),
    route("DELETE", "/tokens/{id}", revoke_token, Role.viewer, "Revoke a token.", status=204,
          action=actions.revoke_token),
]
