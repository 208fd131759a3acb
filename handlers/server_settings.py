"""fail2ban's server settings (loglevel, dbpurgeage, dbmaxmatches) and a validated, verified reload."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from actions import config as actions
from core.roles import Role
from f2bconfig import operations as ops
from f2bconfig.engine import engine_for
from handlers.api import Call, route
from store.base import offload


class ServerSettings(msgspec.Struct):
    loglevel: str | None
    logtarget: str | None
    dbfile: str | None
    dbpurgeage: int | None
    dbmaxmatches: int | None


class ServerSettingsResult(ServerSettings):
    warnings: list[str]


class ServerSettingsPatch(msgspec.Struct, forbid_unknown_fields=True):
    loglevel: Annotated[str, msgspec.Meta(max_length=20)] | None = None
    dbpurgeage: Annotated[int, msgspec.Meta(ge=0, le=100 * 365 * 86400)] | None = None
    dbmaxmatches: Annotated[int, msgspec.Meta(ge=0, le=100_000)] | None = None


class ReloadResult(msgspec.Struct):
    jails: list[str]


class RestartResult(msgspec.Struct):
    jails: list[str]  # running after the restart
    banned_again: int  # bans fail2ban did not restore from its database, banned again


def _shape(values: dict[str, Any]) -> dict[str, Any]:
    def num(v: Any) -> int | None:
        return None if v is None else int(v)

    return {"loglevel": None if values["loglevel"] is None else str(values["loglevel"]),
            "logtarget": None if values["logtarget"] is None else str(values["logtarget"]),
            "dbfile": None if values["dbfile"] is None else str(values["dbfile"]),
            "dbpurgeage": num(values["dbpurgeage"]), "dbmaxmatches": num(values["dbmaxmatches"])}


async def get_settings(call: Call) -> ServerSettings:
    return ServerSettings(**_shape(await offload(ops.server_settings, engine_for(call.deps))))


async def patch_settings(call: Call) -> ServerSettingsResult:
    body: ServerSettingsPatch = call.body
    changes = {"loglevel": body.loglevel, "dbpurgeage": body.dbpurgeage, "dbmaxmatches": body.dbmaxmatches}
    result = await actions.update_server_settings(call.deps, call.actor, changes)
    return ServerSettingsResult(**_shape(result), warnings=result["warnings"])


async def reload_server(call: Call) -> ReloadResult:
    result = await actions.reload_server(call.deps, call.actor)
    return ReloadResult(result["jails"])


async def restart_server(call: Call) -> RestartResult:
    result = await actions.restart_server(call.deps, call.actor)
    return RestartResult(result["jails"], result["banned_again"])


routes = [
    route("GET", "/server/settings", get_settings, Role.admin, "fail2ban's loglevel, logtarget and database settings.",
          response=ServerSettings),
    route("PATCH", "/server/settings", patch_settings, Role.admin,
          "Change loglevel/dbpurgeage/dbmaxmatches: applied and persisted (fail2ban.d/zz-bangui.local).",
          body=ServerSettingsPatch, response=ServerSettingsResult, action=actions.update_server_settings),
    route("POST", "/server/reload", reload_server, Role.admin,
          "Validate the configuration, reload fail2ban and verify every jail; rolled back on failure.",
          response=ReloadResult, action=actions.reload_server),
    route("POST", "/server/restart", restart_server, Role.admin,
          "Restart every fail2ban jail afresh (fail2ban-client reload --restart: actions stopped and started, the "
          "whole configuration re-read; validated first, verified, bans kept).", response=RestartResult,
          action=actions.restart_server),
]
