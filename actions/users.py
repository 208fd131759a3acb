"""Users: create, change (password and/or role, all or nothing), delete. Admin only.

Credentials follow at once on every worker: authentication checks each session and token against the
user's live record (store/users.py), so nothing here has to chase them; ending sessions and removing
tokens only frees their records.
"""

from __future__ import annotations

from typing import Any

from actions.base import Act, action
from core.roles import Role
from errors import InvalidInput
from store.base import offload, offload_heavy
from store.users import check_username, user_fields


@action("user.create", Role.admin, target="name")
async def create_user(act: Act, name: str, password: str, role: str = "viewer") -> dict[str, Any]:
    act.details["role"] = role
    act.status = 201
    user = await offload_heavy(act.deps.store.users.create, check_username(name), password, role)
    return user_fields(user)


@action("user.update", Role.admin, target="name")
async def update_user(act: Act, name: str, *, password: str | None = None, role: str | None = None,
                      ) -> dict[str, Any]:
    if password is None and role is None:
        raise InvalidInput("send 'password' and/or 'role'", code="invalid_body")
    act.details.update(password_changed=password is not None, **({"role": role} if role else {}))
    store = act.deps.store
    before = await offload(store.users.get, check_username(name))
    if before is not None and role is not None:
        act.details["previous_role"] = before["role"]
    user = await offload_heavy(lambda: store.users.update(name, password=password, role=role))
    if password is not None:  # the old sessions are dead already (generation); free their records
        await offload(store.sessions.end_all, user["name"])
    return user_fields(user)


@action("user.delete", Role.admin, target="name")
async def delete_user(act: Act, name: str) -> None:
    store = act.deps.store
    user = await offload(store.users.delete, check_username(name))
    act.details["role"] = user["role"]
    act.status = 204
    await offload(store.sessions.end_all, user["name"])
    act.details["tokens_revoked"] = await offload(store.tokens.revoke_dead)
