"""Jail settings and ignore lists, applied to the running jail AND persisted (jail.d/zz-bangui.local)."""

from __future__ import annotations

import re
from typing import Annotated, Any

import msgspec

from actions import config as actions
from core.roles import Role
from errors import InvalidInput
from handlers.api import ADDRESS_SCHEMA, Call, route
from handlers.jails import JailDetail, get_jail

Seconds = Annotated[int, msgspec.Meta(ge=1, le=10 * 365 * 86400)]
_MULTIPLIERS = re.compile(r"^\d+(?: \d+){0,30}$")


class Increment(msgspec.Struct, forbid_unknown_fields=True):
    enabled: bool | None = None
    factor: Annotated[float, msgspec.Meta(gt=0, le=1000)] | None = None
    formula: str | None = None
    multipliers: str | None = None
    maxtime: Seconds | None = None
    rndtime: Annotated[int, msgspec.Meta(ge=0, le=86400)] | None = None
    overalljails: bool | None = None


class JailPatch(msgspec.Struct, forbid_unknown_fields=True):
    bantime: Annotated[int, msgspec.Meta(ge=-1, le=10 * 365 * 86400)] | None = None
    findtime: Seconds | None = None
    maxretry: Annotated[int, msgspec.Meta(ge=1, le=100_000)] | None = None
    bantime_increment: Increment | None = None


class IgnoreAdd(msgspec.Struct, forbid_unknown_fields=True):
    entries: Annotated[list[Annotated[str, msgspec.Meta(max_length=100, extra_json_schema=ADDRESS_SCHEMA)]],
                       msgspec.Meta(min_length=1, max_length=1000)]


class IgnoreList(msgspec.Struct):
    jail: str
    ignoreip: list[str]


def _changes(body: JailPatch) -> dict[str, Any]:
    if body.bantime == 0:
        raise InvalidInput("bantime must be -1 (permanent) or at least 1 second", code="invalid_body")
    changes: dict[str, Any] = {"bantime": body.bantime, "findtime": body.findtime, "maxretry": body.maxretry}
    inc = body.bantime_increment
    if inc is not None:
        if inc.multipliers is not None and not _MULTIPLIERS.match(inc.multipliers.strip()):
            raise InvalidInput("bantime_increment.multipliers: space-separated integers, e.g. '1 2 4 8 16'",
                               code="invalid_body")
        changes["bantime_increment"] = {f: getattr(inc, f) for f in inc.__struct_fields__}
    return changes


async def patch_jail(call: Call) -> JailDetail:
    await actions.update_jail(call.deps, call.actor, call.param("jail"), _changes(call.body))
    return await get_jail(call)


async def add_ignoreip(call: Call) -> IgnoreList:
    result = await actions.add_ignoreip(call.deps, call.actor, call.param("jail"), call.body.entries)
    return IgnoreList(result["jail"], result["ignoreip"])


async def remove_ignoreip(call: Call) -> IgnoreList:
    result = await actions.remove_ignoreip(call.deps, call.actor, call.param("jail"), call.param("entry"))
    return IgnoreList(result["jail"], result["ignoreip"])


routes = [
    route("PATCH", "/jails/{jail}", patch_jail, Role.admin,
          "Change bantime/findtime/maxretry/bantime_increment: applied to the running jail and persisted.",
          body=JailPatch, response=JailDetail, action=actions.update_jail),
    route("POST", "/jails/{jail}/ignoreip", add_ignoreip, Role.operator,
          "Add addresses/networks to a jail's ignore list (runtime and persisted).", body=IgnoreAdd,
          response=IgnoreList, action=actions.add_ignoreip),
    route("DELETE", "/jails/{jail}/ignoreip/{entry:path}", remove_ignoreip, Role.operator,
          "Remove an entry from a jail's ignore list (404 not_ignored).", response=IgnoreList,
          action=actions.remove_ignoreip),
]
