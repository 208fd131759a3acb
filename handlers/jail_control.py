"""Jail control routes (admin): stop, start, reload, idle, unban everything. Thin: decode, call the
action (actions/jail_control.py: role check, audit entry), answer its result."""

from __future__ import annotations

from typing import Any

import msgspec

from actions import jail_control as actions
from core.roles import Role
from handlers.api import Call, route


class IdleRequest(msgspec.Struct, forbid_unknown_fields=True):
    idle: bool


class JailActive(msgspec.Struct):
    jail: str
    active: bool


class JailIdle(msgspec.Struct):
    jail: str
    idle: bool


class JailUnbanned(msgspec.Struct):
    jail: str
    unbanned: int


async def stop_jail(call: Call) -> dict[str, Any]:
    return await actions.stop_jail(call.deps, call.actor, call.param("jail"))


async def start_jail(call: Call) -> dict[str, Any]:
    return await actions.start_jail(call.deps, call.actor, call.param("jail"))


async def reload_jail(call: Call) -> dict[str, Any]:
    return await actions.reload_jail(call.deps, call.actor, call.param("jail"))


async def set_idle(call: Call) -> dict[str, Any]:
    body: IdleRequest = call.body
    return await actions.set_idle(call.deps, call.actor, call.param("jail"), body.idle)


async def unban_all(call: Call) -> dict[str, Any]:
    return await actions.unban_all(call.deps, call.actor, call.param("jail"))


routes = [
    route("POST", "/jails/{jail}/stop", stop_jail, Role.admin,
          "Stop a jail (its bans are lifted and recorded as unbans); a stopped one stays stopped.",
          response=JailActive, action=actions.stop_jail),
    route("POST", "/jails/{jail}/start", start_jail, Role.admin,
          "Start a jail the configuration defines, enabled or not.", response=JailActive,
          action=actions.start_jail),
    route("POST", "/jails/{jail}/reload", reload_jail, Role.admin,
          "Re-read a running jail's configuration (its bans stay).", response=JailActive,
          action=actions.reload_jail),
    route("PUT", "/jails/{jail}/idle", set_idle, Role.admin,
          "Idle on/off: an idle jail reads its logs but bans nobody.", body=IdleRequest, response=JailIdle,
          action=actions.set_idle),
    route("DELETE", "/jails/{jail}/bans", unban_all, Role.admin,
          "Unban every address in a jail (each recorded in history as an unban).", response=JailUnbanned,
          action=actions.unban_all),
]
