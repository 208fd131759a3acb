"""Blocklists: create, delete, and "run now" (the import itself runs on the leader: jobs/blocklists.py)."""

from __future__ import annotations

import functools
from typing import Any

from actions.base import Act, action
from actions.jobs import hand_to_leader
from core.addresses import jail_name
from core.roles import Role
from errors import InvalidInput
from store.base import offload

JOB = "blocklists"


@action("blocklist.create", Role.admin, target="name")
async def create_blocklist(act: Act, name: str, url: str, jail: str, interval_s: int, enabled: bool,
                           ) -> dict[str, Any]:
    jail = jail_name(jail)
    act.details.update(jail=jail, url=url[:300], interval_s=interval_s, enabled=enabled)
    # A typo in the jail would otherwise only show up as a failed import a day later.
    if jail not in await act.deps.fail2ban.jail_names():
        raise InvalidInput(f"fail2ban has no jail named {jail!r}", code="jail_not_found", details={"jail": jail})
    act.status = 201
    return await offload(act.deps.store.blocklists.create, name, url, jail, interval_s, enabled, act.actor.name)


@action("blocklist.delete", Role.admin, target="name")
async def delete_blocklist(act: Act, name: str) -> None:
    act.status = 204
    await offload(act.deps.store.blocklists.delete, name)


@action("blocklist.run", Role.operator, target="name")
async def run_blocklist(act: Act, name: str) -> dict[str, Any]:
    """Ask the leader to import the list now; the request record."""
    return await hand_to_leader(act, JOB, functools.partial(act.deps.store.blocklists.request, name))
