"""Fleet mode's API: the hosts of the fleet, fleet bans and unbans and their per-host status.

Without fleet mode (no BANGUI_FLEET_URL) every route answers 404 `fleet_disabled` (after authentication, like
every non-public route). Redis unreachable: 503 `fleet_unavailable`.
"""

from __future__ import annotations

from typing import Any

import anyio
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
    return call.deps.store.fleet


async def fleet_health(deps: Deps) -> dict[str, Any]:
    """Health's `fleet` part: Redis reachable, the fleet leader, this host's lag behind the fleet log."""
    from fleet import host_name
    from fleet.log import health_summary
    from store.redis_backend import FleetUnavailable

    try:
        summary: dict[str, Any] = await offload(deps.store.fleet.call, health_summary, host_name(deps.settings))
    except FleetUnavailable:
        summary = {"connected": False, "leader": None, "lag_s": None}
    return dict(summary, **await fleet_degradation(deps, summary["connected"]))


async def fleet_degradation(deps: Deps, connected: bool) -> dict[str, Any]:
    """`status` ok | degraded (Redis away: this host serves from its replica of the fleet's identity), `since`,
    and how old that replica is (issue 21 item 1)."""
    state: dict[str, Any] = await offload(deps.store.fleet.degradation, connected)
    return dict(state, since=iso(state["since"]), replica_refreshed=iso(state["replica_refreshed"]))


async def list_hosts(call: Call) -> dict[str, Any]:
    hosts = await offload(_enabled(call).call, hosts_view)
    for host in hosts:
        host["last_seen"] = iso(host["last_seen"])
    return {"hosts": hosts}


async def fleet_ban(call: Call) -> dict[str, Any]:
    body: FleetBanBody = call.body
    result: dict[str, Any] = await actions.fleet_ban(call.deps, call.actor, body.jail, body.ips, body.hosts)
    return result


async def fleet_unban(call: Call) -> dict[str, Any]:
    body: FleetBanBody = call.body
    result: dict[str, Any] = await actions.fleet_unban(call.deps, call.actor, body.jail, body.ips, body.hosts)
    return result


async def remote_history(call: Call, host: str, filters: dict[str, Any]) -> dict[str, Any] | None:
    """`GET /history?host=`: another host's page through Redis (fleet/rpc.py), or `*` for every host's newest
    (merged, newest first, each item with its `host`; hosts that do not answer in time are listed in
    `unreachable`). None: the host is this one (the caller reads its own archive)."""
    from fleet import host_name
    from fleet.log import known_hosts
    from fleet.rpc import HostUnreachable, ask_history, waiting_client

    shared = _enabled(call)
    me = host_name(call.deps.settings)
    if host == me:
        return None
    client = waiting_client(call.deps.settings)
    if host != "*":
        page: dict[str, Any] = await offload(shared.call, lambda _c: ask_history(client, host, filters))
        return {"items": [dict(i, host=host) for i in page["items"]], "next_cursor": page["next_cursor"]}
    names = await offload(shared.call, known_hosts)
    pages: dict[str, list[dict[str, Any]]] = {}
    unreachable: list[str] = []

    async def one(name: str) -> None:
        try:
            if name == me:
                items, _ = await offload(lambda: call.deps.store.history.history(**filters))
            else:
                items = (await offload(lambda: shared.call(lambda _c: ask_history(client, name, filters))))["items"]
            pages[name] = items
        except HostUnreachable:
            unreachable.append(name)

    async with anyio.create_task_group() as tg:
        for name in names:
            tg.start_soon(one, name)
    merged = sorted(((n, i) for n, items in pages.items() for i in items), key=lambda p: p[1]["at"], reverse=True)
    limit = int(filters.get("limit") or 100)
    return {"items": [dict(i, host=n) for n, i in merged[:limit]], "next_cursor": None,
            "unreachable": sorted(unreachable)}


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
