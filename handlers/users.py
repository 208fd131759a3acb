"""User management (admin). A password change ends that user's sessions everywhere; a role change
applies to their sessions and tokens at their next request (actions/users.py)."""

from __future__ import annotations

from typing import Any

import msgspec

from actions import users as actions
from core.roles import Role
from handlers.api import Call, iso, route
from store.base import offload
from store.users import user_fields


def shown_user(user: dict[str, Any]) -> dict[str, Any]:
    """A user's fields with API times."""
    record = user_fields(user)
    return dict(record, created=iso(record["created"]), updated=iso(record["updated"]))


class NewUser(msgspec.Struct, forbid_unknown_fields=True):
    username: str
    password: str
    role: str = "viewer"


class UserChange(msgspec.Struct, forbid_unknown_fields=True):
    password: str | None = None
    role: str | None = None


async def list_users(call: Call) -> dict[str, Any]:
    users = await offload(call.deps.store.users.list)
    return {"users": [shown_user(u) for u in users]}


async def create_user(call: Call) -> dict[str, Any]:
    body: NewUser = call.body
    return shown_user(await actions.create_user(call.deps, call.actor, body.username, body.password, body.role))


async def update_user(call: Call) -> dict[str, Any]:
    body: UserChange = call.body
    return shown_user(await actions.update_user(call.deps, call.actor, call.param("name"),
                                                password=body.password, role=body.role))


async def delete_user(call: Call) -> None:
    await actions.delete_user(call.deps, call.actor, call.param("name"))


routes = [
    route("GET", "/users", list_users, Role.admin, "List users."),
    route("POST", "/users", create_user, Role.admin, "Create a user.", body=NewUser, status=201,
          action=actions.create_user),
    route("PATCH", "/users/{name}", update_user, Role.admin, "Change a user's password and/or role (all or "
          "nothing).", body=UserChange, action=actions.update_user),
    route("DELETE", "/users/{name}", delete_user, Role.admin, "Delete a user, their sessions and tokens.",
          status=204, action=actions.delete_user),
]
