"""Fleet mode's API: the hosts of the fleet, fleet bans and unbans and their per-host status.

Without fleet mode (no BANGUI_FLEET_URL) every route answers 404 `fleet_disabled` (after authentication, like
every non-public route). Redis unreachable: 503 `fleet_unavailable`.
"""

from __future__ import annotations

from typing import Any

import msgspec

from actions import fleet as actions
from core.deps import Deps
from core.roles import Role
from errors import NotFound
from fleet.log import ban_status, hosts_view
from handlers.api import Call, iso, route
from store.base import offload


class FleetBanBody(msgspec.Struct, forbid_unknown_fields=True):
    ips: list[str]
    jail: str
    hosts: list[str] | None = None


def _enabled(call: Call) -> Any:
    if not call.deps.settings.fleet_url:
        raise NotFound("fleet mode is off: set BANGUI_FLEET_URL to the fleet's Redis", code="fleet_disabled")
    return call.deps.store.shared


async def fleet_health(deps: Deps) -> dict[str, Any]:
    """Health's `fleet` part: Redis reachable, the fleet leader, this host's lag behind the fleet log."""
    from fleet import host_name
    from fleet.log import health_summary
    from store.redis_backend import FleetUnavailable

    try:
        summary: dict[str, Any] = await offload(deps.store.shared.call, health_summary, host_name(deps.settings))
    except FleetUnavailable:
        return {"connected": False, "leader": None, "lag_s": None}
    return summary


async def list_hosts(call: Call) -> dict[str, Any]:
    hosts = await offload(_enabled(call).call, hosts_view)
    for host in hosts:
        host["last_seen"] = iso(host["last_seen"])
    return {"hosts": hosts}


async def fleet_ban(call: Call) -> dict[str, Any]:
    _enabled(call)
    body: FleetBanBody = call.body
    result: dict[str, Any] = await actions.fleet_ban(call.deps, call.actor, body.jail, body.ips, body.hosts)
    return result


async def fleet_unban(call: Call) -> dict[str, Any]:
    _enabled(call)
    body: FleetBanBody = call.body
    result: dict[str, Any] = await actions.fleet_unban(call.deps, call.actor, body.jail, body.ips, body.hosts)
    return result


async def get_fleet_ban(call: Call) -> dict[str, Any]:
    result: dict[str, Any] = await offload(_enabled(call).call, ban_status, call.param("id"))
    return result


routes = [
    route("GET", "/fleet/hosts", list_hosts, Role.viewer, "Fleet mode: every host, its status, fail2ban and jails."),
    route("POST", "/fleet/bans", fleet_ban, Role.operator, "Fleet mode: ban addresses on every (or some) host; 202.",
          body=FleetBanBody, status=202, action=actions.fleet_ban),
    route("POST", "/fleet/unbans", fleet_unban, Role.operator, "Fleet mode: unban addresses on every (or some) "
          "host; 202.", body=FleetBanBody, status=202, action=actions.fleet_unban),
    route("GET", "/fleet/bans/{id}", get_fleet_ban, Role.viewer, "Fleet mode: a fleet ban's status on each host."),
]
