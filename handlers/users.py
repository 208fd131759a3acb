"""User management (admin). Changing a password or role ends that user's sessions everywhere."""

from __future__ import annotations

from typing import Any

import msgspec

from errors import InvalidInput
from handlers.api import Call, iso, route
from handlers.security import Role
from store import Store
from store.base import offload
from store.users import check_username
from store.users import public as public_record


def public(user: dict[str, Any]) -> dict[str, Any]:
    record = public_record(user)
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
    return {"users": [public(u) for u in users]}


async def create_user(call: Call) -> dict[str, Any]:
    body: NewUser = call.body
    user = await offload(call.deps.store.users.create, body.username, body.password, body.role)
    return public(user)


def _change(store: Store, name: str, change: UserChange) -> dict[str, Any]:
    if change.role is not None:
        store.users.set_role(name, change.role)
        store.tokens.cap_role(name, change.role)
    if change.password is not None:
        store.users.set_password(name, change.password)
    store.sessions.end_all(name)  # sessions carry the role; a new password must lock out old sessions
    user = store.users.get(name)
    assert user is not None
    return public(user)


async def update_user(call: Call) -> dict[str, Any]:
    body: UserChange = call.body
    if body.password is None and body.role is None:
        raise InvalidInput("send 'password' and/or 'role'", code="invalid_body")
    return await offload(_change, call.deps.store, check_username(call.param("name")), body)


def _delete(store: Store, name: str) -> None:
    store.users.delete(name)
    store.sessions.end_all(name)
    store.tokens.revoke_owned_by(name)


async def delete_user(call: Call) -> None:
    await offload(_delete, call.deps.store, check_username(call.param("name")))


routes = [
    route("GET", "/users", list_users, Role.admin, "List users."),
    route("POST", "/users", create_user, Role.admin, "Create a user.", body=NewUser, status=201),
    route("PATCH", "/users/{name}", update_user, Role.admin, "Change a user's password and/or role.",
          body=UserChange),
    route("DELETE", "/users/{name}", delete_user, Role.admin, "Delete a user, their sessions and tokens.",
          status=204),
]
