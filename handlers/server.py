"""fail2ban server overview: version, jail count, currently/total banned and failed."""

from __future__ import annotations

import msgspec

from core.roles import Role
from handlers.api import Call, route


class ServerOverview(msgspec.Struct):
    version: str
    jail_count: int
    currently_banned: int
    total_banned: int
    currently_failed: int
    total_failed: int
    socket: str


async def get_server(call: Call) -> ServerOverview:
    s = await call.deps.fail2ban.server_summary()
    return ServerOverview(s.version, s.jail_count, s.currently_banned, s.total_banned, s.currently_failed,
                          s.total_failed, call.deps.settings.fail2ban_socket)


routes = [route("GET", "/server", get_server, Role.viewer, "fail2ban version and totals.",
                response=ServerOverview)]
