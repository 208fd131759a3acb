"""API tokens: create and revoke.

A token belongs to the user who made it (a token made with a token belongs to the same owner), or to
`cli:<os user>` when made with the CLI. Its role never exceeds its maker's. Seeing: admins see every
token; others the tokens of their own owner whose role does not exceed theirs. Revoking: a token may
always revoke itself; revoking another token needs an admin role, or a session of the owner (a leaked
viewer token of an admin must not end that admin's other credentials, issue 18); a token of another
owner stays unseen (404).
"""

from __future__ import annotations

from typing import Any

from actions.base import Act, action
from core.actor import Actor
from core.roles import TOKEN_ROLE_NAMES, Role, parse_role
from errors import Forbidden, NotFound, Unauthorized
from store.base import offload
from store.tokens import cli_owned


def may_manage(actor: Actor, record: dict[str, Any]) -> bool:
    if actor.role is Role.admin:
        return True
    return (actor.user is not None and record["owner"] == actor.user and actor.role is not None
            and Role[record["role"]] <= actor.role)


def may_revoke(actor: Actor, record: dict[str, Any]) -> bool:
    if actor.token_id is not None and record["id"] == actor.token_id:
        return True  # ending oneself takes no privilege
    return may_manage(actor, record) and (actor.role is Role.admin or actor.via != "token")


@action("token.create", Role.viewer, target="name")
async def create_token(act: Act, name: str, role: str, expires_in_days: int | None = None,
                       ) -> tuple[str, dict[str, Any]]:
    actor, store = act.actor, act.deps.store
    act.details.update(role=role, expires_in_days=expires_in_days)
    assert actor.role is not None  # authorised above
    if parse_role(role, TOKEN_ROLE_NAMES) > actor.role:
        raise Forbidden(f"a token's role cannot exceed yours ({actor.role.name})")
    if actor.user is None:
        raise Unauthorized("this credential belongs to no user")
    owner_uid = None
    if not cli_owned(actor.user):
        user = await offload(store.users.get, actor.user)
        if user is None:
            raise Unauthorized("your user no longer exists")
        owner_uid = user["uid"]
    act.status = 201
    token, record = await offload(store.tokens.create, name, role, actor.user, owner_uid, expires_in_days)
    act.details["id"] = record["id"]
    return token, record


@action("token.revoke", Role.viewer, target="token_id")
async def revoke_token(act: Act, token_id: str) -> dict[str, Any]:
    store = act.deps.store
    record = await offload(store.tokens.get, token_id)
    if record is None or not (may_manage(act.actor, record) or may_revoke(act.actor, record)):
        raise NotFound(f"no token with id {token_id!r}", code="token_not_found")
    if not may_revoke(act.actor, record):
        raise Forbidden("a token may revoke only itself: log in, or use an admin token, to revoke others",
                        code="token_cannot_revoke_others")
    act.details.update(name=record["name"], owner=record["owner"])
    act.status = 204
    return await offload(store.tokens.revoke, token_id)


def visible_tokens(actor: Actor, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The tokens `actor` may see (the same rule as revoking)."""
    return [r for r in records if may_manage(actor, r)]
