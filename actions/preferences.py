"""A user's own display preferences (issue 23 item 6)."""

from __future__ import annotations

from typing import Any

from actions.base import Act, action
from core.roles import Role
from errors import InvalidInput
from store.base import offload
from store.preferences import check


def owner(act_or_actor: Any) -> str:
    """Whose preferences a caller reads and writes: the account whose rights apply (a token's owner)."""
    actor = getattr(act_or_actor, "actor", act_or_actor)
    if not actor.user:
        raise InvalidInput("this credential belongs to no user", code="no_user")
    return str(actor.user)


@action("preferences.update", Role.viewer, target="user")
async def update_preferences(act: Act, user: str, changes: dict[str, Any]) -> dict[str, Any]:
    act.details["changes"] = check(changes)
    return await offload(act.deps.store.preferences.update, user, changes)
