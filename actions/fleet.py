"""Fleet bans and unbans: ask every host (or some) of the fleet to ban or unban addresses in a jail.

The action validates and appends one entry to the fleet's log (fleet/log.py); each host's agent applies it
through its own ban/unban action (audited there with actor `fleet:<source host>`), and reports per host.
"""

from __future__ import annotations

from typing import Any

import fleet
from actions.bans import INLINE_CHECKS, check_refusals, check_unban_refusals
from actions.base import Act, action
from core.addresses import ip_list, jail_name
from core.roles import Role
from errors import NotFound
from fleet.log import publish_fleet_ban
from store.base import offload


async def _publish(act: Act, kind: str, jail: str, ips: list[str], hosts: list[str] | None) -> dict[str, Any]:
    if not act.deps.settings.fleet_url:  # checked here, so that the refused call is audited like any other
        raise NotFound("fleet mode is off: set BANGUI_FLEET_URL to the fleet's Redis", code="fleet_disabled")
    jail = jail_name(jail)
    if len(ips) > INLINE_CHECKS:  # 10,000 entries would hold the event loop for tens of milliseconds
        ips = await offload(_checked, act, kind, ips)
    else:
        ips = _checked(act, kind, ips)
    act.details.update(ips=ips[:100], count=len(ips), hosts=hosts or "*")
    settings = act.deps.settings
    result = await offload(act.deps.store.fleet.call, publish_fleet_ban, kind, jail, ips, hosts,
                           fleet.host_name(settings), settings.fleet_retention_hours)
    act.details["id"] = result["id"]
    act.status = 202
    return result


def _checked(act: Act, kind: str, ips: list[str]) -> list[str]:
    if kind == "ban":
        check_refusals(act.deps.settings, act.actor, ips, False)
        return ip_list(ips)
    ips = ip_list(ips)
    check_unban_refusals(ips)  # each host's unban action refuses it too (an entry written into the log by hand)
    return ips


@action("fleet.ban", Role.operator, target="jail")
async def fleet_ban(act: Act, jail: str, ips: list[str], hosts: list[str] | None = None) -> dict[str, Any]:
    return await _publish(act, "ban", jail, ips, hosts)


@action("fleet.unban", Role.operator, target="jail")
async def fleet_unban(act: Act, jail: str, ips: list[str], hosts: list[str] | None = None) -> dict[str, Any]:
    return await _publish(act, "unban", jail, ips, hosts)


@action("fleet.identity_reseed", Role.admin)
async def identity_reseed(act: Act) -> dict[str, Any]:
    """Write this host's replica of the fleet's identity (store/replica.py) back to a Redis that restarted empty:
    by the host the fleet chose for having the newest replica (jobs/fleet/agent.py). Audited with what
    was written (counts and the epoch; never a value)."""
    store = act.deps.store
    if store.replica is None:
        raise NotFound("fleet mode is off: set BANGUI_FLEET_URL to the fleet's Redis", code="fleet_disabled")
    summary: dict[str, Any] = await offload(store.fleet.call, store.replica.write_back)
    act.details.update(summary)
    return summary
