"""Current bans across jails, unban everywhere, and what bangui knows about one address."""

from __future__ import annotations

from typing import Any

import msgspec

from actions import bans as actions
from core.addresses import jail_name, one_ip
from core.roles import Role
from handlers.api import Call, iso, route
from handlers.history import shown_event
from handlers.jails import UnbanRequest, countries, gather
from store.base import offload


class CurrentBan(msgspec.Struct):
    ip: str
    jail: str
    banned_at: str | None
    expires_at: str | None
    country: str | None = None  # ISO 3166-1 alpha-2 (offline lookup, geo.py); None for private/unknown


async def _current_bans(call: Call, jails: list[str]) -> list[CurrentBan]:
    per_jail = await gather(call.deps.fail2ban.banned_with_times, jails)
    flat = [(jail, b) for jail, bans in zip(jails, per_jail, strict=True) for b in bans]
    where = await offload(countries, call, [b.ip for _, b in flat])
    return [CurrentBan(b.ip, jail, iso(b.banned_at), iso(b.expires_at), cc)
            for (jail, b), cc in zip(flat, where, strict=True)]


async def list_bans(call: Call) -> dict[str, list[CurrentBan]]:
    jail = call.query("jail")
    jails = [jail_name(jail)] if jail is not None else await call.deps.fail2ban.jail_names()  # ?jail= is 400
    return {"bans": await _current_bans(call, jails)}


async def unban_everywhere(call: Call) -> dict[str, Any]:
    body: UnbanRequest = call.body
    return await actions.unban_everywhere(call.deps, call.actor, call.param("ip"), local=body.local)


async def get_ip(call: Call) -> dict[str, Any]:
    """An address, or a network (`/ips/198.51.100.0/24`): current bans of that exact entry (fail2ban keeps a
    network as one entry and does not match addresses inside it) and the history of everything inside it."""
    ip = one_ip(call.param("ip"))
    jails = await call.deps.fail2ban.jails_banning(ip)
    current = [b for b in await _current_bans(call, jails) if b.ip == ip]
    history = call.deps.store.history
    timeline = await offload(history.network_timeline if "/" in ip else history.ip_timeline, ip)
    return dict(timeline, ip=ip, banned_now=bool(current), current_bans=current,
                first_seen=iso(timeline["first_seen"]), last_seen=iso(timeline["last_seen"]),
                events=[shown_event(e) for e in timeline["events"]])


routes = [
    route("GET", "/bans", list_bans, Role.viewer, "Current bans across jails (optionally ?jail=).",
          query={"jail": "only this jail"}),
    route("DELETE", "/bans/{ip:path}", unban_everywhere, Role.operator,
          "Unban an address, or every ban inside a network (at most /8 or /16), in every jail. Fleet mode: as "
          "DELETE /jails/{jail}/bans/{ip} ({\"local\": true} for this host only).", body=UnbanRequest,
          body_optional=True, action=actions.unban_everywhere),
    route("GET", "/ips/{ip:path}", get_ip, Role.viewer, "An address: current bans, timeline, country."),
]
