"""API tokens: created by a logged-in user (role capped at their own), listed without secrets."""

from __future__ import annotations

from typing import Any

import msgspec

from errors import Forbidden, NotFound
from handlers.api import Call, iso, route
from handlers.security import Role
from store.base import offload
from store.tokens import public


class NewToken(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    role: str
    expires_in_days: int | None = None


def _shown(record: dict[str, Any]) -> dict[str, Any]:
    return dict(public(record), created=iso(record["created"]), expires_at=iso(record["expires_at"]),
                last_used=iso(record["last_used"]))


async def create_token(call: Call) -> dict[str, Any]:
    body: NewToken = call.body
    principal = call.principal
    assert principal is not None
    if body.role in Role.__members__ and Role[body.role] > principal.role:
        raise Forbidden(f"a token's role cannot exceed yours ({principal.role.name})")
    token, record = await offload(call.deps.store.tokens.create, body.name, body.role, principal.username,
                                  body.expires_in_days)
    return dict(_shown(record), token=token)


async def list_tokens(call: Call) -> dict[str, Any]:
    principal = call.principal
    assert principal is not None
    everyone = principal.role is Role.admin
    records = await offload(call.deps.store.tokens.list, principal.username, everyone)
    return {"tokens": [_shown(r) for r in records]}


async def revoke_token(call: Call) -> None:
    principal = call.principal
    assert principal is not None
    store = call.deps.store
    token_id = call.param("id")
    if principal.role is not Role.admin:
        mine = await offload(store.tokens.list, principal.username, False)
        if all(t["id"] != token_id for t in mine):
            raise NotFound(f"no token with id {token_id!r}", code="token_not_found")
    await offload(store.tokens.revoke, token_id)


routes = [
    route("POST", "/tokens", create_token, Role.viewer, "Create an API token (shown once).", body=NewToken,
          status=201),
    route("GET", "/tokens", list_tokens, Role.viewer, "List tokens (yours; all for admins), no secrets."),
    route("DELETE", "/tokens/{id}", revoke_token, Role.viewer, "Revoke a token.", status=204),
]
