"""Jails: list with counters, detail with configuration and current bans, ban and unban in a jail."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from actions import bans as actions
from core.addresses import jail_name
from core.roles import Role
from f2b.client import JailNotFound
from handlers.api import ADDRESS_SCHEMA, Call, iso, route
from handlers.ban_pages import QUERY, current_page
from handlers.jail_extras import BantimeIncrement, inactive_jail, jail_extras

MAX_IPS_PER_REQUEST = 10_000
DEFAULT_BANS_PAGE = 100


class JailSummary(msgspec.Struct):
    name: str
    currently_banned: int
    total_banned: int
    currently_failed: int
    total_failed: int


class BanEntry(msgspec.Struct):
    ip: str
    banned_at: str | None
    expires_at: str | None
    country: str | None = None  # ISO 3166-1 alpha-2 (offline lookup, geo.py); None for private/unknown


class JailDetail(JailSummary):
    bantime: int
    findtime: int
    maxretry: int
    ignoreip: list[str]
    logpaths: list[str]
    actions: list[str]
    banned: list[BanEntry]  # a page of the current bans (?limit=, default 100; ?cursor=), see handlers/ban_pages.py
    next_cursor: str | None = None  # None: the last page
    bans_total: int = 0  # current bans of the jail in the view (matching ?prefix= / ?network= when given)
    as_of: float | None = None  # epoch seconds of the view of current bans the page comes from
    age_s: float | None = None
    active: bool = True
    idle: bool | None = None
    bantime_increment: BantimeIncrement | None = None
    filter: str | None = None
    backend: str | None = None


class BanRequest(msgspec.Struct, forbid_unknown_fields=True):
    ips: Annotated[list[Annotated[str, msgspec.Meta(max_length=100, extra_json_schema=ADDRESS_SCHEMA)]],
                   msgspec.Meta(min_length=1, max_length=MAX_IPS_PER_REQUEST)]
    force: bool = False  # admin only: ban even the caller's own address or bangui's (audited)


class UnbanRequest(msgspec.Struct, forbid_unknown_fields=True):
    """An unban's optional body (an empty body is the defaults)."""

    local: bool = False  # fleet mode: unban on this host only, even an address the fleet shared (issue 21)


class BanResult(msgspec.Struct):
    banned: list[str]
    already_banned: list[str]


def _summary(status: Any) -> JailSummary:
    return JailSummary(status.name, status.currently_banned, status.total_banned, status.currently_failed,
                       status.total_failed)


async def list_jails(call: Call) -> dict[str, list[JailSummary]]:
    # counters only (`status <jail> short`): a plain status carries the jail's whole ban list
    return {"jails": [_summary(s) for s in (await call.deps.fail2ban.server_summary()).jails]}


async def get_jail(call: Call) -> JailDetail:
    client, jail = call.deps.fail2ban, jail_name(call.param("jail"))
    try:
        status = await client.jail_counters(jail)
    except JailNotFound:
        if (inactive := await inactive_jail(call.deps, jail)) is None:  # configured, not running: active false
            raise
        return JailDetail(**inactive)
    config = await client.jail_config(jail)
    shown = await current_page(call, jail, DEFAULT_BANS_PAGE)
    banned = [BanEntry(b.ip, iso(b.banned_at), iso(b.expires_at), cc)
              for b, cc in zip(shown.page.bans, shown.countries, strict=True)]
    s = _summary(status)
    return JailDetail(s.name, s.currently_banned, s.total_banned, s.currently_failed, s.total_failed,
                      config.bantime, config.findtime, config.maxretry, config.ignoreip, config.logpaths,
                      config.actions, banned, shown.page.next_cursor, shown.page.total, shown.as_of, shown.age_s,
                      **await jail_extras(call.deps, jail))


async def ban_ips(call: Call) -> BanResult:
    body: BanRequest = call.body
    result = await actions.ban(call.deps, call.actor, call.param("jail"), body.ips, force=body.force)
    return BanResult(result["banned"], result["already_banned"])


async def unban_ip(call: Call) -> dict[str, Any]:
    body: UnbanRequest = call.body
    return await actions.unban(call.deps, call.actor, call.param("jail"), call.param("ip"), local=body.local)


routes = [
    route("GET", "/jails", list_jails, Role.viewer, "Jails with their counters."),
    route("GET", "/jails/{jail}", get_jail, Role.viewer,
          "One jail: counters, settings, and a page of its current bans (?limit=, default 100; ?cursor=; "
          "?sort=, ?order=).",
          response=JailDetail, query=QUERY),
    route("POST", "/jails/{jail}/bans", ban_ips, Role.operator,
          "Ban addresses/networks in a jail (all valid or none).", body=BanRequest, response=BanResult,
          action=actions.ban),
    route("DELETE", "/jails/{jail}/bans/{ip:path}", unban_ip, Role.operator,
          "Unban an address, or every ban inside a network (at most /8 or /16), in a jail. Fleet mode: an address "
          "the fleet shared is unbanned on every host too, unless the body says {\"local\": true}; `applies` and "
          "`fleet` say where.", body=UnbanRequest, body_optional=True, action=actions.unban),
]
