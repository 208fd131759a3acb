"""Current bans across jails, unban everywhere, and what bangui knows about one address."""

from __future__ import annotations

from typing import Any

import msgspec

from actions import bans as actions
from core.addresses import jail_name, one_ip
from core.roles import Role
from handlers.api import Call, iso, route
from handlers.ban_pages import QUERY, countries, current_page
from handlers.history import shown_event
from handlers.jails import UnbanRequest
from jobs.decisions import fresh_view
from store.base import offload


class CurrentBan(msgspec.Struct):
    ip: str
    jail: str
    banned_at: str | None
    expires_at: str | None
    country: str | None = None  # ISO 3166-1 alpha-2 (offline lookup, geo.py); None for private/unknown


class BanList(msgspec.Struct):
    bans: list[CurrentBan]
    next_cursor: str | None  # None: the last page
    total: int  # bans that match the query, on every page
    as_of: float  # epoch seconds of the view of current bans these come from (at most one sync interval old)
    age_s: float


async def list_bans(call: Call) -> BanList:
    """Served from the view of current bans (handlers/ban_pages.py); without `limit` every matching ban."""
    jail = call.query("jail")
    shown = await current_page(call, jail_name(jail) if jail is not None else None, None)  # ?jail= is 400
    bans = [CurrentBan(b.ip, b.jail, iso(b.banned_at), iso(b.expires_at), cc)
            for b, cc in zip(shown.page.bans, shown.countries, strict=True)]
    return BanList(bans, shown.page.next_cursor, shown.page.total, shown.as_of, shown.age_s)


async def unban_everywhere(call: Call) -> dict[str, Any]:
    body: UnbanRequest = call.body
    return await actions.unban_everywhere(call.deps, call.actor, call.param("ip"), local=body.local)


async def get_ip(call: Call) -> dict[str, Any]:
    """An address, or a network (`/ips/198.51.100.0/24`): current bans of that exact entry (fail2ban keeps a
    network as one entry and does not match addresses inside it) and the history of everything inside it."""
    ip = one_ip(call.param("ip"))
    await fresh_view(call.deps)
    found = call.deps.store.bans.of_address(ip)  # one index lookup
    where = countries(call, [b.ip for b in found])  # a few at most: inline
    current = [CurrentBan(b.ip, b.jail, iso(b.banned_at), iso(b.expires_at), cc)
               for b, cc in zip(found, where, strict=True)]
    history = call.deps.store.history
    timeline = await offload(history.network_timeline if "/" in ip else history.ip_timeline, ip)
    return dict(timeline, ip=ip, banned_now=bool(current), current_bans=current,
                first_seen=iso(timeline["first_seen"]), last_seen=iso(timeline["last_seen"]),
                events=[shown_event(e) for e in timeline["events"]])


routes = [
    route("GET", "/bans", list_bans, Role.viewer,
          "Current bans across jails (optionally ?jail=), in pages with ?limit= (from the view of current bans), "
          "ordered by ?sort= and ?order= across every page.",
          query={"jail": "only this jail", **QUERY}, response=BanList),
    route("DELETE", "/bans/{ip:path}", unban_everywhere, Role.operator,
          "Unban an address, or every ban inside a network (at most /8 or /16), in every jail. Fleet mode: as "
          "DELETE /jails/{jail}/bans/{ip} ({\"local\": true} for this host only).", body=UnbanRequest,
          body_optional=True, action=actions.unban_everywhere),
    route("GET", "/ips/{ip:path}", get_ip, Role.viewer, "An address: current bans, timeline, country."),
]
