"""CrowdSec bouncer keys (issue 22): create (the key is shown once) and delete, admins only, audited.

Deleting a key also forgets that bouncer's stream position; every worker refuses the key at its next poll (the
key is looked up in the shared store on every poll).
"""

from __future__ import annotations

from typing import Any

from actions.base import Act, action
from core.roles import Role
from store.base import offload


@action("bouncer.create", Role.admin, target="name")
async def create_bouncer(act: Act, name: str) -> tuple[str, dict[str, Any]]:
    act.status = 201
    return await offload(act.deps.store.bouncers.create, name)


@action("bouncer.delete", Role.admin, target="name")
async def delete_bouncer(act: Act, name: str) -> dict[str, Any]:
    store = act.deps.store
    record = await offload(store.bouncers.delete, name)
    await offload(store.decisions.forget, name)
    act.status = 204
    return record
