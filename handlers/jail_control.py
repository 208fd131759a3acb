"""Jail control routes (admin): stop, start, reload, idle, unban everything. Thin: decode, call the
action (actions/jail_control.py), answer its result."""

from __future__ import annotations

from typing import Any

import msgspec

from actions import jail_control
from handlers.api import Call, route
from handlers.security import Role
from handlers.validate import jail_name


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
    return await jail_control.stop_jail(call.deps, call.actor, jail_name(call.param("jail")), {})


async def start_jail(call: Call) -> dict[str, Any]:
    return await jail_control.start_jail(call.deps, call.actor, jail_name(call.param("jail")), {})


async def reload_jail(call: Call) -> dict[str, Any]:
    return await jail_control.reload_jail(call.deps, call.actor, jail_name(call.param("jail")), {})


async def set_idle(call: Call) -> dict[str, Any]:
    body: IdleRequest = call.body
    return await jail_control.set_idle(call.deps, call.actor, jail_name(call.param("jail")), body.idle, {})


async def unban_all(call: Call) -> dict[str, Any]:
    return await jail_control.unban_all(call.deps, call.actor, jail_name(call.param("jail")), {})


routes = [
    route("POST", "/jails/{jail}/stop", stop_jail, Role.admin,
          "Stop a jail (its bans are lifted and recorded as unbans); a stopped one stays stopped.",
          response=JailActive),
    route("POST", "/jails/{jail}/start", start_jail, Role.admin,
          "Start a jail the configuration defines, enabled or not.", response=JailActive),
    route("POST", "/jails/{jail}/reload", reload_jail, Role.admin,
          "Re-read a running jail's configuration (its bans stay).", response=JailActive),
    route("PUT", "/jails/{jail}/idle", set_idle, Role.admin,
          "Idle on/off: an idle jail reads its logs but bans nobody.", body=IdleRequest, response=JailIdle),
    route("DELETE", "/jails/{jail}/bans", unban_all, Role.admin,
          "Unban every address in a jail (each recorded in history as an unban).", response=JailUnbanned),
]
